"""Table mappings of the pre-aggregated ratings (migration 0008, see
:mod:`domain.storage.report_daily`).

``report_daily`` holds the counts of one local day × agency × municipality × sector ×
category, ``report_monthly`` the same summed over a calendar month per agency ×
municipality, ``report_hist`` the duration histograms of a day or a month per agency and
per municipality (medians do not sum: these are merged instead), and ``report_state``
(one row) the day offset and the change watermarks of the last refresh.
An unknown municipality is stored as ``""`` (a primary key column cannot be NULL).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from domain.storage.orm import Base, ComplaintRow
from domain.storage.surveys_orm import SurveyRow

#: The summable columns, in the order the refresh writes them.
COUNTS = ("complaints", "first_on_time", "resolution_on_time", "finished", "substantive",
          "reopened", "surveyed", "solved", "rated")


class _Counts:
    complaints: Mapped[int] = mapped_column(Integer)
    first_on_time: Mapped[int] = mapped_column(Integer)
    resolution_on_time: Mapped[int] = mapped_column(Integer)
    finished: Mapped[int] = mapped_column(Integer)
    substantive: Mapped[int] = mapped_column(Integer)
    reopened: Mapped[int] = mapped_column(Integer)
    surveyed: Mapped[int] = mapped_column(Integer)
    solved: Mapped[int] = mapped_column(Integer)
    rated: Mapped[int] = mapped_column(Integer)
    rating_sum: Mapped[float] = mapped_column(Float)


class ReportDayRow(_Counts, Base):
    __tablename__ = "report_daily"

    day: Mapped[int] = mapped_column(Integer, primary_key=True)  # days since 1970-01-01
    agency: Mapped[str] = mapped_column(String(64), primary_key=True)
    municipality: Mapped[str] = mapped_column(String(64), primary_key=True)
    sector: Mapped[str] = mapped_column(String(32), primary_key=True)
    category: Mapped[str] = mapped_column(String(64), primary_key=True)


class ReportMonthRow(_Counts, Base):
    __tablename__ = "report_monthly"

    month: Mapped[int] = mapped_column(Integer, primary_key=True)  # day number of the 1st
    agency: Mapped[str] = mapped_column(String(64), primary_key=True)
    municipality: Mapped[str] = mapped_column(String(64), primary_key=True)


class ReportHistRow(Base):
    """Duration histograms of a day or a calendar month, per agency, per municipality and in
    total (``dim``: "agency", "municipality", "total"; ``key`` "" for the total and for an
    unknown municipality): "first-bucket count count …" (see report_daily.bucket)."""

    __tablename__ = "report_hist"

    span: Mapped[str] = mapped_column(String(8), primary_key=True)  # "day" or "month"
    start: Mapped[int] = mapped_column(Integer, primary_key=True)  # day number
    dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_hist: Mapped[str] = mapped_column(Text)
    resolution_hist: Mapped[str] = mapped_column(Text)


class ReportStateRow(Base):
    __tablename__ = "report_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offset_minutes: Mapped[int | None] = mapped_column(Integer)  # day = UTC + this; None: build
    history_id: Mapped[int] = mapped_column(Integer, default=0)  # complaint_history.id processed
    survey_at: Mapped[datetime | None]  # newest surveys.answered_at processed
    survey_count: Mapped[int] = mapped_column(Integer, default=0)  # answers near survey_at
    refreshed_at: Mapped[datetime | None]


class ReportRatingWaitRow(Base):
    """A survey answered but not yet rated at the last refresh, and its complaint's day:
    when it leaves the "rating" state (rated), that day is recomputed."""

    __tablename__ = "report_rating_wait"

    survey_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[int] = mapped_column(Integer)


RATING_WAIT = "state = 'rating'"
#: Surveys waiting for their rating (few: a rating follows the answer within minutes).
SURVEY_RATING_INDEX = Index("ix_surveys_rating_wait", SurveyRow.__table__.c.id,
                            sqlite_where=text(RATING_WAIT), postgresql_where=text(RATING_WAIT))
#: Survey answers found by time since the last refresh.
SURVEY_ANSWERED_INDEX = Index("ix_surveys_answered_at", SurveyRow.__table__.c.answered_at)
#: Complaints still within a deadline they have not met, counted at report time: covering
#: partial indexes (only the unanswered, only the unresolved), so the count reads no table.
FIRST_ANSWER_PENDING = "first_answered_at IS NULL"
RESOLUTION_PENDING = "resolved_at IS NULL"
_c = ComplaintRow.__table__.c
PENDING_INDEXES = (
    Index("ix_complaints_first_answer_pending", _c.first_answer_due, _c.created_at, _c.agency,
          _c.municipality, sqlite_where=text(FIRST_ANSWER_PENDING),
          postgresql_where=text(FIRST_ANSWER_PENDING)),
    Index("ix_complaints_resolution_pending", _c.resolution_due, _c.created_at, _c.agency,
          _c.municipality, sqlite_where=text(RESOLUTION_PENDING),
          postgresql_where=text(RESOLUTION_PENDING)),
)
