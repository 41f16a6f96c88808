"""Table mapping of satisfaction surveys (:class:`domain.survey.Survey`).

For reports and the agency ratings: one row per closure of a complaint; ``solved``,
``rating`` (1–5), ``comment`` and ``answered_at`` are the first round, ``still_solved`` and
``followup_answered_at`` the follow-up; ``reopened_at``/``reopen_reason`` say whether the
survey reopened the complaint. Join ``complaints`` for the agency, sector and municipality.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from domain.storage.orm import Base

# Partial indexes hold only the surveys whose reminder or follow-up is still to be sent,
# so the scheduler's per-minute claim stays cheap however many surveys accumulate.
REMINDER_PENDING = "reminder_sent_at IS NULL AND reminder_due_at IS NOT NULL"
FOLLOWUP_PENDING = "followup_sent_at IS NULL AND followup_due_at IS NOT NULL"


class SurveyRow(Base):
    __tablename__ = "surveys"
    __table_args__ = (
        Index("ix_surveys_reminder_due", "reminder_due_at",
              postgresql_where=text(REMINDER_PENDING), sqlite_where=text(REMINDER_PENDING)),
        Index("ix_surveys_followup_due", "followup_due_at",
              postgresql_where=text(FOLLOWUP_PENDING), sqlite_where=text(FOLLOWUP_PENDING)),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(
        ForeignKey("complaints.id", ondelete="CASCADE"), index=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizens.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]  # the complaint's closure
    reopen_until: Mapped[datetime]
    reminder_due_at: Mapped[datetime | None]
    reminder_sent_at: Mapped[datetime | None]
    followup_due_at: Mapped[datetime | None]
    followup_sent_at: Mapped[datetime | None]
    solved: Mapped[bool | None]
    rating: Mapped[int | None]
    comment: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None]
    still_solved: Mapped[bool | None]
    followup_answered_at: Mapped[datetime | None]
    reopened_at: Mapped[datetime | None]
    reopen_reason: Mapped[str | None] = mapped_column(String(16))
