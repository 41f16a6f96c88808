"""The Telegram reply keyboards' labels kept in the conversation store, on SQLite and
PostgreSQL (:class:`bots.telegram.keyboards.SqlReplyKeyboards`)."""

from __future__ import annotations

from bots.telegram.keyboards import SqlReplyKeyboards
from domain.ports import Conversation
from domain.storage import Database

SKIP = {"⏭ Пропустить": "loc:skip"}


async def dialogue_step(db: Database, chat_id: str, keyboards: SqlReplyKeyboards,
                        labels: dict[str, str]) -> None:
    """What the engine does on every step: save the citizen's conversation, then (its
    ``also_save``) the rows that keep the reply keyboard the step shows, in one unit."""
    async with db.uow() as uow:
        await uow.conversations.save(Conversation("telegram", chat_id, "cmp_muni", {}))
        for row in keyboards.keep(chat_id, labels):
            await uow.conversations.save(row)
        await uow.commit()


async def test_a_keyboard_is_seen_by_another_process_until_the_dialogue_moves_on(
        db: Database) -> None:
    shows, other = SqlReplyKeyboards(db.uow), SqlReplyKeyboards(db.uow)
    await dialogue_step(db, "501", shows, {})
    assert await other.payload("501", "⏭ Пропустить") is None
    await dialogue_step(db, "501", shows, SKIP)  # the step that asks for the location
    # a restarted process, or another webhook worker
    assert await other.payload("501", "⏭ Пропустить") == "loc:skip"
    assert await other.payload("501", "Пропустить") is None  # labels match exactly
    assert await other.payload("502", "⏭ Пропустить") is None  # per chat
    # a step without a keyboard writes nothing here, yet the keyboard is stale for all
    await dialogue_step(db, "501", shows, {})
    assert await shows.payload("501", "⏭ Пропустить") is None
    assert await other.payload("501", "⏭ Пропустить") is None
    # the question again, with a keyboard in another language: that one counts
    await dialogue_step(db, "501", other, {"⏭ Skip": "loc:skip"})
    assert await shows.payload("501", "⏭ Skip") == "loc:skip"
    assert await shows.payload("501", "⏭ Пропустить") is None


async def test_a_look_up_writes_nothing(db: Database) -> None:
    keyboards = SqlReplyKeyboards(db.uow)
    assert await keyboards.payload("601", "ул. Ленина 5") is None  # no keyboard, no dialogue
    await dialogue_step(db, "602", keyboards, {})
    assert await keyboards.payload("602", "ул. Ленина 5") is None  # a dialogue, no keyboard
    async with db.uow() as uow:
        rows = await uow.conversations.peek("601", "tg-keyboard", "telegram")
        assert rows == {}  # (load() would have inserted a row to lock on PostgreSQL)
        rows = await uow.conversations.peek("602", "tg-keyboard", "telegram")
        assert list(rows) == ["telegram"] and rows["telegram"].state == "cmp_muni"
