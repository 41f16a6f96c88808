"""Satisfaction surveys: started on closure, reminded and followed up by the scheduler.

:class:`SurveyHandler` is an event handler (combine it with the status notifier): when a
complaint is closed it stores a :class:`~domain.survey.Survey` and the invitation in the
committing unit of work; when a survey answer reopens a complaint (``StatusChanged`` to
reopened by actor ``survey``) it alerts the operators (``survey_alert`` on the
``backoffice`` channel). :func:`run_due_surveys` is the scheduler's ``run_due``: it claims
due reminders and follow-ups in the database and writes their outbox rows in the same
transaction, so each is written exactly once however many processes run it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from dialogue.flows import survey as questions
from dialogue.messages import Address, Channel, OutgoingMessage
from domain.complaint import Status
from domain.events import DomainEvent, StatusChanged
from domain.ports import UnitOfWork
from domain.survey import SURVEY_ACTOR, ReopenReason, Survey, SurveyState
from notifications import texts
from notifications.deadlines import backoffice_row
from notifications.outbox import Priority, new_message

log = logging.getLogger(__name__)

INVITATION, REMINDER, FOLLOWUP, ALERT = "survey", "survey_reminder", "survey_followup", \
    "survey_alert"
BATCH = 500
N_ = texts.N_
ALERT_TEXTS = {
    ReopenReason.NOT_SOLVED: N_("⚠️ Complaint №{number} has been reopened: the citizen says "
                                "the problem was not solved."),
    ReopenReason.LOW_RATING: N_("⚠️ Complaint №{number} has been reopened: the citizen rated "
                                "the answer {rating} of 5."),
    ReopenReason.NOT_FIXED: N_("⚠️ Complaint №{number} has been reopened: the citizen says "
                               "the problem is back."),
}


def _gettext(lang: str) -> Callable[..., str]:
    def gettext(msgid: str, **kwargs: object) -> str:
        return texts.translate(lang, msgid, **kwargs)

    return gettext


async def _address(uow: UnitOfWork, survey: Survey) -> tuple[Address, str] | None:
    """Where the survey's questions go and in which language; None if nowhere."""
    citizen = await uow.citizens.get(survey.citizen_id)
    if citizen is None or not citizen.reachable:
        return None
    identity = citizen.identity_on(survey.channel)
    if identity is None:
        return None
    return Address(Channel(survey.channel), identity.chat_id), citizen.language


async def _queue(uow: UnitOfWork, survey: Survey, kind: str, msg: OutgoingMessage,
                 to: Address, now: datetime) -> bool:
    return await uow.outbox.add(new_message(
        kind, to, msg, dedup_key=f"survey:{survey.id}:{kind}", now=now,
        priority=Priority.SURVEY, citizen_id=survey.citizen_id,
        complaint_id=survey.complaint_id))


class SurveyHandler:
    """Starts a survey on every closure and alerts operators when a survey reopens one."""

    def __init__(self, *, reminder_after: timedelta = timedelta(hours=24),
                 followup_after: timedelta = timedelta(days=14),
                 reopen_within: timedelta = timedelta(days=30), backoffice_chat: str = "",
                 operator_language: str = "ru") -> None:
        self.reminder_after = reminder_after
        self.followup_after = followup_after
        self.reopen_within = reopen_within
        self.backoffice_chat = backoffice_chat
        self.operator_language = operator_language

    async def __call__(self, uow: UnitOfWork, events: Sequence[DomainEvent]) -> None:
        for event in events:
            if not isinstance(event, StatusChanged) or event.complaint_id is None:
                continue
            if event.new == Status.CLOSED:
                await self._start(uow, event.complaint_id, event.at)
            elif event.new == Status.REOPENED and event.actor == SURVEY_ACTOR:
                await self._alert(uow, event.complaint_id, event.at)

    async def _start(self, uow: UnitOfWork, complaint_id: int, at: datetime) -> None:
        complaint = await uow.complaints.get(complaint_id)
        if complaint is None:
            return
        for older in await uow.surveys.for_complaint(complaint_id):
            if older.is_live or (older.followup_sent_at is None
                                 and older.followup_due_at is not None):
                older.supersede()  # closed again: only the newest survey's buttons work
                await uow.surveys.save(older)
        survey = Survey.start(complaint_id, complaint.citizen_id, complaint.channel, at,
                              reminder_after=self.reminder_after,
                              followup_after=self.followup_after,
                              reopen_within=self.reopen_within)
        found = await _address(uow, survey)
        if found is None:
            return  # nobody to ask
        to, lang = found
        await uow.surveys.add(survey)
        assert survey.id is not None
        await _queue(uow, survey, INVITATION,
                     questions.solved_question(_gettext(lang), survey.id, complaint.number),
                     to, at)

    async def _alert(self, uow: UnitOfWork, complaint_id: int, at: datetime) -> None:
        complaint = await uow.complaints.get(complaint_id)
        latest = next(iter(await uow.surveys.for_complaint(complaint_id)), None)
        if complaint is None or latest is None or latest.reopen_reason is None:
            return
        reason = ReopenReason(latest.reopen_reason)
        text = texts.translate(self.operator_language, ALERT_TEXTS[reason],
                               number=complaint.number, rating=latest.rating or "?")
        payload: dict[str, Any] = {
            "type": ALERT, "text": text, "complaint_id": complaint_id,
            "number": complaint.number, "survey_id": latest.id, "reason": reason.value,
            "solved": latest.solved, "rating": latest.rating,
            "still_solved": latest.still_solved, "agency": complaint.agency,
            "closed_at": latest.created_at.astimezone(UTC).isoformat(),
            "reopened_at": at.astimezone(UTC).isoformat()}
        await uow.outbox.add(backoffice_row(
            ALERT, payload, dedup_key=f"survey:{latest.id}:{ALERT}", now=at,
            complaint_id=complaint_id, chat_id=self.backoffice_chat))


async def run_due_surveys(uow_factory: Callable[[], UnitOfWork], now: datetime, *,
                          batch: int = BATCH) -> int:
    """Write every due reminder and follow-up; returns how many messages were queued."""
    queued = 0
    for claim in (_remind, _follow_up):
        while True:
            async with uow_factory() as uow:
                claimed, written = await claim(uow, now, batch)
                await uow.commit()
            queued += written
            if claimed < batch:
                break
    if queued:
        log.info("surveys: %d reminder(s) or follow-up(s) queued", queued)
    return queued


async def _remind(uow: UnitOfWork, now: datetime, batch: int) -> tuple[int, int]:
    due = await uow.surveys.claim_reminders(now, limit=batch)
    written = 0
    for survey in due:
        found = await _address(uow, survey)
        complaint = await uow.complaints.get(survey.complaint_id)
        if found is None or complaint is None or complaint.status is not Status.CLOSED:
            continue  # reopened since: the question is moot (the claim keeps it from recurring)
        to, lang = found
        assert survey.id is not None
        msg = questions.solved_question(_gettext(lang), survey.id, complaint.number,
                                        reminder=True)
        written += await _queue(uow, survey, REMINDER, msg, to, now)
    return len(due), written


async def _follow_up(uow: UnitOfWork, now: datetime, batch: int) -> tuple[int, int]:
    due = await uow.surveys.claim_followups(now, limit=batch)
    written = 0
    for survey in due:
        found = await _address(uow, survey)
        complaint = await uow.complaints.get(survey.complaint_id)
        if found is None or complaint is None or complaint.status is not Status.CLOSED:
            survey.state = SurveyState.FINISHED  # reopened since, or nobody to ask
            await uow.surveys.save(survey)
            continue
        to, lang = found
        assert survey.id is not None
        msg = questions.followup_question(_gettext(lang), survey.id, complaint.number)
        written += await _queue(uow, survey, FOLLOWUP, msg, to, now)
    return len(due), written
