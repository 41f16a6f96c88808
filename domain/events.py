"""Domain events recorded by aggregates; handlers in notifications/ turn them into outbox rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class DomainEvent:
    complaint_id: int | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ComplaintRegistered(DomainEvent):
    number: str


@dataclass(frozen=True, slots=True)
class StatusChanged(DomainEvent):
    old: str
    new: str
    actor: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ComplaintAnswered(DomainEvent):
    text: str
    actor: str


@dataclass(frozen=True, slots=True)
class ComplaintReclassified(DomainEvent):
    sector: str
    category: str
    actor: str


@dataclass(frozen=True, slots=True)
class CitizenMessageAdded(DomainEvent):
    text: str


@dataclass(frozen=True, slots=True)
class OperatorMessageAdded(DomainEvent):
    """An operator wrote to the citizen (relayed to the citizen's channel)."""

    text: str
    actor: str
