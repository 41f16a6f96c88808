"""Initial schema: citizens, identities, complaints with photos and history,
conversations and counters.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

Frozen: plain column types only (no imports from domain.storage.orm), so later changes to
the models cannot silently change what this revision creates.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str) -> sa.Column:
    return sa.Column(name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                     nullable=False)


def _str(name: str, length: int, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=nullable)


def _fk(column: str, table: str, target: str, ondelete: str | None = None):
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def _index(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


def upgrade() -> None:
    op.create_table(
        "citizens",
        sa.Column("id", sa.Integer(), nullable=False),
        _str("language", 8),
        _str("name", 200),
        _str("phone", 32),
        _ts("consent_given_at"),
        _str("consent_version", 32, nullable=True),
        _str("subscribed_municipality", 64, nullable=True),
        _json("subscribed_sectors"),
        sa.Column("reachable", sa.Boolean(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citizens")),
    )
    op.create_table(
        "identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        _str("channel", 16),
        _str("external_id", 64),
        _str("chat_id", 64),
        _fk("citizen_id", "identities", "citizens", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identities")),
        sa.UniqueConstraint("channel", "external_id",
                            name=op.f("uq_identities_channel_external_id")),
    )
    _index("identities", "citizen_id")
    op.create_table(
        "complaints",
        sa.Column("id", sa.Integer(), nullable=False),
        _str("number", 32),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        _str("channel", 16),
        sa.Column("text", sa.Text(), nullable=False),
        _str("sector", 32),
        _str("category", 64),
        _str("agency", 64),
        _str("municipality", 64, nullable=True),
        _ts("created_at", nullable=False),
        _ts("first_answer_due", nullable=False),
        _ts("resolution_due", nullable=False),
        _str("classified_by", 16),
        sa.Column("confidence", sa.Double(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("latitude", sa.Double(), nullable=True),
        sa.Column("longitude", sa.Double(), nullable=True),
        _str("status", 16),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        _ts("first_answered_at"),
        _ts("resolved_at"),
        _ts("updated_at"),
        _fk("citizen_id", "complaints", "citizens"),
        sa.ForeignKeyConstraint(["duplicate_of"], ["complaints.id"],
                                name=op.f("fk_complaints_duplicate_of_complaints")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
        sa.UniqueConstraint("number", name=op.f("uq_complaints_number")),
    )
    _index("complaints", "agency", "citizen_id", "created_at", "municipality",
           "resolution_due", "sector", "status")
    op.create_table(
        "complaint_photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _str("ref", 512),
        _str("mime", 100),
        _fk("complaint_id", "complaint_photos", "complaints", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_photos")),
    )
    _index("complaint_photos", "complaint_id")
    op.create_table(
        "complaint_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        _str("kind", 32),
        _ts("at", nullable=False),
        _str("actor", 128),
        sa.Column("text", sa.Text(), nullable=False),
        _json("data"),
        _fk("complaint_id", "complaint_history", "complaints", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_history")),
    )
    _index("complaint_history", "complaint_id")
    op.create_table(
        "conversations",
        _str("channel", 16),
        _str("user_id", 64),
        _str("state", 64),
        _json("data"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("channel", "user_id", name=op.f("pk_conversations")),
    )
    _index("conversations", "updated_at")
    op.create_table(
        "counters",
        _str("name", 64),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )


def downgrade() -> None:
    for table in ("counters", "conversations", "complaint_history", "complaint_photos",
                  "complaints", "identities", "citizens"):
        op.drop_table(table)
