"""Portal users: what ``tsur user add|list|disable`` calls, and logging in.

All functions take a :class:`~domain.storage.uow.Database` and run their own transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from domain.storage.portal_orm import PortalAuditRow, PortalSessionRow, PortalUserRow
from domain.storage.uow import Database
from portal.access import Role, parse_role
from portal.security import hash_password, needs_rehash, verify_password

LOGIN_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")


@dataclass(frozen=True, slots=True)
class PortalUser:
    id: int
    login: str
    role: Role
    active: bool
    created_at: datetime
    last_login_at: datetime | None


def _user(row: PortalUserRow) -> PortalUser:
    return PortalUser(row.id, row.login, Role(row.role), row.active, row.created_at,
                      row.last_login_at)


def normalize_login(login: str) -> str:
    """Logins are case-insensitive: stored and compared in lower case."""
    return login.strip().lower()


async def add_user(database: Database, login: str, password: str, role: str, *,
                   now: datetime | None = None) -> PortalUser:
    """Create an active user. ``ValueError`` on a bad login, role or short password, or
    when the login is taken."""
    login = normalize_login(login)
    if not LOGIN_PATTERN.fullmatch(login):
        raise ValueError("a login is 2-64 characters: latin letters, digits, '.', '_', '-'")
    parsed = parse_role(role)
    now = now or datetime.now(UTC)
    row = PortalUserRow(login=login, password_hash=hash_password(password), role=str(parsed),
                        active=True, created_at=now)
    async with database.session_factory() as session:
        session.add(row)
        session.add(PortalAuditRow(at=now, actor="cli", action="user_add", new=f"{login}:{parsed}"))
        try:
            await session.commit()
        except IntegrityError:
            raise ValueError(f"the login {login!r} is taken") from None
        return _user(row)


async def list_users(database: Database) -> list[PortalUser]:
    """Every user, active or not, by login."""
    async with database.session_factory() as session:
        rows = await session.scalars(select(PortalUserRow).order_by(PortalUserRow.login))
        return [_user(r) for r in rows]


async def disable_user(database: Database, login: str, *,
                       now: datetime | None = None) -> PortalUser:
    """Disable the user and end their sessions; ``LookupError`` if there is no such login."""
    login = normalize_login(login)
    async with database.session_factory() as session:
        row = (await session.scalars(
            select(PortalUserRow).where(PortalUserRow.login == login))).first()
        if row is None:
            raise LookupError(f"no user {login!r}")
        row.active = False
        await session.execute(delete(PortalSessionRow).where(PortalSessionRow.user_id == row.id))
        session.add(PortalAuditRow(at=now or datetime.now(UTC), actor="cli",
                                   action="user_disable", old="active", new="disabled",
                                   detail=login))
        await session.commit()
        return _user(row)


async def authenticate(database: Database, login: str, password: str,
                       now: datetime) -> PortalUser | None:
    """The active user with this login and password, or None. Takes the same time whether
    or not the login exists; upgrades the stored hash when its parameters are outdated."""
    login = normalize_login(login)
    async with database.session_factory() as session:
        row = (await session.scalars(
            select(PortalUserRow).where(PortalUserRow.login == login))).first()
        if not verify_password(row.password_hash if row else None, password):
            return None
        assert row is not None
        if not row.active:
            return None
        if needs_rehash(row.password_hash):
            row.password_hash = hash_password(password)
        row.last_login_at = now
        await session.commit()
        return _user(row)
