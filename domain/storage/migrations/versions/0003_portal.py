"""The staff portal: users, login sessions and the audit log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

Frozen like 0001: plain column types only (the models are in domain/storage/portal_orm.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _str(name: str, length: int, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "portal_users",
        sa.Column("id", sa.Integer(), nullable=False),
        _str("login", 64),
        _str("password_hash", 255),
        _str("role", 16),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ts("created_at", nullable=False),
        _ts("last_login_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_users")),
        sa.UniqueConstraint("login", name=op.f("uq_portal_users_login")),
    )
    op.create_table(
        "portal_sessions",
        _str("token_hash", 64),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _str("csrf", 64),
        _ts("created_at", nullable=False),
        _ts("expires_at", nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["portal_users.id"], ondelete="CASCADE",
                                name=op.f("fk_portal_sessions_user_id_portal_users")),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_portal_sessions")),
    )
    op.create_index(op.f("ix_portal_sessions_user_id"), "portal_sessions", ["user_id"])
    op.create_index(op.f("ix_portal_sessions_expires_at"), "portal_sessions", ["expires_at"])
    op.create_table(
        "portal_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        _ts("at", nullable=False),
        _str("actor", 64),
        _str("action", 32),
        _str("complaint_number", 32, nullable=True),
        sa.Column("old", sa.Text(), nullable=False),
        sa.Column("new", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_audit")),
    )
    op.create_index(op.f("ix_portal_audit_at"), "portal_audit", ["at"])
    op.create_index(op.f("ix_portal_audit_complaint_number"), "portal_audit",
                    ["complaint_number"])


def downgrade() -> None:
    for table in ("portal_audit", "portal_sessions", "portal_users"):
        op.drop_table(table)
