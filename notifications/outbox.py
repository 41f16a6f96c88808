"""Outbox messages from the dialogue's point of view: ``OutgoingMessage`` ⇄ JSON payload.

The outbox itself (:class:`~domain.ports.Outbox`, :class:`~domain.ports.OutboxMessage`)
is a domain port, because the unit of work carries it and ``domain/`` must not import
``dialogue/``; this module is the bridge that knows the message types.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from dialogue.messages import (
    Address,
    Attachment,
    AttachmentKind,
    Button,
    Channel,
    OutgoingMessage,
)
from domain.ports import Outbox, OutboxMessage, OutboxStatus

__all__ = ["Kind", "Outbox", "OutboxMessage", "OutboxStatus", "Priority", "address_of",
           "message_of", "new_message", "to_payload"]


class Kind(StrEnum):
    """What started a message; later issues add surveys, reminders, escalations..."""

    STATUS = "status"
    ANSWER = "answer"


class Priority:
    """Higher goes first: a citizen waiting for their own complaint beats a broadcast."""

    BROADCAST = 0
    SURVEY = 10
    STATUS = 20


def to_payload(msg: OutgoingMessage) -> dict[str, Any]:
    payload: dict[str, Any] = {"text": msg.text}
    if msg.buttons:
        payload["buttons"] = [[{"label": b.label, "payload": b.payload} for b in row]
                              for row in msg.buttons]
    if msg.attachments:
        payload["attachments"] = [{"kind": a.kind.value, "ref": a.ref, "mime": a.mime,
                                   "name": a.name} for a in msg.attachments]
    if msg.request_location:
        payload["request_location"] = True
    if msg.remove_keyboard:
        payload["remove_keyboard"] = True
    return payload


def message_of(payload: dict[str, Any]) -> OutgoingMessage:
    """The ``OutgoingMessage`` stored by :func:`to_payload`."""
    return OutgoingMessage(
        text=str(payload.get("text", "")),
        buttons=tuple(tuple(Button(b["label"], b["payload"]) for b in row)
                      for row in payload.get("buttons", ())),
        attachments=tuple(Attachment(AttachmentKind(a["kind"]), a["ref"], a.get("mime", ""),
                                     a.get("name", ""))
                          for a in payload.get("attachments", ())),
        request_location=bool(payload.get("request_location", False)),
        remove_keyboard=bool(payload.get("remove_keyboard", False)),
    )


def address_of(message: OutboxMessage) -> Address:
    return Address(Channel(message.channel), message.chat_id)


def new_message(kind: str, to: Address, msg: OutgoingMessage, *, dedup_key: str,
                now: datetime, not_before: datetime | None = None, priority: int = 0,
                citizen_id: int | None = None,
                complaint_id: int | None = None) -> OutboxMessage:
    """A pending outbox message for ``to``, due at ``not_before`` (default: now)."""
    return OutboxMessage(
        kind=str(kind), channel=to.channel.value, chat_id=to.chat_id,
        payload=to_payload(msg), dedup_key=dedup_key, created_at=now,
        not_before=not_before or now, priority=priority, citizen_id=citizen_id,
        complaint_id=complaint_id)
