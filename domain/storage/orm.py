"""SQLAlchemy table mappings. Rows only: the domain dataclasses never see these classes.

Alembic owns the schema (``domain/storage/migrations``); keep ``versions/`` in step with
every change here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in and comes out timezone-aware, in UTC, on every backend.

    SQLite has no time zone type: values are stored as naive UTC text (which also sorts
    correctly) and marked UTC again on the way out. Naive datetimes are refused rather than
    guessed at, so a missing ``tzinfo`` is caught where it is written.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: store timezone-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSON on SQLite, JSONB on PostgreSQL (indexable, compact, normalised).
JsonType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JsonType,
                           list[str]: JsonType}


class CitizenRow(Base):
    __tablename__ = "citizens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    language: Mapped[str] = mapped_column(String(8), default="ru")
    name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    consent_given_at: Mapped[datetime | None]
    consent_version: Mapped[str | None] = mapped_column(String(32))
    subscribed_municipality: Mapped[str | None] = mapped_column(String(64))
    subscribed_sectors: Mapped[list[str]] = mapped_column(default=list)
    reachable: Mapped[bool] = mapped_column(default=True)
    broadcast_opt_out: Mapped[bool] = mapped_column(default=False)  # migration 0006
    created_at: Mapped[datetime | None]

    identities: Mapped[list[IdentityRow]] = relationship(
        back_populates="citizen", lazy="selectin", cascade="all, delete-orphan",
        order_by="IdentityRow.id")


class IdentityRow(Base):
    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id", ondelete="CASCADE"),
                                            index=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str] = mapped_column(String(64))

    citizen: Mapped[CitizenRow] = relationship(back_populates="identities", lazy="raise")


# Open statuses as SQL literals: a partial index is used only when the query repeats its
# predicate literally (PostgreSQL cannot match bound parameters against it).
OPEN_STATUS_SQL = "status IN ('new', 'in_progress', 'answered', 'reopened')"
FIRST_ANSWER_WATCHED = (f"{OPEN_STATUS_SQL} AND first_answered_at IS NULL "
                        "AND first_answer_overdue_at IS NULL")
RESOLUTION_WATCHED = f"{OPEN_STATUS_SQL} AND resolution_overdue_at IS NULL"
NEAR_UNSET = f"{OPEN_STATUS_SQL} AND resolution_near_at IS NULL"


class ComplaintRow(Base):
    __tablename__ = "complaints"
    __table_args__ = (
        # the deadline watch's partial indexes: only open complaints not yet found overdue
        Index("ix_complaints_first_answer_watch", "first_answer_due",
              postgresql_where=text(FIRST_ANSWER_WATCHED),
              sqlite_where=text(FIRST_ANSWER_WATCHED)),
        Index("ix_complaints_resolution_watch", "resolution_due",
              postgresql_where=text(RESOLUTION_WATCHED), sqlite_where=text(RESOLUTION_WATCHED)),
        Index("ix_complaints_near_unset", "id",
              postgresql_where=text(NEAR_UNSET), sqlite_where=text(NEAR_UNSET)),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    sector: Mapped[str] = mapped_column(String(32), index=True)
    category: Mapped[str] = mapped_column(String(64))
    agency: Mapped[str] = mapped_column(String(64), index=True)
    municipality: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    first_answer_due: Mapped[datetime]
    resolution_due: Mapped[datetime] = mapped_column(index=True)
    classified_by: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float | None]
    address: Mapped[str | None] = mapped_column(Text)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    status: Mapped[str] = mapped_column(String(16), index=True)
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("complaints.id"))
    first_answered_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]
    # deadline watch (notifications/deadlines.py): when 75 % of each allowed time is used
    # up, when the back office was warned, and when each deadline was found missed
    first_answer_near_at: Mapped[datetime | None]
    resolution_near_at: Mapped[datetime | None]
    first_answer_near_notified_at: Mapped[datetime | None]
    resolution_near_notified_at: Mapped[datetime | None]
    first_answer_overdue_at: Mapped[datetime | None]
    resolution_overdue_at: Mapped[datetime | None]

    photos: Mapped[list[PhotoRow]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="PhotoRow.position")
    history: Mapped[list[HistoryRow]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="HistoryRow.id")


class PhotoRow(Base):
    __tablename__ = "complaint_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"),
                                              index=True)
    position: Mapped[int]
    ref: Mapped[str] = mapped_column(String(512))
    mime: Mapped[str] = mapped_column(String(100), default="")


class HistoryRow(Base):
    __tablename__ = "complaint_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"),
                                              index=True)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ConversationRow(Base):
    __tablename__ = "conversations"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime | None] = mapped_column(index=True)


class CounterRow(Base):
    """Named sequences; complaint numbers use one per year (``complaint:2026``)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)



# the outbox rows already tried and still pending (migration 0011 holds a frozen copy)
OUTBOX_TRIED = "status = 'pending' AND attempts > 0"


class OutboxRow(Base):
    """A message waiting to be delivered (or its record once delivered); see
    :class:`domain.ports.OutboxMessage`."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedup_key"),
        # what the delivery workers' claim query filters and sorts by
        Index("ix_outbox_due", "channel", "status", "priority", "not_before"),
        # the claim's per-chat order check: only the rows tried and still pending
        Index("ix_outbox_tried", "channel", "chat_id", "id",
              postgresql_where=text(OUTBOX_TRIED), sqlite_where=text(OUTBOX_TRIED)),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    citizen_id: Mapped[int | None] = mapped_column(
        ForeignKey("citizens.id", ondelete="CASCADE"), index=True)
    complaint_id: Mapped[int | None] = mapped_column(
        ForeignKey("complaints.id", ondelete="SET NULL"))
    dedup_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    priority: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime]
    not_before: Mapped[datetime]
    locked_until: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(36))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None]
