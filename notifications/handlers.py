"""Domain events → outbox rows. Runs inside the committing unit of work (see
:class:`domain.ports.UnitOfWork`), so a notice is stored if and only if its change is."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from dialogue.i18n import format_date
from dialogue.messages import Address, Channel, OutgoingMessage
from domain.catalogue import Catalogue
from domain.complaint import Complaint, EventKind, Status
from domain.events import (
    ComplaintAnswered,
    ComplaintRegistered,
    DomainEvent,
    OperatorMessageAdded,
    StatusChanged,
)
from domain.ports import EventHandler, UnitOfWork
from notifications import texts
from notifications.outbox import Kind, Priority, new_message

OPERATOR_MESSAGE = texts.N_("Operator's reply on complaint №{number}: {text}")
Notice = Callable[[str], OutgoingMessage]  # a notice's text in a language


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _text(msgid: str, **params: object) -> Notice:
    return lambda lang: texts.notice(lang, msgid, **params)  # type: ignore[arg-type]


def combine(*handlers: EventHandler) -> EventHandler:
    """One event handler that runs ``handlers`` in order, in the same unit of work (so
    all their outbox rows commit with the change, or none do)."""

    async def handle(uow: UnitOfWork, events: Sequence[DomainEvent]) -> None:
        for handler in handlers:
            await handler(uow, events)

    return handle


class StatusNotifier:
    """The event handler that tells citizens about their complaints: registered, taken
    into work, answered (with the answer), closed, reopened, rejected, merged.

    Notices go to the citizen's chat on the channel the complaint came from, in their
    language; nothing is written for a citizen marked unreachable. A citizen who filed
    in the dialogue has just seen the registration confirmed in the reply, so the
    registration notice is written only for complaints registered by someone else
    (an operator), unless ``notify_self_registered`` is set. An answer that moves a
    complaint through "in progress" to "answered" at once gives one notice, the answer.
    """

    def __init__(self, catalogue: Catalogue, *, notify_self_registered: bool = False,
                 priority: int = Priority.STATUS) -> None:
        self.catalogue = catalogue
        self.notify_self_registered = notify_self_registered
        self.priority = priority

    async def __call__(self, uow: UnitOfWork, events: Sequence[DomainEvent]) -> None:
        by_complaint: dict[int, list[DomainEvent]] = {}
        for event in events:
            if event.complaint_id is not None:
                by_complaint.setdefault(event.complaint_id, []).append(event)
        for complaint_id, batch in by_complaint.items():
            await self._notify(uow, complaint_id, batch)

    async def _notify(self, uow: UnitOfWork, complaint_id: int,
                      batch: list[DomainEvent]) -> None:
        complaint = await uow.complaints.get(complaint_id)
        if complaint is None:
            return
        answered = any(isinstance(e, ComplaintAnswered) for e in batch)
        notices = []
        for event in batch:
            found = await self._notice(uow, complaint, event, answered)
            if found is not None:
                notices.append((event, found))
        if not notices:  # e.g. a complaint the citizen filed: the reply confirmed it
            return
        citizen = await uow.citizens.get(complaint.citizen_id)
        if citizen is None or not citizen.reachable:
            return
        identity = citizen.identity_on(complaint.channel)
        if identity is None:
            return
        to = Address(Channel(complaint.channel), identity.chat_id)
        for event, (kind, key, text) in notices:
            await uow.outbox.add(new_message(
                kind, to, text(citizen.language), dedup_key=key, now=event.at,
                priority=self.priority, citizen_id=citizen.id, complaint_id=complaint.id))

    async def _notice(self, uow: UnitOfWork, complaint: Complaint, event: DomainEvent,
                      answered: bool) -> tuple[Kind, str, Notice] | None:
        """The notice an event gives, if any: its kind, dedup key and text (by language)."""
        number = complaint.number
        cid = complaint.id
        if isinstance(event, ComplaintRegistered):
            if not (self.notify_self_registered or self._registered_by_other(complaint)):
                return None
            agency = self._agency(complaint)

            def registered(lang: str) -> OutgoingMessage:
                return texts.notice(lang, texts.REGISTERED, number=number, agency=agency,
                                    date=format_date(complaint.resolution_due, lang))

            return Kind.STATUS, f"status:{cid}:registered", registered
        if isinstance(event, ComplaintAnswered):
            return Kind.ANSWER, f"answer:{cid}:{_stamp(event.at)}", _text(
                texts.ANSWER, number=number, answer=event.text)
        if isinstance(event, OperatorMessageAdded):
            return Kind.ANSWER, f"operator:{cid}:{_stamp(event.at)}", _text(
                OPERATOR_MESSAGE, number=number, text=event.text)
        if not isinstance(event, StatusChanged):
            return None
        key = f"status:{cid}:{event.new}:{_stamp(event.at)}"
        new = Status(event.new)
        if new is Status.IN_PROGRESS and not answered:
            text = _text(texts.IN_PROGRESS, number=number, agency=self._agency(complaint))
        elif new is Status.ANSWERED and not answered:
            text = _text(texts.ANSWERED, number=number)
        elif new is Status.CLOSED:
            text = _text(texts.CLOSED, number=number)
        elif new is Status.REOPENED:
            text = _text(texts.REOPENED, number=number)
        elif new is Status.REJECTED:
            text = _text(texts.REJECTED, number=number, reason=event.reason)
        elif new is Status.DUPLICATE:
            original = (await uow.complaints.get(complaint.duplicate_of)
                        if complaint.duplicate_of is not None else None)
            text = _text(texts.DUPLICATE, number=number,
                         original=original.number if original else "?", reason=event.reason)
        else:
            return None
        return Kind.STATUS, key, text

    def _agency(self, complaint: Complaint) -> str:
        try:
            return self.catalogue.agency(complaint.agency).short_name
        except KeyError:
            return complaint.agency

    @staticmethod
    def _registered_by_other(complaint: Complaint) -> bool:
        entry = next((h for h in complaint.history if h.kind is EventKind.REGISTERED), None)
        return entry is not None and entry.actor != "citizen"
