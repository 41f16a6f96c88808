"""The Telegram reply keyboards' labels kept in the conversation store, on SQLite and
PostgreSQL (:class:`bots.telegram.keyboards.SqlReplyKeyboards`)."""

from __future__ import annotations

from bots.telegram.keyboards import SqlReplyKeyboards
from domain.storage import Database

SKIP = {"⏭ Пропустить": "loc:skip"}


async def test_a_keyboard_is_seen_by_another_process_and_forgotten(db: Database) -> None:
    shows, other = SqlReplyKeyboards(db.uow), SqlReplyKeyboards(db.uow)
    assert await other.payload("501", "⏭ Пропустить") is None
    await shows.shown("501", SKIP)
    # a restarted process, or another webhook worker
    assert await other.payload("501", "⏭ Пропустить") == "loc:skip"
    assert await other.payload("501", "Пропустить") is None  # labels match exactly
    assert await other.payload("502", "⏭ Пропустить") is None  # per chat
    # the next step shows none: the process that read it forgets it, for everyone
    await other.shown("501", {})
    assert await shows.payload("501", "⏭ Пропустить") is None
    # a new keyboard replaces the old one
    await shows.shown("501", {"⏭ Skip": "loc:skip"})
    assert await other.payload("501", "⏭ Skip") == "loc:skip"
    assert await other.payload("501", "⏭ Пропустить") is None


async def test_a_step_without_a_keyboard_writes_only_what_the_process_knows(
        db: Database) -> None:
    """No write per dialogue step: a process forgets only the keyboards it wrote or read
    (see the module doc for what that leaves behind)."""
    shows, unaware = SqlReplyKeyboards(db.uow), SqlReplyKeyboards(db.uow)
    await shows.shown("501", SKIP)
    await unaware.shown("501", {})
    assert await shows.payload("501", "⏭ Пропустить") == "loc:skip"
    await shows.shown("501", {})
    assert await unaware.payload("501", "⏭ Пропустить") is None
