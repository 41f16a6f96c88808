"""SQL implementations of the repository protocols in :mod:`domain.ports`.

Each repository works inside the session of one :class:`~domain.storage.uow.SqlUnitOfWork`
and flushes, never commits: the unit of work decides.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload

from domain.citizen import Citizen
from domain.complaint import Complaint
from domain.ports import Conversation
from domain.storage.mapping import (
    citizen_from_row,
    complaint_from_row,
    write_citizen,
    write_complaint,
)
from domain.storage.orm import CitizenRow, ComplaintRow, ConversationRow, CounterRow, IdentityRow


def _insert(session: AsyncSession, table: Any) -> Any:
    """A dialect-specific INSERT that knows ``on_conflict_do_update``."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database {dialect!r}")


class SqlCitizenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, citizen_id: int) -> Citizen | None:
        row = await self.session.get(CitizenRow, citizen_id)
        return citizen_from_row(row) if row else None

    async def by_identity(self, channel: str, external_id: str) -> Citizen | None:
        # asked on every dialogue step: the citizen and all its identities in one query
        matched = aliased(IdentityRow)
        query = (select(CitizenRow).join(matched, matched.citizen_id == CitizenRow.id)
                 .where(matched.channel == channel, matched.external_id == external_id)
                 .options(joinedload(CitizenRow.identities)))
        row = (await self.session.scalars(query)).unique().first()
        return citizen_from_row(row) if row else None

    async def add(self, citizen: Citizen) -> Citizen:
        """Store a new citizen; sets ``citizen.id``."""
        row = CitizenRow(identities=[])
        write_citizen(row, citizen)
        self.session.add(row)
        await self.session.flush()
        citizen.id = row.id
        return citizen

    async def save(self, citizen: Citizen) -> None:
        """Write back changed fields and identities; raises LookupError if never added."""
        row = await self.session.get(CitizenRow, citizen.id) if citizen.id else None
        if row is None:
            raise LookupError(f"citizen {citizen.id} is not stored")
        write_citizen(row, citizen)
        await self.session.flush()


class SqlComplaintRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, complaint_id: int) -> Complaint | None:
        row = await self.session.get(ComplaintRow, complaint_id)
        return complaint_from_row(row) if row else None

    async def by_number(self, number: str) -> Complaint | None:
        query = select(ComplaintRow).where(ComplaintRow.number == number)
        row = (await self.session.scalars(query)).first()
        return complaint_from_row(row) if row else None

    async def for_citizen(self, citizen_id: int, limit: int = 20) -> Sequence[Complaint]:
        """Newest first."""
        query = (select(ComplaintRow).where(ComplaintRow.citizen_id == citizen_id)
                 .order_by(ComplaintRow.created_at.desc(), ComplaintRow.id.desc())
                 .limit(limit))
        return [complaint_from_row(row) for row in await self.session.scalars(query)]

    async def add(self, complaint: Complaint) -> Complaint:
        """Store a new complaint with photos and history; sets ``id`` on the complaint, on
        its history entries and on its pending events."""
        if complaint.id is not None:
            raise ValueError(f"complaint {complaint.id} is already stored")
        row = ComplaintRow(photos=[], history=[])
        added = write_complaint(row, complaint)
        self.session.add(row)
        await self.session.flush()
        complaint.id = row.id
        self._after_flush(complaint, added)
        return complaint

    async def save(self, complaint: Complaint) -> None:
        """Write back changed fields; append new photos and history entries without an id."""
        row = await self.session.get(ComplaintRow, complaint.id) if complaint.id else None
        if row is None:
            raise LookupError(f"complaint {complaint.id} is not stored")
        added = write_complaint(row, complaint)
        await self.session.flush()
        self._after_flush(complaint, added)

    @staticmethod
    def _after_flush(complaint: Complaint, added: list[Any]) -> None:
        for entry, history_row in added:
            entry.id = history_row.id
        complaint.events[:] = [
            dataclasses.replace(e, complaint_id=complaint.id) if e.complaint_id is None else e
            for e in complaint.events
        ]

    async def next_number(self, year: int) -> str:
        """A new number such as ``2026-000042``, from a per-year counter row.

        The upsert locks the counter row until the transaction ends (on SQLite the write
        transaction holds the database lock), so concurrent units never get the same number.
        A rolled-back unit leaves a gap, which is harmless.
        """
        table = CounterRow.__table__
        stmt = _insert(self.session, table).values(name=f"complaint:{year}", value=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.name], set_={"value": table.c.value + 1},
        ).returning(table.c.value)
        value = (await self.session.execute(stmt)).scalar_one()
        return f"{year}-{value:06d}"


def utc_now() -> datetime:
    return datetime.now(UTC)


class SqlConversationStore:
    def __init__(self, session: AsyncSession, clock: Callable[[], datetime] = utc_now) -> None:
        self.session = session
        self.clock = clock

    async def load(self, channel: str, user_id: str) -> Conversation:
        """The stored conversation, or a fresh idle one with empty data."""
        query = (select(ConversationRow)
                 .where(ConversationRow.channel == channel, ConversationRow.user_id == user_id)
                 .execution_options(populate_existing=True))
        row = (await self.session.scalars(query)).first()
        if row is None:
            return Conversation(channel, user_id, "idle", {}, None)
        # A deep copy: in-place edits of the draft must not alias the row's JSON value.
        return Conversation(channel, user_id, row.state, copy.deepcopy(row.data or {}),
                            row.updated_at)

    async def save(self, conversation: Conversation) -> None:
        """Insert or replace; stamps ``updated_at`` with the store's clock."""
        conversation.updated_at = self.clock()
        values = {"state": conversation.state, "data": conversation.data or {},
                  "updated_at": conversation.updated_at}
        table = ConversationRow.__table__
        stmt = _insert(self.session, table).values(
            channel=conversation.channel, user_id=conversation.user_id, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.channel, table.c.user_id], set_=values)
        await self.session.execute(stmt)
