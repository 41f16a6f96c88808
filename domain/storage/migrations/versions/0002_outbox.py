"""The outbox: messages the system starts itself, kept until delivered.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

Frozen like 0001: plain column types only.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _str(name: str, length: int, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        _str("kind", 32),
        _str("channel", 16),
        _str("chat_id", 64),
        sa.Column("citizen_id", sa.Integer(), nullable=True),
        sa.Column("complaint_id", sa.Integer(), nullable=True),
        _str("dedup_key", 200),
        sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                  nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        _str("status", 16),
        _ts("created_at", nullable=False),
        _ts("not_before", nullable=False),
        _ts("locked_until"),
        _str("claim_token", 36, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        _ts("sent_at"),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"], ondelete="CASCADE",
                                name=op.f("fk_outbox_citizen_id_citizens")),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaints.id"], ondelete="SET NULL",
                                name=op.f("fk_outbox_complaint_id_complaints")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_outbox_dedup_key")),
    )
    op.create_index(op.f("ix_outbox_citizen_id"), "outbox", ["citizen_id"])
    op.create_index("ix_outbox_due", "outbox", ["channel", "status", "priority", "not_before"])


def downgrade() -> None:
    op.drop_table("outbox")
