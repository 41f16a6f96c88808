"""The complaint aggregate: its data, lifecycle rules and history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from domain.events import (
    CitizenMessageAdded,
    ComplaintAnswered,
    ComplaintReclassified,
    ComplaintRegistered,
    DomainEvent,
    OperatorMessageAdded,
    StatusChanged,
)


class Status(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    CLOSED = "closed"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    REOPENED = "reopened"


OPEN_STATUSES = frozenset({Status.NEW, Status.IN_PROGRESS, Status.REOPENED, Status.ANSWERED})

# The lifecycle: new → in_progress → answered → closed; rejected and duplicate end it early;
# a closed, answered or rejected complaint can be reopened and then worked again.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.NEW: frozenset({Status.IN_PROGRESS, Status.REJECTED, Status.DUPLICATE}),
    Status.IN_PROGRESS: frozenset({Status.ANSWERED, Status.REJECTED, Status.DUPLICATE}),
    Status.ANSWERED: frozenset({Status.CLOSED, Status.REOPENED, Status.IN_PROGRESS}),
    Status.CLOSED: frozenset({Status.REOPENED}),
    Status.REJECTED: frozenset({Status.REOPENED}),
    Status.DUPLICATE: frozenset({Status.REOPENED}),
    Status.REOPENED: frozenset({Status.IN_PROGRESS, Status.ANSWERED, Status.REJECTED,
                                Status.DUPLICATE}),
}


class IllegalTransition(ValueError):
    def __init__(self, old: Status, new: Status) -> None:
        super().__init__(f"cannot change status from {old} to {new}")
        self.old, self.new = old, new


class ClassifiedBy(StrEnum):
    NLU = "nlu"  # classifier suggestion accepted by the citizen
    CITIZEN = "citizen"  # citizen picked it by hand
    OPERATOR = "operator"


class EventKind(StrEnum):
    REGISTERED = "registered"
    STATUS = "status"
    CITIZEN_MESSAGE = "citizen_message"
    OPERATOR_MESSAGE = "operator_message"
    RECLASSIFIED = "reclassified"
    ATTACHMENT = "attachment"


@dataclass(slots=True)
class HistoryEntry:
    """One line of a complaint's history. ``id`` is None until stored."""

    kind: EventKind
    at: datetime
    actor: str
    text: str = ""
    data: dict[str, str] = field(default_factory=dict)
    id: int | None = None


@dataclass(slots=True)
class Photo:
    ref: str  # channel file reference ("telegram:<file_id>", "web:<upload id>", ...)
    mime: str = ""


@dataclass(slots=True)
class Complaint:
    number: str
    citizen_id: int
    channel: str
    text: str
    sector: str
    category: str
    agency: str
    municipality: str | None
    created_at: datetime
    first_answer_due: datetime
    resolution_due: datetime
    classified_by: ClassifiedBy = ClassifiedBy.CITIZEN
    confidence: float | None = None
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    photos: list[Photo] = field(default_factory=list)
    status: Status = Status.NEW
    duplicate_of: int | None = None
    first_answered_at: datetime | None = None
    resolved_at: datetime | None = None
    updated_at: datetime | None = None
    history: list[HistoryEntry] = field(default_factory=list)
    id: int | None = None
    events: list[DomainEvent] = field(default_factory=list, repr=False)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def record_registration(self) -> None:
        self.history.append(HistoryEntry(EventKind.REGISTERED, self.created_at, "citizen",
                                         self.text))
        self.events.append(ComplaintRegistered(self.id, self.created_at, self.number))

    def change_status(self, new: Status, *, actor: str, at: datetime, reason: str = "",
                      duplicate_of: int | None = None) -> None:
        """Move along the lifecycle; raises :class:`IllegalTransition` otherwise."""
        old = self.status
        if new not in TRANSITIONS[old]:
            raise IllegalTransition(old, new)
        if new is Status.DUPLICATE:
            if duplicate_of is None or duplicate_of == self.id:
                raise ValueError("a duplicate must link to another complaint")
            self.duplicate_of = duplicate_of
        self.status = new
        self.updated_at = at
        if new in (Status.CLOSED, Status.REJECTED, Status.DUPLICATE):
            self.resolved_at = at
        elif new is Status.REOPENED:
            self.resolved_at = None
        data = {"old": old.value, "new": new.value}
        if duplicate_of is not None:
            data["duplicate_of"] = str(duplicate_of)
        self.history.append(HistoryEntry(EventKind.STATUS, at, actor, reason, data))
        self.events.append(StatusChanged(self.id, at, old.value, new.value, actor, reason))

    def answer(self, text: str, *, actor: str, at: datetime) -> None:
        """An operator's substantive answer: recorded, and the status moves to answered."""
        if not text.strip():
            raise ValueError("an answer needs text")
        if self.status in (Status.NEW, Status.REOPENED):
            self.change_status(Status.IN_PROGRESS, actor=actor, at=at)
        self.add_operator_message(text, actor=actor, at=at)
        self.change_status(Status.ANSWERED, actor=actor, at=at)
        self.events.append(ComplaintAnswered(self.id, at, text, actor))

    def add_operator_message(self, text: str, *, actor: str, at: datetime) -> None:
        if self.first_answered_at is None:
            self.first_answered_at = at
        self.updated_at = at
        self.history.append(HistoryEntry(EventKind.OPERATOR_MESSAGE, at, actor, text))

    def message_citizen(self, text: str, *, actor: str, at: datetime) -> None:
        """An operator's message to the citizen: recorded, and relayed (the event)."""
        if not text.strip():
            raise ValueError("a message needs text")
        self.add_operator_message(text, actor=actor, at=at)
        self.events.append(OperatorMessageAdded(self.id, at, text, actor))

    def add_citizen_message(self, text: str, *, at: datetime,
                            photos: list[Photo] | None = None) -> None:
        """Details the citizen added later; photos are appended to the complaint."""
        self.updated_at = at
        if text:
            self.history.append(HistoryEntry(EventKind.CITIZEN_MESSAGE, at, "citizen", text))
        for photo in photos or []:
            self.photos.append(photo)
            self.history.append(HistoryEntry(EventKind.ATTACHMENT, at, "citizen", "",
                                             {"ref": photo.ref}))
        self.events.append(CitizenMessageAdded(self.id, at, text))

    def reclassify(self, sector: str, category: str, agency: str, *, actor: str,
                   at: datetime) -> None:
        old = f"{self.sector}/{self.category}"
        self.sector, self.category, self.agency = sector, category, agency
        self.classified_by = ClassifiedBy.OPERATOR
        self.updated_at = at
        self.history.append(HistoryEntry(EventKind.RECLASSIFIED, at, actor, "",
                                         {"old": old, "new": f"{sector}/{category}"}))
        self.events.append(ComplaintReclassified(self.id, at, sector, category, actor))

    def is_overdue(self, now: datetime) -> bool:
        return self.is_open and now > self.resolution_due
