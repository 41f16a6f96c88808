"""Interfaces the use cases need; SQL implementations live in ``domain.storage``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from domain.citizen import Citizen
from domain.complaint import Complaint


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

    async def save(self, conversation: Conversation) -> None: ...


class UnitOfWork(Protocol):
    """A transaction over the repositories; rolls back unless :meth:`commit` is called."""

    citizens: CitizenRepository
    complaints: ComplaintRepository
    conversations: ConversationStore

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...
