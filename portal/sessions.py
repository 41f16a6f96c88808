"""Server-side login sessions: a random token in an HttpOnly cookie, its hash in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from domain.storage.portal_orm import PortalSessionRow, PortalUserRow
from domain.storage.uow import Database
from portal.access import Role
from portal.security import new_token, token_hash

SESSION_LIFETIME = timedelta(hours=12)  # one working day; then log in again


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """The user behind a request, with the session's CSRF token."""

    user_id: int
    login: str
    role: Role
    csrf: str
    token_hash: str


class SessionStore:
    def __init__(self, database: Database, lifetime: timedelta = SESSION_LIFETIME) -> None:
        self.database = database
        self.lifetime = lifetime

    async def create(self, user_id: int, now: datetime) -> str:
        """Start a session and return the cookie's token (never stored as such). Expired
        sessions are swept on the way."""
        token = new_token()
        async with self.database.session_factory() as session:
            await session.execute(delete(PortalSessionRow)
                                  .where(PortalSessionRow.expires_at <= now))
            session.add(PortalSessionRow(token_hash=token_hash(token), user_id=user_id,
                                         csrf=new_token(), created_at=now,
                                         expires_at=now + self.lifetime))
            await session.commit()
        return token

    async def lookup(self, token: str | None, now: datetime) -> LoggedIn | None:
        """The live session of an active user for ``token``, or None."""
        if not token or len(token) > 128:
            return None
        digest = token_hash(token)
        query = (select(PortalSessionRow.csrf, PortalUserRow.id, PortalUserRow.login,
                        PortalUserRow.role)
                 .join(PortalUserRow, PortalUserRow.id == PortalSessionRow.user_id)
                 .where(PortalSessionRow.token_hash == digest,
                        PortalSessionRow.expires_at > now, PortalUserRow.active.is_(True)))
        async with self.database.session_factory() as session:
            found = (await session.execute(query)).first()
        if found is None:
            return None
        csrf, user_id, login, role = found
        return LoggedIn(user_id, login, Role(role), csrf, digest)

    async def end(self, digest: str) -> None:
        async with self.database.session_factory() as session:
            await session.execute(delete(PortalSessionRow)
                                  .where(PortalSessionRow.token_hash == digest))
            await session.commit()
