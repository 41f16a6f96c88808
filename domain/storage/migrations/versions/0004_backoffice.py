"""The back office: each complaint's forum topic in the operators' group.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Frozen like 0001: plain column types only (the model is in domain/storage/backoffice_orm.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "complaint_topics",
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("thread_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaints.id"], ondelete="CASCADE",
                                name=op.f("fk_complaint_topics_complaint_id_complaints")),
        sa.PrimaryKeyConstraint("complaint_id", name=op.f("pk_complaint_topics")),
        sa.UniqueConstraint("chat_id", "thread_id",
                            name=op.f("uq_complaint_topics_chat_id_thread_id")),
    )


def downgrade() -> None:
    op.drop_table("complaint_topics")
