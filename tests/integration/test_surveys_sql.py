"""Surveys on SQLite and PostgreSQL: started with the closure in one transaction, answered,
and reminded or followed up exactly once even with two processes claiming at the same time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from dialogue.messages import OutgoingMessage
from domain.calendar import WorkingCalendar
from domain.citizen import Citizen, Identity
from domain.complaint import Complaint, Status
from domain.services import ComplaintDraft, answer_complaint, change_status, register_complaint
from domain.storage import Database
from domain.storage.orm import OutboxRow
from domain.storage.surveys_orm import SurveyRow
from domain.survey import Survey, SurveyState, answer_solved, comment, rate
from notifications.handlers import StatusNotifier, combine
from notifications.surveys import SurveyHandler, run_due_surveys
from tests.fakes.dialogue import catalogue

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
CLOSED_AT = T0 + timedelta(days=2)


def surveying(db: Database) -> Database:
    return Database(db.engine, event_handler=combine(StatusNotifier(catalogue()),
                                                     SurveyHandler()))


async def closed_complaint(db: Database, chat_id: str = "555") -> Complaint:
    async with db.uow() as uow:
        citizen = Citizen([Identity("telegram", "u" + chat_id, chat_id)], language="en",
                          created_at=T0)
        citizen.give_consent(T0, "v1")
        await uow.citizens.add(citizen)
        complaint = await register_complaint(
            uow, catalogue(), WorkingCalendar(), citizen, "telegram",
            ComplaintDraft("Яма на улице Ленина", "roads", "potholes"), T0)
        await uow.commit()
    assert complaint.id is not None
    async with db.uow() as uow:
        await answer_complaint(uow, complaint.id, "Заделали", actor="op", now=CLOSED_AT)
        await change_status(uow, complaint.id, Status.CLOSED, actor="op", now=CLOSED_AT)
        await uow.commit()
    return complaint


async def survey_for(db: Database, complaint: Complaint) -> Survey:
    async with db.uow() as uow:
        [survey] = await uow.surveys.for_complaint(complaint.id or 0)
    return survey


async def count(db: Database, kind: str) -> int:
    async with db.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(OutboxRow)
                                   .where(OutboxRow.kind == kind))).scalar_one()


class TestSurveysSql:
    async def test_closure_stores_the_survey_and_invitation_together(self, db: Database):
        db = surveying(db)
        complaint = await closed_complaint(db)
        survey = await survey_for(db, complaint)
        assert (survey.state, survey.created_at, survey.reminder_due_at) == (
            SurveyState.ASKED, CLOSED_AT, CLOSED_AT + timedelta(hours=24))
        async with db.uow() as uow:
            [invite] = [m for m in await uow.outbox.find() if m.kind == "survey"]
        invitation = OutgoingMessage.from_json(invite.payload)
        assert invitation.all_buttons()[0].payload == f"sv:{survey.id}:y"

        # a closure that is rolled back leaves neither survey nor invitation
        other = await closed_complaint(db, chat_id="777")
        async with db.uow() as uow:
            await change_status(uow, other.id or 0, Status.REOPENED, actor="op", now=CLOSED_AT)
            await uow.commit()
        async with db.uow() as uow:
            await answer_complaint(uow, other.id or 0, "again", actor="op", now=CLOSED_AT)
            await change_status(uow, other.id or 0, Status.CLOSED, actor="op", now=CLOSED_AT)
            await uow.rollback()
        async with db.engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(SurveyRow))
                    ).scalar_one() == 2
        assert await count(db, "survey") == 2

    async def test_answers_are_stored_for_the_ratings(self, db: Database):
        db = surveying(db)
        complaint = await closed_complaint(db)
        survey = await survey_for(db, complaint)
        now = CLOSED_AT + timedelta(hours=3)
        async with db.uow() as uow:
            await answer_solved(uow, survey.id or 0, complaint.citizen_id, True, now=now)
            await rate(uow, survey.id or 0, complaint.citizen_id, 2, now=now)
            await comment(uow, survey.id or 0, complaint.citizen_id, "Сделали плохо")
            await uow.commit()
        async with db.engine.connect() as conn:
            row = (await conn.execute(select(
                SurveyRow.state, SurveyRow.solved, SurveyRow.rating, SurveyRow.comment,
                SurveyRow.answered_at, SurveyRow.reopen_reason))).one()
        assert tuple(row) == ("answered", True, 2, "Сделали плохо", now, "low_rating")
        async with db.uow() as uow:
            reopened = await uow.complaints.get(complaint.id or 0)
        assert reopened is not None and reopened.status is Status.REOPENED
        assert await count(db, "survey_alert") == 1

    async def test_two_concurrent_run_due_write_one_reminder_per_survey(self, db: Database):
        db = surveying(db)
        complaints = [await closed_complaint(db, chat_id=str(900 + i)) for i in range(12)]
        due = CLOSED_AT + timedelta(hours=24)
        results = await asyncio.gather(run_due_surveys(db.uow, due, batch=5),
                                       run_due_surveys(db.uow, due, batch=5))
        assert sum(results) == len(complaints)
        assert await count(db, "survey_reminder") == len(complaints)
        async with db.engine.connect() as conn:
            sent = (await conn.execute(select(SurveyRow.reminder_sent_at))).scalars().all()
        assert sent == [due] * len(complaints)
        assert await run_due_surveys(db.uow, due + timedelta(hours=1)) == 0

    async def test_a_restart_resumes_due_work_from_the_database(self, db: Database):
        first = surveying(db)
        complaint = await closed_complaint(first)
        # "the process dies" before the reminder is due; a new one starts much later
        second = surveying(Database(db.engine))
        later = CLOSED_AT + timedelta(days=3)
        assert await run_due_surveys(second.uow, later) == 1
        assert await count(db, "survey_reminder") == 1
        survey = await survey_for(second, complaint)
        assert survey.reminder_sent_at == later
        # follow-up after 14 days, once, by whichever process wakes first
        at = CLOSED_AT + timedelta(days=14)
        results = await asyncio.gather(run_due_surveys(first.uow, at),
                                       run_due_surveys(second.uow, at))
        assert sorted(results) == [0, 1]
        assert (await survey_for(db, complaint)).state is SurveyState.FOLLOWUP
