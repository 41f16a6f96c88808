"""Broadcasts: the broadcasts table and the citizens' opt-out flag.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28

Frozen like 0001: plain column types only (the model is in domain/storage/broadcasts_orm.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str) -> sa.Column:
    return sa.Column(name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                     nullable=False)


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("photo", sa.String(512), nullable=True),
        _json("links"),
        _json("audience"),
        sa.Column("state", sa.String(16), nullable=False),
        _ts("send_at"),
        sa.Column("created_by", sa.String(128), nullable=False),
        _ts("created_at", nullable=False),
        sa.Column("audience_size", sa.Integer(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("materialized", sa.Boolean(), nullable=False),
        _ts("started_at"),
        _ts("finished_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )
    op.create_index(op.f("ix_broadcasts_state"), "broadcasts", ["state"])
    op.create_index(op.f("ix_broadcasts_send_at"), "broadcasts", ["send_at"])
    with op.batch_alter_table("citizens") as batch:
        batch.add_column(sa.Column("broadcast_opt_out", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("citizens") as batch:
        batch.drop_column("broadcast_opt_out")
    op.drop_table("broadcasts")
