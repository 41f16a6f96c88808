"""Complaint events → outbox rows for the back-office group (channel ``backoffice``).

Runs inside the committing unit of work, like :class:`notifications.handlers.StatusNotifier`:
a card or a forwarded addition is stored if and only if the change is. Rows are addressed
to a complaint's topic (see :mod:`bots.backoffice.messenger`), never to a citizen, so a
citizen who blocked the bot does not hold them back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from dialogue.messages import Attachment, AttachmentKind, OutgoingMessage
from domain.catalogue import Catalogue
from domain.complaint import Complaint, EventKind, Photo
from domain.events import (
    CitizenMessageAdded,
    ComplaintReclassified,
    ComplaintRegistered,
    DomainEvent,
    OperatorMessageAdded,
    StatusChanged,
)
from domain.ports import OutboxMessage, UnitOfWork

from .card import agency_name, sector_label
from .texts import _, status_name

CHANNEL = "backoffice"
KIND = "backoffice"


class Op:
    CARD = "card"  # open the topic if needed and post the card (rendered at send time)
    FORWARD = "forward"  # the citizen's addition
    EVENT = "event"  # a short line: status changed, reclassified, citizen unreachable
    CARD_EDIT = "edit"  # show the complaint as it is now in its card (rendered at send time)


_TAILS = {Op.CARD: "card", Op.CARD_EDIT: "edit"}


def topic_address(complaint_id: int, op: str) -> str:
    """The outbox ``chat_id`` of a back-office row: the complaint's topic (and, for the
    card and its edits, that it is the card)."""
    tail = _TAILS.get(op)
    return f"{complaint_id}:{tail}" if tail else str(complaint_id)


def parse_topic_op(chat_id: str) -> tuple[int, str]:
    """``(complaint_id, op)`` of a row's ``chat_id`` (``op`` is :attr:`Op.CARD`,
    :attr:`Op.CARD_EDIT` or :attr:`Op.FORWARD` for anything else posted in the topic);
    ``ValueError`` if malformed."""
    head, _sep, tail = chat_id.partition(":")
    ops = {v: k for k, v in _TAILS.items()}
    if not head.isdigit() or (tail and tail not in ops):
        raise ValueError(f"not a back-office topic address: {chat_id!r}")
    return int(head), ops.get(tail, Op.FORWARD)


def parse_topic_address(chat_id: str) -> tuple[int, bool]:
    """``(complaint_id, is_card)`` of a row's ``chat_id``; ``ValueError`` if malformed."""
    complaint_id, op = parse_topic_op(chat_id)
    return complaint_id, op == Op.CARD


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def backoffice_row(complaint_id: int, op: str, msg: OutgoingMessage, *, dedup_key: str,
                   now: datetime) -> OutboxMessage:
    payload = {**msg.to_json(), "complaint_id": complaint_id, "op": op}
    return OutboxMessage(kind=KIND, channel=CHANNEL, chat_id=topic_address(complaint_id, op),
                         payload=payload, dedup_key=dedup_key, created_at=now, not_before=now,
                         complaint_id=complaint_id)


class BackofficeNotifier:
    """The event handler that keeps each complaint's topic up to date."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    async def __call__(self, uow: UnitOfWork, events: Sequence[DomainEvent]) -> None:
        cache: dict[int, Complaint | None] = {}
        for event in events:
            cid = event.complaint_id
            if cid is None:
                continue
            if cid not in cache:
                cache[cid] = await uow.complaints.get(cid)
            complaint = cache[cid]
            if complaint is None:
                continue
            row = await self._row(uow, complaint, event)
            if row is not None:
                await uow.outbox.add(row)
            if isinstance(event, StatusChanged | ComplaintReclassified):
                await uow.outbox.add(backoffice_row(
                    cid, Op.CARD_EDIT, OutgoingMessage(""),
                    dedup_key=f"bo:edit:{cid}:{type(event).__name__}:{_stamp(event.at)}",
                    now=event.at))

    async def _row(self, uow: UnitOfWork, complaint: Complaint,
                   event: DomainEvent) -> OutboxMessage | None:
        cid = complaint.id
        assert cid is not None
        at = event.at
        if isinstance(event, ComplaintRegistered):
            # the card is rendered from the database when it is sent
            return backoffice_row(cid, Op.CARD, OutgoingMessage(""),
                                  dedup_key=f"bo:card:{cid}", now=at)
        if isinstance(event, CitizenMessageAdded):
            photos = [p for p in complaint.photos if _added_at(complaint, p, at)]
            return backoffice_row(cid, Op.FORWARD, self._forward(event.text, photos),
                                  dedup_key=f"bo:fwd:{cid}:{_stamp(at)}:{_digest(event.text)}",
                                  now=at)
        if isinstance(event, StatusChanged):
            text = _("🔄 Status: {old} → {new} ({actor})", old=status_name(event.old),
                     new=status_name(event.new), actor=event.actor)
            if event.reason.strip():
                text += "\n" + _("Reason: {reason}", reason=event.reason.strip())
            return backoffice_row(cid, Op.EVENT, OutgoingMessage(text),
                                  dedup_key=f"bo:st:{cid}:{event.new}:{_stamp(at)}", now=at)
        if isinstance(event, ComplaintReclassified):
            sector, category = sector_label(self.catalogue, complaint)
            text = _("🏷 Reclassified: {sector} / {category}, responsible: {agency} ({actor})",
                     sector=sector, category=category,
                     agency=agency_name(self.catalogue, complaint.agency), actor=event.actor)
            return backoffice_row(cid, Op.EVENT, OutgoingMessage(text),
                                  dedup_key=f"bo:rc:{cid}:{_stamp(at)}", now=at)
        if isinstance(event, OperatorMessageAdded):
            citizen = await uow.citizens.get(complaint.citizen_id)
            if citizen is not None and not citizen.reachable:
                text = _("⚠️ The citizen has blocked the bot: this message was not delivered.")
                return backoffice_row(
                    cid, Op.EVENT, OutgoingMessage(text),
                    dedup_key=f"bo:unreachable:{cid}:{_stamp(at)}:{_digest(event.text)}",
                    now=at)
        return None

    @staticmethod
    def _forward(text: str, photos: list[Photo]) -> OutgoingMessage:
        lines = [_("✉️ The citizen added:")]
        if text:
            lines.append(text)
        telegram = [p for p in photos if p.ref.startswith("telegram:")]
        if photos:
            lines.append(_("📎 Photos: {count}", count=len(photos)))
        return OutgoingMessage("\n".join(lines), attachments=tuple(
            Attachment(AttachmentKind.PHOTO, p.ref, p.mime) for p in telegram))


def _added_at(complaint: Complaint, photo: Photo, at: datetime) -> bool:
    """Whether ``photo`` was attached by the citizen's addition at ``at``."""
    return any(h.kind is EventKind.ATTACHMENT and h.at == at and h.data.get("ref") == photo.ref
               for h in complaint.history)
