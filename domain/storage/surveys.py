"""The SQL survey repository, and the claims the scheduler's ``run_due`` relies on.

A claim is one ``UPDATE ... WHERE <still due> ... RETURNING``: the row is marked in the
statement that finds it, so of two processes claiming at once only one gets each survey
(on PostgreSQL the candidate rows are picked ``FOR UPDATE SKIP LOCKED`` and the WHERE is
re-checked after any wait; on SQLite ``BEGIN IMMEDIATE`` serialises the transactions). The
claim commits together with the outbox row it leads to, so a crash loses neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.storage.surveys_orm import FOLLOWUP_PENDING, REMINDER_PENDING, SurveyRow
from domain.survey import Survey, SurveyState

FIELDS = ("complaint_id", "citizen_id", "channel", "created_at", "reopen_until",
          "reminder_due_at", "followup_due_at", "solved", "rating", "comment", "answered_at",
          "reminder_sent_at", "followup_sent_at", "still_solved", "followup_answered_at",
          "reopened_at", "reopen_reason")


def survey_from_row(row: SurveyRow) -> Survey:
    values: dict[str, Any] = {name: getattr(row, name) for name in FIELDS}
    return Survey(**values, state=SurveyState(row.state), id=row.id)


def write_survey(row: SurveyRow, survey: Survey) -> None:
    for name in FIELDS:
        setattr(row, name, getattr(survey, name))
    row.state = str(survey.state)


class SqlSurveyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, survey: Survey) -> Survey:
        if survey.id is not None:
            raise ValueError(f"survey {survey.id} is already stored")
        row = SurveyRow()
        write_survey(row, survey)
        self.session.add(row)
        await self.session.flush()
        survey.id = row.id
        return survey

    async def get(self, survey_id: int) -> Survey | None:
        query = (select(SurveyRow).where(SurveyRow.id == survey_id)
                 .execution_options(populate_existing=True))
        row = (await self.session.scalars(query)).first()
        return survey_from_row(row) if row else None

    async def save(self, survey: Survey) -> None:
        row = await self.session.get(SurveyRow, survey.id) if survey.id else None
        if row is None:
            raise LookupError(f"survey {survey.id} is not stored")
        write_survey(row, survey)
        await self.session.flush()

    async def for_complaint(self, complaint_id: int) -> Sequence[Survey]:
        query = (select(SurveyRow).where(SurveyRow.complaint_id == complaint_id)
                 .order_by(SurveyRow.created_at.desc(), SurveyRow.id.desc())
                 .execution_options(populate_existing=True))
        return [survey_from_row(row) for row in await self.session.scalars(query)]

    async def claim_reminders(self, now: datetime, *, limit: int) -> list[Survey]:
        due = and_(text(REMINDER_PENDING), SurveyRow.reminder_due_at <= now,
                   SurveyRow.state == str(SurveyState.ASKED))
        return await self._claim(due, SurveyRow.reminder_due_at, limit,
                                 {"reminder_sent_at": now})

    async def claim_followups(self, now: datetime, *, limit: int) -> list[Survey]:
        due = and_(text(FOLLOWUP_PENDING), SurveyRow.followup_due_at <= now)
        return await self._claim(due, SurveyRow.followup_due_at, limit,
                                 {"followup_sent_at": now, "reminder_due_at": None,
                                  "state": str(SurveyState.FOLLOWUP)})

    async def _claim(self, due: ColumnElement[bool], order: Any, limit: int,
                     values: dict[str, Any]) -> list[Survey]:
        candidates = (select(SurveyRow.id).where(due).order_by(order, SurveyRow.id)
                      .limit(limit).with_for_update(skip_locked=True))
        stmt = (update(SurveyRow).where(SurveyRow.id.in_(candidates.scalar_subquery()), due)
                .values(**values).returning(SurveyRow.id)
                .execution_options(synchronize_session=False))
        ids = list((await self.session.execute(stmt)).scalars())
        if not ids:
            return []
        rows = await self.session.scalars(
            select(SurveyRow).where(SurveyRow.id.in_(ids)).order_by(SurveyRow.id)
            .execution_options(populate_existing=True))
        return [survey_from_row(row) for row in rows]
