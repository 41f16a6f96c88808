"""Status notices: complaint events become outbox rows in the citizen's language,
addressed to the chat the complaint came from, committed with the change or not at all."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from dialogue.i18n import format_date
from dialogue.messages import OutgoingMessage
from domain.calendar import WorkingCalendar
from domain.citizen import Citizen, Identity
from domain.complaint import Complaint, Status
from domain.ports import OutboxMessage, OutboxStatus
from domain.services import (
    ComplaintDraft,
    answer_complaint,
    change_status,
    register_complaint,
)
from notifications.handlers import StatusNotifier
from notifications.outbox import Kind, Priority
from tests.fakes.dialogue import catalogue
from tests.fakes.memory import MemoryStore

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)  # Tuesday, 10:00 in Moscow


def make_store(**kwargs: object) -> MemoryStore:
    return MemoryStore(event_handler=StatusNotifier(catalogue(), **kwargs))  # type: ignore[arg-type]


async def file_complaint(store: MemoryStore, *, lang: str = "ru", channel: str = "telegram",
                         chat_id: str = "555") -> Complaint:
    async with store.unit_of_work() as uow:
        citizen = Citizen([Identity(channel, "u" + chat_id, chat_id)], language=lang,
                          created_at=T0)
        citizen.give_consent(T0, "v1")
        await uow.citizens.add(citizen)
        complaint = await register_complaint(
            uow, catalogue(), WorkingCalendar(), citizen, channel,
            ComplaintDraft("Яма на улице Ленина", "roads", "potholes"), T0)
        await uow.commit()
    return complaint


def outbox(store: MemoryStore) -> list[OutboxMessage]:
    return [m for _, m in sorted(store.outbox.items())]


def texts(store: MemoryStore) -> list[str]:
    return [OutgoingMessage.from_json(m.payload).text for m in outbox(store)]


async def test_a_citizen_filing_in_the_dialogue_gets_no_second_registration_notice():
    store = make_store()
    await file_complaint(store)
    assert outbox(store) == []


@pytest.mark.parametrize(("lang", "expected"), [
    ("ru", "Ваше обращение №2026-000001 зарегистрировано.\nОтветственный: Минтранс РД.\n"
           "Ожидаемый срок ответа — до {date}"),
    ("en", "Your complaint №2026-000001 has been registered.\nResponsible: Минтранс РД.\n"
           "Expected answer by {date}."),
])
async def test_registration_notice_names_number_agency_and_expected_date(lang, expected):
    store = make_store(notify_self_registered=True)
    complaint = await file_complaint(store, lang=lang)
    [row] = outbox(store)
    date = format_date(complaint.resolution_due, lang)
    assert OutgoingMessage.from_json(row.payload).text == expected.format(date=date)
    assert date in ("15 декабря 2026\u202fг.", "December 15, 2026")
    assert (row.kind, row.channel, row.chat_id, row.dedup_key) == (
        "status", "telegram", "555", f"status:{complaint.id}:registered")
    assert (row.citizen_id, row.complaint_id, row.priority) == (
        complaint.citizen_id, complaint.id, Priority.STATUS)
    assert row.status is OutboxStatus.PENDING and row.not_before == T0


STATUS_TEXTS = {
    "ru": ["Ваше обращение №2026-000001 взято в работу.\nОтветственный: Минтранс РД.",
           "Ответ на ваше обращение №2026-000001:\n\nЯму заделают до пятницы.",
           "Ваше обращение №2026-000001 закрыто. Спасибо, что помогаете сделать республику "
           "лучше.",
           "Ваше обращение №2026-000001 открыто снова и будет рассмотрено повторно.",
           "Ваше обращение №2026-000001 отклонено.\nПричина: дорога частная"],
    "en": ["Your complaint №2026-000001 has been taken into work.\nResponsible: Минтранс РД.",
           "Answer to your complaint №2026-000001:\n\nЯму заделают до пятницы.",
           "Your complaint №2026-000001 has been closed. Thank you for helping to make the "
           "republic better.",
           "Your complaint №2026-000001 has been reopened and will be worked on again.",
           "Your complaint №2026-000001 has been rejected.\nReason: дорога частная"],
}


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_every_step_of_the_lifecycle_notifies_the_citizen(lang: str):
    store = make_store()
    complaint = await file_complaint(store, lang=lang, channel="vk", chat_id="2000000")
    assert complaint.id is not None
    steps = [
        lambda uow, at: change_status(uow, complaint.id, Status.IN_PROGRESS, actor="op:1",
                                      now=at),
        lambda uow, at: answer_complaint(uow, complaint.id, "Яму заделают до пятницы.",
                                         actor="op:1", now=at),
        lambda uow, at: change_status(uow, complaint.id, Status.CLOSED, actor="op:1", now=at),
        lambda uow, at: change_status(uow, complaint.id, Status.REOPENED, actor="op:1",
                                      now=at),
        lambda uow, at: change_status(uow, complaint.id, Status.REJECTED, actor="op:1",
                                      now=at, reason="дорога частная"),
    ]
    for hour, step in enumerate(steps, start=1):
        async with store.unit_of_work() as uow:
            await step(uow, T0 + timedelta(hours=hour))
            await uow.commit()
    assert texts(store) == STATUS_TEXTS[lang]
    rows = outbox(store)
    assert {(r.channel, r.chat_id) for r in rows} == {("vk", "2000000")}
    assert [r.kind for r in rows] == ["status", "answer", "status", "status", "status"]
    assert all(OutgoingMessage.from_json(r.payload).all_buttons()[0].payload == "menu:my"
               for r in rows)


async def test_an_answer_straight_from_new_gives_one_notice_with_the_answer():
    store = make_store()
    complaint = await file_complaint(store, lang="en")
    async with store.unit_of_work() as uow:
        await answer_complaint(uow, complaint.id or 0, "Fixed.", actor="op:1",
                               now=T0 + timedelta(hours=1))
        await uow.commit()
    assert texts(store) == ["Answer to your complaint №2026-000001:\n\nFixed."]
    assert outbox(store)[0].kind == Kind.ANSWER


async def test_a_status_change_to_answered_without_text_says_so():
    store = make_store()
    complaint = await file_complaint(store, lang="en")
    for status in (Status.IN_PROGRESS, Status.ANSWERED):
        async with store.unit_of_work() as uow:
            await change_status(uow, complaint.id or 0, status, actor="op", now=T0)
            await uow.commit()
    assert texts(store)[-1] == "Your complaint №2026-000001 has been answered."


@pytest.mark.parametrize(("lang", "expected"), [
    ("ru", "Ваше обращение №2026-000002 объединено с обращением №2026-000001 о той же "
           "проблеме.\nПричина: та же яма"),
    ("en", "Your complaint №2026-000002 has been merged with complaint №2026-000001 about the "
           "same problem.\nReason: та же яма"),
])
async def test_a_duplicate_notice_names_the_original_and_the_reason(lang, expected):
    store = make_store()
    original = await file_complaint(store, chat_id="1")
    duplicate = await file_complaint(store, lang=lang, chat_id="2")
    async with store.unit_of_work() as uow:
        await change_status(uow, duplicate.id or 0, Status.DUPLICATE, actor="op", now=T0,
                            reason="та же яма", duplicate_of=original.id)
        await uow.commit()
    [row] = outbox(store)
    assert (row.chat_id, OutgoingMessage.from_json(row.payload).text) == ("2", expected)


async def test_a_rolled_back_change_leaves_no_notice():
    store = make_store()
    complaint = await file_complaint(store)
    async with store.unit_of_work() as uow:
        await change_status(uow, complaint.id or 0, Status.IN_PROGRESS, actor="op", now=T0)
        await uow.rollback()
    async with store.unit_of_work() as uow:
        await change_status(uow, complaint.id or 0, Status.IN_PROGRESS, actor="op", now=T0)
        # leaving without commit drops the staged notice too
    assert outbox(store) == []
    assert store.complaints[complaint.id or 0].status is Status.NEW


async def test_events_are_handled_once_and_the_dedup_key_refuses_a_second_row():
    store = make_store()
    complaint = await file_complaint(store)
    async with store.unit_of_work() as uow:
        changed = await change_status(uow, complaint.id or 0, Status.IN_PROGRESS, actor="op",
                                      now=T0)
        await uow.commit()
    assert changed.events == []  # handed over on commit
    async with store.unit_of_work() as uow:  # saving the same object again adds nothing
        await uow.complaints.save(changed)
        await uow.commit()
    [row] = outbox(store)
    copy = dataclasses.replace(row, id=None, status=OutboxStatus.SENT)
    async with store.unit_of_work() as uow:
        assert await uow.outbox.add(copy) is False
        await uow.commit()
    assert len(outbox(store)) == 1


async def test_an_unreachable_citizen_gets_no_new_notices():
    store = make_store()
    complaint = await file_complaint(store)
    store.citizens[complaint.citizen_id].reachable = False
    async with store.unit_of_work() as uow:
        await change_status(uow, complaint.id or 0, Status.IN_PROGRESS, actor="op", now=T0)
        await uow.commit()
    assert outbox(store) == []
