"""Outbox messages from the dialogue's point of view (a payload is
:meth:`OutgoingMessage.to_json <dialogue.messages.OutgoingMessage.to_json>`).

The outbox itself (:class:`~domain.ports.Outbox`, :class:`~domain.ports.OutboxMessage`)
is a domain port, because the unit of work carries it and ``domain/`` must not import
``dialogue/``; this module is the bridge that knows the message types.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from dialogue.messages import Address, Channel, OutgoingMessage
from domain.ports import Outbox, OutboxMessage, OutboxStatus

__all__ = ["Kind", "Outbox", "OutboxMessage", "OutboxStatus", "Priority", "address_of",
           "new_message"]


class Kind(StrEnum):
    """What started a message; later issues add surveys, reminders, escalations..."""

    STATUS = "status"
    ANSWER = "answer"


class Priority:
    """Higher goes first: a citizen waiting for their own complaint beats a broadcast."""

    BROADCAST = 0
    SURVEY = 10
    STATUS = 20


def address_of(message: OutboxMessage) -> Address:
    return Address(Channel(message.channel), message.chat_id)


def new_message(kind: str, to: Address, msg: OutgoingMessage, *, dedup_key: str,
                now: datetime, not_before: datetime | None = None, priority: int = 0,
                citizen_id: int | None = None,
                complaint_id: int | None = None) -> OutboxMessage:
    """A pending outbox message for ``to``, due at ``not_before`` (default: now)."""
    return OutboxMessage(
        kind=str(kind), channel=to.channel.value, chat_id=to.chat_id,
        payload=msg.to_json(), dedup_key=dedup_key, created_at=now,
        not_before=not_before or now, priority=priority, citizen_id=citizen_id,
        complaint_id=complaint_id)
