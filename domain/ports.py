"""Interfaces the use cases need; SQL implementations live in ``domain.storage``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from domain.citizen import Citizen
from domain.complaint import Complaint
from domain.events import DomainEvent

if TYPE_CHECKING:
    from domain.survey import Survey


class CitizenRepository(Protocol):
    async def get(self, citizen_id: int) -> Citizen | None: ...

    async def by_identity(self, channel: str, external_id: str) -> Citizen | None: ...

    async def add(self, citizen: Citizen) -> Citizen:
        """Store a new citizen; sets ``citizen.id``."""
        ...

    async def save(self, citizen: Citizen) -> None:
        """Write back changed fields (language, consent, subscriptions, reachable)."""
        ...


class ComplaintRepository(Protocol):
    async def get(self, complaint_id: int) -> Complaint | None: ...

    async def by_number(self, number: str) -> Complaint | None: ...

    async def for_citizen(self, citizen_id: int, limit: int = 20) -> Sequence[Complaint]:
        """Newest first."""
        ...

    async def add(self, complaint: Complaint) -> Complaint:
        """Store a new complaint with its history; sets ``id`` (and ``complaint_id`` of
        its pending events)."""
        ...

    async def save(self, complaint: Complaint) -> None:
        """Write back changed fields and append history entries that have no id yet."""
        ...

    async def next_number(self, year: int) -> str:
        """A new human-readable number, unique across processes, e.g. ``2026-000042``."""
        ...


@dataclass(slots=True)
class Conversation:
    """Dialogue state of one user on one channel: the step and a JSON-able draft."""

    channel: str
    user_id: str
    state: str = "idle"
    data: dict[str, Any] | None = None
    updated_at: datetime | None = None


class ConversationStore(Protocol):
    async def load(self, channel: str, user_id: str) -> Conversation: ...

    async def peek(self, user_id: str, *channels: str) -> dict[str, Conversation]:
        """Stored conversations of ``user_id`` by channel, read without a lock."""
        ...

    async def save(self, conversation: Conversation) -> None: ...


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after too many transient errors
    UNREACHABLE = "unreachable"  # the citizen blocked the bot or cannot be written to


@dataclass(slots=True)
class OutboxMessage:
    """One message the system decided to send, stored until a delivery worker sends it.

    ``payload`` is the JSON form of a dialogue ``OutgoingMessage`` (the domain does not
    know that type); ``dedup_key`` names the logical message, so it is written at most
    once (``"status:<complaint>:<status>:<time>"``, later ``"broadcast:<id>:<citizen>"``).
    Higher ``priority`` goes first; nothing is sent before ``not_before``.
    """

    kind: str
    channel: str
    chat_id: str
    payload: dict[str, Any]
    dedup_key: str
    created_at: datetime
    not_before: datetime
    priority: int = 0
    citizen_id: int | None = None
    complaint_id: int | None = None
    status: OutboxStatus = OutboxStatus.PENDING
    attempts: int = 0
    locked_until: datetime | None = None
    claim_token: str | None = None
    last_error: str = ""
    sent_at: datetime | None = None
    id: int | None = field(default=None)


class Outbox(Protocol):
    """The durable outbox. :meth:`add` runs in the transaction of the change that caused
    the message; the other methods are the delivery worker's, each in a short transaction
    of its own, and take the ``token`` of the claim so a worker whose lease ran out cannot
    overwrite what another worker did since."""

    async def add(self, message: OutboxMessage) -> bool:
        """Store a new message; ``False`` (and nothing written) if its ``dedup_key`` exists."""
        ...

    async def get(self, message_id: int) -> OutboxMessage | None: ...

    async def find(self, *, status: OutboxStatus | None = None, channel: str | None = None,
                   citizen_id: int | None = None) -> list[OutboxMessage]:
        """Messages in id order, for reports and tests."""
        ...

    async def claim(self, channel: str, now: datetime, *, limit: int, lease: timedelta,
                    token: str,
                    notes: Callable[[Sequence[OutboxMessage]],
                                    Iterable[tuple[Sequence[int], str]]] | None = None,
                    ) -> list[OutboxMessage]:
        """Lock up to ``limit`` due pending messages of ``channel`` until ``now + lease``;
        highest priority, then oldest ``not_before`` first. Due messages to unreachable
        citizens are marked unreachable instead of returned. Counts an attempt on each.
        Keeps each chat's order: no message is claimed while an older one to the same chat
        has been tried and is still pending (in flight or waiting to be retried).

        ``notes``, given the claimed messages, names ``(ids, note)`` pairs: the claim puts
        each note before those messages' stored ``last_error`` (what must survive the
        worker's crash: the request to many chats they go in); the returned messages
        keep their ``last_error`` as it was."""
        ...

    async def finish(self, message_id: int, token: str, status: OutboxStatus, *,
                     now: datetime, error: str = "") -> bool:
        """Mark a claimed message sent, failed or unreachable; ``False`` if the claim
        was lost (lease expired and another worker claimed it)."""
        ...

    async def finish_many(self, message_ids: Sequence[int], token: str,
                          status: OutboxStatus, *, now: datetime) -> int:
        """:meth:`finish` for many messages at once (a worker marks a whole batch in one
        statement); returns how many were still held by ``token``."""
        ...

    async def reschedule(self, message_id: int, token: str, *, not_before: datetime,
                         error: str = "") -> bool:
        """Give a claimed message back, due again at ``not_before``."""
        ...

    async def release(self, message_ids: Sequence[int], token: str) -> None:
        """Give claimed but unsent messages back, due at once (and the attempt uncounted)."""
        ...

    async def drop_pending_for(self, citizen_id: int, status: OutboxStatus, *,
                               now: datetime) -> int:
        """Close every pending message to a citizen with ``status``; returns how many."""
        ...


class SurveyRepository(Protocol):
    """Satisfaction surveys (:mod:`domain.survey`). The ``claim_*`` methods mark due work
    as done in the same statement that finds it, so two processes never both get it."""

    async def add(self, survey: Survey) -> Survey:
        """Store a new survey; sets ``survey.id``."""
        ...

    async def get(self, survey_id: int) -> Survey | None: ...

    async def save(self, survey: Survey) -> None: ...

    async def for_complaint(self, complaint_id: int) -> Sequence[Survey]:
        """Newest first."""
        ...

    async def claim_reminders(self, now: datetime, *, limit: int) -> list[Survey]:
        """Surveys still ``asked`` whose reminder is due; sets ``reminder_sent_at=now``."""
        ...

    async def claim_followups(self, now: datetime, *, limit: int) -> list[Survey]:
        """Surveys whose follow-up is due and not sent; sets ``followup_sent_at=now``."""
        ...


class UnitOfWork(Protocol):
    """A transaction over the repositories; rolls back unless :meth:`commit` is called.

    On :meth:`commit` the events of every aggregate the unit added or saved are handed to
    the unit's :data:`EventHandler` (if any) *before* the data is committed, so what the
    handler writes (outbox rows) is committed atomically with the change; then the
    aggregates' events are cleared.
    """

    citizens: CitizenRepository
    complaints: ComplaintRepository
    conversations: ConversationStore
    outbox: Outbox
    surveys: SurveyRepository

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...


EventHandler = Callable[[UnitOfWork, Sequence[DomainEvent]], Awaitable[None]]
"""Called by a unit of work's ``commit`` with the events recorded since it began."""
