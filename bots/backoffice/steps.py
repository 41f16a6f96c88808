"""What an operator's text in a complaint's topic does: it completes the step a button
started (answer and close, reject with a reason, mark as a duplicate of a number) or, with no
step pending, goes to the citizen. Every change is re-checked against the complaint's
current status and the operator's role inside the caller's unit of work."""

from __future__ import annotations

from datetime import datetime

from domain.complaint import TRANSITIONS, Complaint, IllegalTransition, Status
from domain.services import (
    NotFound,
    answer_complaint,
    change_status,
    relay_operator_message,
)
from domain.storage.uow import SqlUnitOfWork

from .operators import may_change
from .texts import _, status_name


class Refusal(Exception):
    """An operator's request that is not carried out; the text says why."""


async def check(uow: SqlUnitOfWork, role: str, complaint_id: int, new: Status) -> None:
    """Re-read the complaint in this unit and check the transition and the role."""
    complaint = await uow.complaints.get(complaint_id)
    if complaint is None:
        raise Refusal(_("Complaint not found."))
    old = complaint.status
    if new not in TRANSITIONS[old]:
        raise Refusal(_("⛔ Not allowed now: {old} → {new}.", old=status_name(old),
                        new=status_name(new)))
    if not may_change(role, old, new):
        raise Refusal(_("⛔ Your role does not allow this."))


async def complete_step(uow: SqlUnitOfWork, step: str, role: str, complaint_id: int,
                        text: str, *, actor: str, now: datetime) -> str:
    """Carry out ``step`` ("answer", "reject", "duplicate", or "idle": relay the text) and
    return the operator's reply ("" when the text only went to the citizen)."""
    try:
        if step == "answer":
            await answer_complaint(uow, complaint_id, text, actor=actor, now=now)
            await change_status(uow, complaint_id, Status.CLOSED, actor=actor, now=now)
            return _("✅ The answer was sent and the complaint closed.")
        if step == "reject":
            await check(uow, role, complaint_id, Status.REJECTED)
            await change_status(uow, complaint_id, Status.REJECTED, actor=actor,
                                now=now, reason=text)
            return _("⛔ The complaint was rejected.")
        if step == "duplicate":
            original = await _original(uow, complaint_id, text)
            await check(uow, role, complaint_id, Status.DUPLICATE)
            await change_status(uow, complaint_id, Status.DUPLICATE, actor=actor,
                                now=now, duplicate_of=original.id,
                                reason=f"№{original.number}")
            return _("🔁 Marked as a duplicate of №{number}.", number=original.number)
        await relay_operator_message(uow, complaint_id, text, actor=actor, now=now)
        return ""
    except (IllegalTransition, NotFound, ValueError) as exc:
        raise Refusal(_("⛔ Not possible now: {reason}", reason=str(exc))) from exc


async def _original(uow: SqlUnitOfWork, complaint_id: int, text: str) -> Complaint:
    number = text.strip().lstrip("№#").strip()
    original = await uow.complaints.by_number(number)
    if original is None:
        raise Refusal(_("Complaint №{number} was not found. Write the number of the "
                        "original complaint, e.g. 2026-000012.", number=number))
    if original.id == complaint_id:
        raise Refusal(_("A complaint cannot be a duplicate of itself."))
    return original
