"""Pre-aggregated ratings: report_daily, report_monthly, report_hist, report_state.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27

The tables are filled by the first refresh (``domain/storage/report_refresh.py``): the
state row starts without a day offset, which asks for a full build. Four indexes for what
the refresh and the ratings look up: survey answers by time, surveys waiting for a rating,
and (two covering partial indexes) complaints still within a deadline they have not met.
``report_rating_wait`` lists the surveys that were waiting for a rating at the last
refresh. Frozen like 0001: plain column
types only (the models are in ``domain/storage/report_daily_orm.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = ("complaints", "first_on_time", "resolution_on_time", "finished", "substantive",
          "reopened", "surveyed", "solved", "rated")
RATING_WAIT = "state = 'rating'"
PENDING = {"ix_complaints_first_answer_pending": ("first_answer_due",
                                                  "first_answered_at IS NULL"),
           "ix_complaints_resolution_pending": ("resolution_due", "resolved_at IS NULL")}


def _counts() -> list[sa.Column]:
    return [*(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
            sa.Column("rating_sum", sa.Float(), nullable=False)]


def upgrade() -> None:
    op.create_table(
        "report_daily",
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("municipality", sa.String(64), nullable=False),
        sa.Column("sector", sa.String(32), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        *_counts(),
        sa.PrimaryKeyConstraint("day", "agency", "municipality", "sector", "category",
                                name=op.f("pk_report_daily")),
    )
    op.create_table(
        "report_monthly",
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("agency", sa.String(64), nullable=False),
        sa.Column("municipality", sa.String(64), nullable=False),
        *_counts(),
        sa.PrimaryKeyConstraint("month", "agency", "municipality",
                                name=op.f("pk_report_monthly")),
    )
    op.create_table(
        "report_hist",
        sa.Column("span", sa.String(8), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("dim", sa.String(16), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("first_hist", sa.Text(), nullable=False),
        sa.Column("resolution_hist", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("span", "start", "dim", "key", name=op.f("pk_report_hist")),
    )
    state = op.create_table(
        "report_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("offset_minutes", sa.Integer(), nullable=True),
        sa.Column("history_id", sa.Integer(), nullable=False),
        sa.Column("survey_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("survey_count", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_state")),
    )
    op.create_table(
        "report_rating_wait",
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("survey_id", name=op.f("pk_report_rating_wait")),
    )
    op.bulk_insert(state, [{"id": 1, "offset_minutes": None, "history_id": 0,
                            "survey_count": 0}])
    op.create_index("ix_surveys_answered_at", "surveys", ["answered_at"])
    for name, (due, where) in PENDING.items():
        op.create_index(name, "complaints", [due, "created_at", "agency", "municipality"],
                        sqlite_where=sa.text(where), postgresql_where=sa.text(where))
    op.create_index("ix_surveys_rating_wait", "surveys", ["id"],
                    sqlite_where=sa.text(RATING_WAIT), postgresql_where=sa.text(RATING_WAIT))


def downgrade() -> None:
    op.drop_index("ix_surveys_rating_wait", "surveys")
    op.drop_table("report_rating_wait")
    for name in PENDING:
        op.drop_index(name, "complaints")
    op.drop_index("ix_surveys_answered_at", "surveys")
    op.drop_table("report_state")
    op.drop_table("report_hist")
    op.drop_table("report_monthly")
    op.drop_table("report_daily")
