"""An operator's photo in a complaint's topic: relayed to the citizen and recorded.

The photo is made ready for the citizen's channel first (:mod:`bots.backoffice.photos`),
outside any transaction; then one unit of work records the caption and the photo in the
complaint's history and writes the outbox row that delivers both. Telegram hands a
message out again if the process died before confirming it: the ids of the operator's
last messages, saved with their step in the same commit, tell a repeat.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from aiogram import Bot
from aiogram.types import Message

from dialogue.messages import Address, Channel
from domain.complaint import EventKind, HistoryEntry
from domain.storage.uow import Database, SqlUnitOfWork
from notifications.handlers import OPERATOR_MESSAGE
from notifications.outbox import Kind, Priority, new_message
from notifications.texts import notice

from .photos import PhotoRelay, RelayFailed
from .texts import _

log = logging.getLogger(__name__)

PHOTO_MARK = "📷"  # an operator's photo without a caption, in the history and the notice
SEEN, SEEN_KEPT = "seen", 20  # operator message ids recently taken, per operator and topic


async def _seen(uow: SqlUnitOfWork, key: tuple[str, str]) -> list[int]:
    pending = await uow.conversations.load(*key)
    return list((pending.data or {}).get(SEEN, ()))


async def relay_photo(database: Database, photos: PhotoRelay, bot: Bot, message: Message, *,
                      complaint_id: int, key: tuple[str, str], actor: str,
                      now: datetime) -> str:
    """Relay ``message``'s photo and caption; what to tell the operator (or ``""``).
    ``key`` names the operator's step in the conversation store."""
    assert message.photo
    file_id = max(message.photo, key=lambda size: size.width * size.height).file_id
    shown = (message.caption or "").strip() or PHOTO_MARK
    async with database.uow() as uow:
        if message.message_id in await _seen(uow, key):
            return ""
        complaint = await uow.complaints.get(complaint_id)
        citizen = await uow.citizens.get(complaint.citizen_id) if complaint else None
    if complaint is None or citizen is None:
        return _("Complaint not found.")
    identity = citizen.identity_on(complaint.channel)
    to = (Address(Channel(complaint.channel), identity.chat_id)
          if identity is not None and citizen.reachable else None)
    attachment = None
    if to is not None:
        try:
            attachment = await photos.attachment(bot, file_id, to)
        except RelayFailed as exc:
            log.warning("backoffice: photo for complaint %s not relayed: %s",
                        complaint.number, exc)
            return _("⚠️ The photo could not be sent to the citizen; please try again.")
    async with database.uow() as uow:
        pending = await uow.conversations.load(*key)
        seen = list((pending.data or {}).get(SEEN, ()))
        complaint = await uow.complaints.get(complaint_id)
        if message.message_id in seen or complaint is None:
            return ""
        complaint.add_operator_message(shown, actor=actor, at=now)
        complaint.history.append(HistoryEntry(EventKind.ATTACHMENT, now, actor, "",
                                              {"ref": f"telegram:{file_id}"}))
        await uow.complaints.save(complaint)
        if to is not None and attachment is not None:
            msg = notice(citizen.language, OPERATOR_MESSAGE, number=complaint.number,
                         text=shown)
            await uow.outbox.add(new_message(
                Kind.ANSWER, to, replace(msg, attachments=(attachment,)),
                dedup_key=f"operator-photo:{complaint_id}:{message.message_id}", now=now,
                priority=Priority.STATUS, citizen_id=citizen.id, complaint_id=complaint_id))
        pending.data = {**(pending.data or {}), SEEN: [*seen[1 - SEEN_KEPT:], message.message_id]}
        await uow.conversations.save(pending)
        await uow.commit()
    if to is None:
        return _("⚠️ The citizen has blocked the bot: this message was not delivered.")
    return ""
