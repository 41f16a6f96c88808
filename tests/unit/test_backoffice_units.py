"""The back office without Telegram: the operator list, callback data, topic names and the
outbox rows complaint events become."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from bots.backoffice import BackofficeNotifier, parse_operators
from bots.backoffice.card import data, parse, render_card, topic_name
from bots.backoffice.notifier import parse_topic_address, topic_address
from bots.backoffice.operators import may_change
from dialogue.messages import OutgoingMessage
from domain.calendar import WorkingCalendar
from domain.citizen import Citizen, Identity
from domain.complaint import Photo, Status
from domain.ports import OutboxMessage
from domain.services import (
    ComplaintDraft,
    add_details,
    change_status,
    reclassify,
    register_complaint,
    relay_operator_message,
)
from notifications.handlers import StatusNotifier, combine
from tests.fakes.dialogue import catalogue
from tests.fakes.memory import MemoryStore

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def test_operators_are_parsed_with_roles() -> None:
    assert parse_operators("123:operator, 456:ADMIN,789:supervisor,42") == {
        123: "operator", 456: "admin", 789: "supervisor", 42: "operator"}
    assert parse_operators("") == {} and parse_operators(" , ") == {}
    with pytest.raises(ValueError, match="unknown role"):
        parse_operators("123:boss")
    with pytest.raises(ValueError, match="not a Telegram user id"):
        parse_operators("abc:operator")


def test_only_seniors_reopen_a_finished_complaint() -> None:
    assert may_change("operator", Status.NEW, Status.IN_PROGRESS)
    assert not may_change("operator", Status.CLOSED, Status.REOPENED)
    assert may_change("supervisor", Status.CLOSED, Status.REOPENED)
    assert may_change("admin", Status.DUPLICATE, Status.REOPENED)
    assert not may_change("stranger", Status.NEW, Status.IN_PROGRESS)


def test_callback_data_round_trips_and_stays_under_64_bytes() -> None:
    action = parse(data(12, "c", "housing", "water_supply"))
    assert action is not None and (action.complaint_id, action.name, action.args) == (
        12, "c", ("housing", "water_supply"))
    cat = catalogue()
    longest = max((data(2**31, "c", s.slug, c.slug) for s in cat.sectors
                   for c in s.categories), key=len)
    assert len(longest.encode()) <= 64
    for forged in (None, "", "bo", "bo:x:take", "bo:1:", "cls:yes", "bo:1:" + "я" * 40):
        assert parse(forged) is None
    with pytest.raises(ValueError):
        data(1, "c", "x" * 60)


def test_topic_addresses() -> None:
    assert parse_topic_address(topic_address(7, "card")) == (7, True)
    assert parse_topic_address(topic_address(7, "forward")) == (7, False)
    with pytest.raises(ValueError):
        parse_topic_address("-100123")


async def _file(store: MemoryStore, channel: str = "telegram", **draft: object):
    async with store.unit_of_work() as uow:
        citizen = Citizen([Identity(channel, "u1", "555")], created_at=T0)
        citizen.give_consent(T0, "v1")
        await uow.citizens.add(citizen)
        complaint = await register_complaint(
            uow, catalogue(), WorkingCalendar(), citizen, channel,
            ComplaintDraft("Яма на улице Ленина", "roads", "potholes", **draft), T0)  # type: ignore[arg-type]
        await uow.commit()
    return citizen, complaint


def _rows(store: MemoryStore, channel: str) -> list[OutboxMessage]:
    return [m for _, m in sorted(store.outbox.items()) if m.channel == channel]


async def test_events_become_backoffice_rows_with_the_complaint_id() -> None:
    cat = catalogue()
    store = MemoryStore(event_handler=combine(StatusNotifier(cat), BackofficeNotifier(cat)))
    citizen, complaint = await _file(store, municipality="makhachkala",
                                     photos=[Photo("telegram:AgAC1", "image/jpeg")])
    cid = complaint.id
    assert cid is not None and citizen.id is not None
    [card] = _rows(store, "backoffice")
    assert (card.chat_id, card.payload["op"], card.payload["complaint_id"]) == (
        f"{cid}:card", "card", cid)
    assert card.citizen_id is None  # a blocked citizen must not hold the topic back
    transport = cat.sector("transport").categories[0]
    async with store.unit_of_work() as uow:
        await add_details(uow, cid, citizen.id, "Стало хуже", now=T0 + timedelta(hours=1),
                          photos=[Photo("telegram:AgAC2", "image/png")])
        await uow.commit()
    async with store.unit_of_work() as uow:
        await change_status(uow, cid, Status.IN_PROGRESS, actor="Ислам",
                            now=T0 + timedelta(hours=2))
        await uow.commit()
    async with store.unit_of_work() as uow:
        await reclassify(uow, cat, cid, "transport", transport.slug, actor="Ислам",
                         now=T0 + timedelta(hours=3))
        await uow.commit()
    edits = [r for r in _rows(store, "backoffice") if r.payload["op"] == "edit"]
    assert [r.chat_id for r in edits] == [f"{cid}:edit"] * 2  # the card follows each change
    rows = [r for r in _rows(store, "backoffice") if r.payload["op"] != "edit"]
    texts = [OutgoingMessage.from_json(r.payload).text for r in rows]
    assert texts[1] == "✉️ Гражданин дополнил обращение:\nСтало хуже\n📎 Фото: 1"
    # only the photo of this addition is forwarded, by its Telegram file id
    addition = OutgoingMessage.from_json(rows[1].payload)
    assert [a.ref for a in addition.attachments] == ["telegram:AgAC2"]
    assert texts[2] == "🔄 Статус: Зарегистрировано → В работе (Ислам)"
    assert texts[3].startswith("🏷 Переклассифицировано: Транспорт")
    assert all(r.payload["complaint_id"] == cid and r.chat_id == str(cid) for r in rows[1:])


async def test_an_operator_message_is_relayed_and_recorded() -> None:
    cat = catalogue()
    store = MemoryStore(event_handler=combine(StatusNotifier(cat), BackofficeNotifier(cat)))
    citizen, complaint = await _file(store, channel="vk")
    assert complaint.id is not None
    async with store.unit_of_work() as uow:
        await relay_operator_message(uow, complaint.id, "Бригада выехала", actor="Ислам",
                                     now=T0 + timedelta(minutes=5))
        await uow.commit()
    [notice] = _rows(store, "vk")
    assert (notice.chat_id, notice.citizen_id) == ("555", citizen.id)
    assert OutgoingMessage.from_json(notice.payload).text == (
        f"Ответ оператора по обращению №{complaint.number}: Бригада выехала")
    async with store.unit_of_work() as uow:
        stored = await uow.complaints.get(complaint.id)
    assert stored is not None and stored.history[-1].text == "Бригада выехала"
    assert stored.first_answered_at == T0 + timedelta(minutes=5)
    assert [r.payload["op"] for r in _rows(store, "backoffice")] == ["card"]


async def test_an_unreachable_citizen_gets_no_notice_and_the_topic_is_told() -> None:
    cat = catalogue()
    store = MemoryStore(event_handler=combine(StatusNotifier(cat), BackofficeNotifier(cat)))
    citizen, complaint = await _file(store)
    assert complaint.id is not None
    async with store.unit_of_work() as uow:
        stored = await uow.citizens.get(citizen.id)  # type: ignore[arg-type]
        assert stored is not None
        stored.reachable = False
        await uow.citizens.save(stored)
        await relay_operator_message(uow, complaint.id, "Алло?", actor="Ислам", now=T0)
        await uow.commit()
    assert _rows(store, "telegram") == []
    warning = _rows(store, "backoffice")[-1]
    assert "заблокировал бота" in OutgoingMessage.from_json(warning.payload).text


def test_the_card_and_the_topic_name() -> None:
    from domain.complaint import Complaint

    cat = catalogue()
    complaint = Complaint("2026-000042", 1, "vk", "Нет света " * 100, "energy",
                          cat.sector("energy").categories[0].slug, "minenergo", "makhachkala",
                          T0, T0, T0, latitude=42.98, longitude=47.5,
                          photos=[Photo("telegram:AgAC9"), Photo("vk:photo1_2")], id=42)
    name = topic_name(cat, complaint)
    assert name.startswith("№2026-000042 · ") and "Махачкала" in name and len(name) <= 128
    long = dataclasses.replace(complaint, number="9" * 200)
    assert len(topic_name(cat, long)) == 128
    card = render_card(cat, complaint)
    assert [a.ref for a in card.attachments] == ["telegram:AgAC9"]
    assert "📎 Фото из канала vk: 1" in card.text and "42.980000, 47.500000" in card.text
    payloads = [b.payload for b in card.all_buttons()]
    assert payloads == ["bo:42:take", "bo:42:st", "bo:42:sec", "bo:42:ans", "bo:42:rej",
                        "bo:42:dup"]
