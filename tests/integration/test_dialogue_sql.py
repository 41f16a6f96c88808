"""The dialogue engine over the real SQL storage, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from dialogue.engine import Engine
from dialogue.messages import Channel, Location
from dialogue.nlu import KeywordClassifier
from domain.calendar import WorkingCalendar
from domain.complaint import ClassifiedBy, Status
from domain.storage import Database, upgrade_async
from tests.fakes.dialogue import Chat, FixedClock, catalogue, photo

PROBLEM = "Махачкала, ул. Гагарина 10: третий день нет воды во всём доме"


def engine_on(db: Database) -> Engine:
    cat = catalogue()
    return Engine(db.uow, cat, WorkingCalendar(), KeywordClassifier(cat), FixedClock())


async def file_complaint(chat: Chat, text: str = PROBLEM) -> str:
    await chat.send(text)
    await chat.press("cls:yes")
    await chat.send(attachments=(photo(f"file-{chat.user_id}"),))
    await chat.press("photo:done")
    await chat.send(location=Location(42.98, 47.50))
    await chat.press("mun:yes")
    if "consent:yes" in chat.payloads:
        await chat.press("consent:yes")
    await chat.press("cmp:submit")
    return chat.text


async def test_complaint_flow_is_stored(db: Database) -> None:
    chat = Chat(engine_on(db), user_id="501", channel=Channel.VK)
    reply = await file_complaint(chat)
    async with db.uow() as uow:
        citizen = await uow.citizens.by_identity("vk", "501")
        assert citizen is not None and citizen.has_consent(catalogue().consent_version)
        [complaint] = await uow.complaints.for_citizen(citizen.id or 0)
    assert complaint.number in reply
    assert (complaint.sector, complaint.category, complaint.municipality) == (
        "housing", "no_water", "makhachkala")
    assert complaint.agency == catalogue().responsible_agency("housing", "no_water",
                                                              "makhachkala").slug
    assert complaint.classified_by is ClassifiedBy.NLU and complaint.status is Status.NEW
    assert [p.ref for p in complaint.photos] == ["vk:file-501"]
    assert (complaint.latitude, complaint.longitude) == (42.98, 47.50)
    assert complaint.created_at < complaint.first_answer_due <= complaint.resolution_due


async def test_draft_survives_a_new_engine(db: Database) -> None:
    await Chat(engine_on(db), user_id="502").send(PROBLEM)
    again = Chat(engine_on(db), user_id="502")  # as after a restart
    await again.press("cls:yes")
    assert "photo:done" in again.payloads


async def test_citizens_in_parallel_get_distinct_numbers(db: Database) -> None:
    engine = engine_on(db)
    chats = [Chat(engine, user_id=str(600 + i)) for i in range(8)]
    await asyncio.gather(*(file_complaint(c) for c in chats))
    async with db.uow() as uow:
        numbers = set()
        for chat in chats:
            citizen = await uow.citizens.by_identity("telegram", chat.user_id)
            assert citizen is not None
            [complaint] = await uow.complaints.for_citizen(citizen.id or 0)
            assert complaint.number in chat.text
            numbers.add(complaint.number)
    assert len(numbers) == 8


@pytest.mark.postgres
async def test_two_processes_take_turns_on_one_citizen(postgres_url: str) -> None:
    """Web workers each have their own engine lock: on PostgreSQL the conversation row,
    locked from load to commit, makes a second process wait for the first one's step
    instead of both starting from the same draft and the last save winning."""
    await upgrade_async(postgres_url)
    first, second = Database.from_url(postgres_url), Database.from_url(postgres_url)
    try:
        chat = Chat(engine_on(first), user_id="701")
        await chat.send(PROBLEM)
        await chat.press("cls:yes")  # now in the photo step
        async with first.uow() as held:  # process 1 is in the middle of a step
            conversation = await held.conversations.load("telegram", "701")
            other = asyncio.create_task(  # process 2 gets the citizen's next photo
                Chat(engine_on(second), user_id="701").send(
                    attachments=(photo("file-second"),)))
            await wait_for_lock_waiter(first)
            assert not other.done()
            conversation.data = conversation.data or {}
            conversation.data["draft"]["photos"].append(
                {"ref": "telegram:file-first", "mime": "image/jpeg"})
            await held.conversations.save(conversation)
            await held.commit()
        await other
        async with first.uow() as uow:
            saved = await uow.conversations.load("telegram", "701")
        assert [p["ref"] for p in (saved.data or {})["draft"]["photos"]] == [
            "telegram:file-first", "telegram:file-second"]
    finally:
        await first.dispose()
        await second.dispose()


async def wait_for_lock_waiter(db: Database) -> None:
    """Until some session of this database waits for a row lock (another process's step
    blocked on the conversation row)."""
    query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                 "AND wait_event_type = 'Lock'")
    for _ in range(500):
        async with db.engine.connect() as conn:
            if (await conn.execute(query)).scalar():
                return
        await asyncio.sleep(0.02)
    raise AssertionError("no session waited for the conversation row")
