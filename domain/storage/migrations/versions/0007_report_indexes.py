"""Indexes for the ratings, reports and the register's deadline filters.

Revision ID: 0007
Revises: 0003
Create Date: 2026-12-02

- ``ix_complaints_report``: the ratings read a period's rows by ``created_at``; with every
  column they count in the index they never touch the table (a covering index scan).
- ``ix_complaints_status_due``: "overdue" and the deadline board select open statuses by
  resolution deadline; with ``resolution_due`` alone the planner walks every past deadline.
- ``ix_complaint_history_reopened``: a partial index of the few "→ reopened" status rows,
  so the reopen rate probes it instead of every complaint's whole history.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPORT_COLUMNS = ["created_at", "agency", "municipality", "status", "first_answered_at",
                  "first_answer_due", "resolved_at", "resolution_due"]
# The predicates as each dialect's planner sees them in domain/storage/reports.py.
REOPENED = {
    "sqlite": "kind = 'status' AND JSON_EXTRACT(data, '$.\"new\"') = 'reopened'",
    "postgresql": "kind = 'status' AND (data ->> 'new') = 'reopened'",
}


def upgrade() -> None:
    op.create_index("ix_complaints_report", "complaints", REPORT_COLUMNS)
    op.create_index("ix_complaints_status_due", "complaints", ["status", "resolution_due"])
    dialect = op.get_bind().dialect.name
    where = sa.text(REOPENED.get(dialect, REOPENED["postgresql"]))
    op.create_index("ix_complaint_history_reopened", "complaint_history", ["complaint_id"],
                    sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    op.drop_index("ix_complaint_history_reopened", "complaint_history")
    op.drop_index("ix_complaints_status_due", "complaints")
    op.drop_index("ix_complaints_report", "complaints")
