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


async def look_up(db: Database, keyboards: SqlReplyKeyboards, chat_id: str,
                  text: str) -> str | None:
    """What the engine's ``rewrite`` does: the look-up in the step's unit, after the
    citizen's conversation was loaded (the unit then rolls back here)."""
    async with db.uow() as uow:
        dialogue = await uow.conversations.load("telegram", chat_id)
        return await keyboards.payload(chat_id, text, dialogue=dialogue,
                                       store=uow.conversations)


async def test_a_keyboard_is_seen_by_another_process_until_the_dialogue_moves_on(
        db: Database) -> None:
    shows, other = SqlReplyKeyboards(), SqlReplyKeyboards()
    await dialogue_step(db, "501", shows, {})
    assert await look_up(db, other, "501", "⏭ Пропустить") is None
    await dialogue_step(db, "501", shows, SKIP)  # the step that asks for the location
    # a restarted process, or another webhook worker
    assert await look_up(db, other, "501", "⏭ Пропустить") == "loc:skip"
    assert await look_up(db, other, "501", "Пропустить") is None  # labels match exactly
    assert await look_up(db, other, "502", "⏭ Пропустить") is None  # per chat
    # a step without a keyboard writes nothing here, yet the keyboard is stale for all
    await dialogue_step(db, "501", shows, {})
    assert await look_up(db, shows, "501", "⏭ Пропустить") is None
    assert await look_up(db, other, "501", "⏭ Пропустить") is None
    # the question again, with a keyboard in another language: that one counts
    await dialogue_step(db, "501", other, {"⏭ Skip": "loc:skip"})
    assert await look_up(db, shows, "501", "⏭ Skip") == "loc:skip"
    assert await look_up(db, shows, "501", "⏭ Пропустить") is None


async def test_a_look_up_writes_nothing(db: Database) -> None:
    keyboards = SqlReplyKeyboards()
    assert await look_up(db, keyboards, "601", "ул. Ленина 5") is None  # no keyboard, no dialogue
    await dialogue_step(db, "602", keyboards, {})
    assert await look_up(db, keyboards, "602", "ул. Ленина 5") is None  # a dialogue, no keyboard
    async with db.uow() as uow:
        rows = await uow.conversations.peek("601", "tg-keyboard", "telegram")
        assert rows == {}
        rows = await uow.conversations.peek("602", "tg-keyboard", "telegram")
        assert list(rows) == ["telegram"] and rows["telegram"].state == "cmp_muni"
