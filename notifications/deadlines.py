"""The deadline watch: warns the back office when a complaint nears or misses a deadline.

:func:`run_deadline_check` is the scheduler's ``run_due`` for deadlines. Per deadline (the
first answer and the resolution) a complaint is **near** once ``near_ratio`` (75 %) of the
*working* time between its registration and the deadline has passed (working hours of the
:class:`~domain.calendar.WorkingCalendar`, so a weekend does not eat into the margin), and
**overdue** once the deadline has passed while it is open (for the first answer: while no
operator has answered). Each level is stored on the complaint (``*_near_notified_at``,
``*_overdue_at``; reports count ``resolution_overdue_at IS NOT NULL``) and escalated once,
as an outbox row on the ``backoffice`` channel with a self-describing JSON payload.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from dialogue.i18n import format_datetime
from domain.calendar import WorkingCalendar
from domain.ports import OutboxMessage, UnitOfWork
from domain.storage.deadlines import Deadline, DeadlineHit, Level, SqlDeadlineWatch
from notifications import texts
from notifications.outbox import Priority

log = logging.getLogger(__name__)

BACKOFFICE = "backoffice"
ESCALATION = "escalation"
NEAR_RATIO = 0.75
BATCH = 500

N_ = texts.N_
MESSAGES = {
    (Deadline.FIRST_ANSWER, Level.NEAR): N_("⏰ Complaint №{number}: the first answer is due "
                                            "by {due}."),
    (Deadline.FIRST_ANSWER, Level.OVERDUE): N_("🔴 Complaint №{number}: the first answer is "
                                               "overdue (it was due by {due})."),
    (Deadline.RESOLUTION, Level.NEAR): N_("⏰ Complaint №{number}: the resolution is due by "
                                          "{due}."),
    (Deadline.RESOLUTION, Level.OVERDUE): N_("🔴 Complaint №{number}: the resolution deadline "
                                             "has passed (it was due by {due})."),
}


class DeadlineUnitOfWork(UnitOfWork, Protocol):
    deadlines: SqlDeadlineWatch


def backoffice_row(kind: str, payload: dict[str, Any], *, dedup_key: str, now: datetime,
                   complaint_id: int | None, chat_id: str = "",
                   priority: int = Priority.STATUS) -> OutboxMessage:
    """An outbox row for the operators' chat. ``chat_id`` empty: the complaint's own topic
    (its id, as the back-office messenger addresses topics). ``payload`` has ``text``
    (ready to show) and the facts."""
    if not chat_id and complaint_id is not None:
        chat_id = str(complaint_id)
    return OutboxMessage(kind=kind, channel=BACKOFFICE, chat_id=chat_id, payload=payload,
                         dedup_key=dedup_key, created_at=now, not_before=now,
                         priority=priority, complaint_id=complaint_id)


def working_seconds(calendar: WorkingCalendar, start: datetime, end: datetime) -> float:
    """Working time between two moments, in seconds, by ``calendar``'s office hours."""
    if end <= start:
        return 0.0
    tz = calendar.tz
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    total = 0.0
    day: date = local_start.date()
    while day <= local_end.date():
        if calendar.is_working_day(day):
            opens = datetime.combine(day, calendar.day_start, tzinfo=tz)
            closes = datetime.combine(day, calendar.day_end, tzinfo=tz)
            lo, hi = max(opens, local_start), min(closes, local_end)
            if hi > lo:
                total += (hi - lo).total_seconds()
        day += timedelta(days=1)
    return total


def near_moment(calendar: WorkingCalendar, created: datetime, due: datetime,
                ratio: float = NEAR_RATIO) -> datetime:
    """When ``ratio`` of the working time from ``created`` to ``due`` has passed."""
    seconds = working_seconds(calendar, created, due)
    if seconds <= 0:
        return min(created, due).astimezone(UTC)
    return min(calendar.add_working_hours(created, ratio * seconds / 3600), due)


def escalation_payload(hit: DeadlineHit, *, language: str = "ru") -> dict[str, Any]:
    text = texts.translate(language, MESSAGES[hit.deadline, hit.level], number=hit.number,
                           due=format_datetime(hit.due_at, language))
    return {"type": ESCALATION, "text": text, "complaint_id": hit.complaint_id,
            "number": hit.number, "level": hit.level.value, "deadline": hit.deadline.value,
            "due_at": hit.due_at.astimezone(UTC).isoformat(),
            "created_at": hit.created_at.astimezone(UTC).isoformat(), "status": hit.status,
            "agency": hit.agency, "sector": hit.sector, "municipality": hit.municipality}


async def run_deadline_check(uow_factory: Callable[[], DeadlineUnitOfWork],
                             calendar: WorkingCalendar, now: datetime, *,
                             near_ratio: float = NEAR_RATIO, chat_id: str = "",
                             language: str = "ru", batch: int = BATCH) -> int:
    """Compute missing near-deadline moments, then mark and escalate every complaint that
    reached a level; returns the number of escalations written. Each batch is one
    transaction: the marks and their outbox rows commit together."""
    await _fill_near_moments(uow_factory, calendar, near_ratio, batch)
    written = 0
    # overdue first: a complaint found past its deadline is not also reported as near
    for level in (Level.OVERDUE, Level.NEAR):
        for deadline in Deadline:
            while True:
                async with uow_factory() as uow:
                    hits = await uow.deadlines.claim(deadline, level, now, limit=batch)
                    for hit in hits:
                        key = f"{ESCALATION}:{hit.complaint_id}:{deadline}:{level}"
                        if await uow.outbox.add(backoffice_row(
                                ESCALATION, escalation_payload(hit, language=language),
                                dedup_key=key, now=now, complaint_id=hit.complaint_id,
                                chat_id=chat_id)):
                            written += 1
                    await uow.commit()
                if len(hits) < batch:
                    break
    if written:
        log.info("deadline check: %d escalation(s)", written)
    return written


async def _fill_near_moments(uow_factory: Callable[[], DeadlineUnitOfWork],
                             calendar: WorkingCalendar, ratio: float, batch: int) -> None:
    while True:
        async with uow_factory() as uow:
            unset = await uow.deadlines.unset(limit=batch)
            await uow.deadlines.set_near([
                (u.complaint_id, near_moment(calendar, u.created_at, u.first_answer_due, ratio),
                 near_moment(calendar, u.created_at, u.resolution_due, ratio))
                for u in unset])
            await uow.commit()
        if len(unset) < batch:
            return
