"""Where a complaint's card was posted: its topic and the ids of its text messages.

Kept in the conversation store (channel ``backoffice``, key ``card:<complaint id>``), the
one key-value table the bots may use without a schema change; the card is edited in
place when the complaint changes (:meth:`BackofficeMessenger.edit_card`).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.ports import Conversation
from domain.storage.uow import Database

CHANNEL = "backoffice"
STATE = "card"


def _key(complaint_id: int) -> str:
    return f"card:{complaint_id}"


@dataclass(frozen=True, slots=True)
class PostedCard:
    thread_id: int
    message_ids: tuple[int, ...]  # the card's text, in pieces; the last has the buttons


async def posted_card(database: Database, complaint_id: int) -> PostedCard | None:
    async with database.uow() as uow:
        found = await uow.conversations.load(CHANNEL, _key(complaint_id))
    data = found.data or {}
    thread, ids = data.get("thread_id"), data.get("message_ids")
    if found.state != STATE or not isinstance(thread, int) or not isinstance(ids, list) \
            or not ids or not all(isinstance(i, int) for i in ids):
        return None
    return PostedCard(thread, tuple(ids))


async def remember_card(database: Database, complaint_id: int, card: PostedCard) -> None:
    async with database.uow() as uow:
        await uow.conversations.save(Conversation(
            CHANNEL, _key(complaint_id), STATE,
            {"thread_id": card.thread_id, "message_ids": list(card.message_ids)}))
        await uow.commit()
