"""Indexes for the ratings, reports and the register's deadline filters.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

- ``ix_complaints_report``: the ratings read a period's rows by ``created_at``; with every
  column they count in the index they never touch the table (a covering index scan).
- ``ix_complaints_status_due``: "overdue" and the deadline board select open statuses by
  resolution deadline; with ``resolution_due`` alone the planner walks every past deadline.
- ``ix_complaints_{municipality,sector}_created``, ``ix_complaints_agency_status``: the
  register filters by municipality, sector or agency and sorts by filing time; with the
  single-column indexes SQLite walks every row of Makhachkala (a third of all) to count a
  month of its road complaints.
- ``ix_complaint_history_reopened``: a partial index of the few "→ reopened" status rows,
  so the reopen rate probes it instead of every complaint's whole history.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPORT_COLUMNS = ["created_at", "agency", "municipality", "status", "first_answered_at",
                  "first_answer_due", "resolved_at", "resolution_due"]
# agency with status ("open complaints of one agency"), without created_at: SQLite would
# skip-scan (agency, status, created_at) for a period instead of the covering report index
REGISTER_INDEXES = {"ix_complaints_municipality_created": ["municipality", "created_at"],
                    "ix_complaints_sector_created": ["sector", "created_at"],
                    "ix_complaints_agency_status": ["agency", "status"]}
# The predicates as each dialect's planner sees them in domain/storage/reports.py.
REOPENED = {
    "sqlite": "kind = 'status' AND JSON_EXTRACT(data, '$.\"new\"') = 'reopened'",
    "postgresql": "kind = 'status' AND (data ->> 'new') = 'reopened'",
}


def upgrade() -> None:
    op.create_index("ix_complaints_report", "complaints", REPORT_COLUMNS)
    op.create_index("ix_complaints_status_due", "complaints", ["status", "resolution_due"])
    for name, columns in REGISTER_INDEXES.items():
        op.create_index(name, "complaints", columns)
    dialect = op.get_bind().dialect.name
    where = sa.text(REOPENED.get(dialect, REOPENED["postgresql"]))
    op.create_index("ix_complaint_history_reopened", "complaint_history", ["complaint_id"],
                    sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    op.drop_index("ix_complaint_history_reopened", "complaint_history")
    for name in REGISTER_INDEXES:
        op.drop_index(name, "complaints")
    op.drop_index("ix_complaints_status_due", "complaints")
    op.drop_index("ix_complaints_report", "complaints")
