"""Satisfaction surveys and the deadline watch on complaints.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Frozen like 0001: plain column types only (models: domain/storage/surveys_orm.py and the
deadline columns of ComplaintRow in domain/storage/orm.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('new', 'in_progress', 'answered', 'reopened')"
FIRST_ANSWER_WATCHED = f"{OPEN} AND first_answered_at IS NULL AND first_answer_overdue_at IS NULL"
RESOLUTION_WATCHED = f"{OPEN} AND resolution_overdue_at IS NULL"
NEAR_UNSET = f"{OPEN} AND resolution_near_at IS NULL"
REMINDER_PENDING = "reminder_sent_at IS NULL AND reminder_due_at IS NOT NULL"
FOLLOWUP_PENDING = "followup_sent_at IS NULL AND followup_due_at IS NOT NULL"
DEADLINE_COLUMNS = ("first_answer_near_at", "resolution_near_at",
                    "first_answer_near_notified_at", "resolution_near_notified_at",
                    "first_answer_overdue_at", "resolution_overdue_at")


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _partial_index(name: str, table: str, column: str, where: str) -> None:
    op.create_index(name, table, [column], postgresql_where=sa.text(where),
                    sqlite_where=sa.text(where))


def upgrade() -> None:
    with op.batch_alter_table("complaints") as batch:
        for column in DEADLINE_COLUMNS:
            batch.add_column(_ts(column))
    _partial_index("ix_complaints_first_answer_watch", "complaints", "first_answer_due",
                   FIRST_ANSWER_WATCHED)
    _partial_index("ix_complaints_resolution_watch", "complaints", "resolution_due",
                   RESOLUTION_WATCHED)
    _partial_index("ix_complaints_near_unset", "complaints", "id", NEAR_UNSET)

    op.create_table(
        "surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _ts("created_at", nullable=False),
        _ts("reopen_until", nullable=False),
        _ts("reminder_due_at"),
        _ts("reminder_sent_at"),
        _ts("followup_due_at"),
        _ts("followup_sent_at"),
        sa.Column("solved", sa.Boolean(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        _ts("answered_at"),
        sa.Column("still_solved", sa.Boolean(), nullable=True),
        _ts("followup_answered_at"),
        _ts("reopened_at"),
        sa.Column("reopen_reason", sa.String(16), nullable=True),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaints.id"], ondelete="CASCADE",
                                name=op.f("fk_surveys_complaint_id_complaints")),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"], ondelete="CASCADE",
                                name=op.f("fk_surveys_citizen_id_citizens")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys")),
    )
    op.create_index(op.f("ix_surveys_complaint_id"), "surveys", ["complaint_id"])
    op.create_index(op.f("ix_surveys_citizen_id"), "surveys", ["citizen_id"])
    _partial_index("ix_surveys_reminder_due", "surveys", "reminder_due_at", REMINDER_PENDING)
    _partial_index("ix_surveys_followup_due", "surveys", "followup_due_at", FOLLOWUP_PENDING)


def downgrade() -> None:
    op.drop_table("surveys")
    for name in ("ix_complaints_near_unset", "ix_complaints_resolution_watch",
                 "ix_complaints_first_answer_watch"):
        op.drop_index(name, table_name="complaints")
    with op.batch_alter_table("complaints") as batch:
        for column in DEADLINE_COLUMNS:
            batch.drop_column(column)
