"""Tables of the staff portal: users, their login sessions and the audit log.

They share :class:`domain.storage.orm.Base`'s metadata, so Alembic sees them (the
migration is ``0003_portal``). Importing this module registers the tables.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from domain.storage.orm import Base


class PortalUserRow(Base):
    """A member of staff. ``role`` is one of operator, communications, supervisor, admin."""

    __tablename__ = "portal_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class PortalSessionRow(Base):
    """A login session. Only the SHA-256 of the cookie's token is stored, so a leaked
    table does not hand out sessions; ``csrf`` is the per-session form token."""

    __tablename__ = "portal_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("portal_users.id", ondelete="CASCADE"),
                                         index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class PortalAuditRow(Base):
    """Who changed what, and when: one row per change made through the portal."""

    __tablename__ = "portal_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64))  # the user's login
    action: Mapped[str] = mapped_column(String(32))
    complaint_number: Mapped[str | None] = mapped_column(String(32), index=True)
    old: Mapped[str] = mapped_column(Text, default="")
    new: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[str] = mapped_column(Text, default="")
