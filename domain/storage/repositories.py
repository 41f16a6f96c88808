"""SQL implementations of the repository protocols in :mod:`domain.ports`.

Each repository works inside the session of one :class:`~domain.storage.uow.SqlUnitOfWork`
and flushes, never commits: the unit of work decides.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.citizen import Citizen
from domain.complaint import Complaint
from domain.ports import Conversation
from domain.storage.mapping import (
    citizen_from_core,
    citizen_values,
    complaint_from_row,
    complaint_values,
    write_complaint,
)
from domain.storage.orm import (
    CitizenRow,
    ComplaintRow,
    ConversationRow,
    CounterRow,
    HistoryRow,
    IdentityRow,
    PhotoRow,
)


def _insert(session: AsyncSession, table: Any) -> Any:
    """A dialect-specific INSERT that knows ``on_conflict_do_update``."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database {dialect!r}")


_CITIZENS, _IDENTITIES = cast(Table, CitizenRow.__table__), cast(Table, IdentityRow.__table__)
_MATCHED = _IDENTITIES.alias("matched")
_BY_IDENTITY = (
    select(_CITIZENS, _IDENTITIES.c.channel.label("identity_channel"),
           _IDENTITIES.c.external_id.label("identity_external_id"),
           _IDENTITIES.c.chat_id.label("identity_chat_id"))
    .select_from(_MATCHED.join(_CITIZENS, _CITIZENS.c.id == _MATCHED.c.citizen_id)
                 .join(_IDENTITIES, _IDENTITIES.c.citizen_id == _CITIZENS.c.id))
    .where(_MATCHED.c.channel == bindparam("channel"),
           _MATCHED.c.external_id == bindparam("external_id"))
    .order_by(_IDENTITIES.c.id))


_IDENTITY_COLUMNS = (_IDENTITIES.c.channel.label("identity_channel"),
                     _IDENTITIES.c.external_id.label("identity_external_id"),
                     _IDENTITIES.c.chat_id.label("identity_chat_id"))
_BY_ID = (select(_CITIZENS, *_IDENTITY_COLUMNS)
          .select_from(_CITIZENS.outerjoin(_IDENTITIES,
                                           _IDENTITIES.c.citizen_id == _CITIZENS.c.id))
          .where(_CITIZENS.c.id == bindparam("citizen_id"))
          .order_by(_IDENTITIES.c.id))
_ADD_CITIZEN = _CITIZENS.insert().returning(_CITIZENS.c.id)
_ADD_IDENTITY = _IDENTITIES.insert()
_SAVE_CITIZEN = _CITIZENS.update().where(_CITIZENS.c.id == bindparam("citizen_id"))
_IDENTITIES_OF = (select(_IDENTITIES.c.id, _IDENTITIES.c.channel, _IDENTITIES.c.external_id,
                         _IDENTITIES.c.chat_id)
                  .where(_IDENTITIES.c.citizen_id == bindparam("citizen_id")))

IdentityKey = tuple[tuple[str, str, str], ...]


def _identity_key(citizen: Citizen) -> IdentityKey:
    return tuple((i.channel, i.external_id, i.chat_id) for i in citizen.identities)


class SqlCitizenRepository:
    """Citizens with Core statements (a dialogue step reads or writes one on most steps,
    and the ORM's loading and flushing cost more than the rest of such a step).

    A save writes the identities only when they differ from what this unit read or wrote
    for the citizen (or when it does not know)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # citizens read along with a conversation (SqlConversationStore.load), each handed
        # out once by by_identity; dropped when a citizen is written
        self.prefetched: dict[tuple[str, str], Citizen | None] = {}
        self._identities: dict[int, IdentityKey] = {}  # as stored, by citizen id

    def _known(self, citizen: Citizen | None) -> Citizen | None:
        if citizen is not None and citizen.id is not None:
            self._identities[citizen.id] = _identity_key(citizen)
        return citizen

    async def get(self, citizen_id: int) -> Citizen | None:
        rows = (await self.session.execute(_BY_ID, {"citizen_id": citizen_id})).all()
        return self._known(citizen_from_core(rows)) if rows else None

    async def by_identity(self, channel: str, external_id: str) -> Citizen | None:
        """Asked on every dialogue step, so one Core query (the citizen and all its
        identities); none at all when the conversation of that identity was just loaded in
        this unit."""
        if (channel, external_id) in self.prefetched:
            return self._known(self.prefetched.pop((channel, external_id)))
        rows = (await self.session.execute(_BY_IDENTITY, {
            "channel": channel, "external_id": external_id})).all()
        return self._known(citizen_from_core(rows)) if rows else None

    async def add(self, citizen: Citizen) -> Citizen:
        """Store a new citizen; sets ``citizen.id``."""
        self.prefetched.clear()
        citizen_id = (await self.session.execute(_ADD_CITIZEN, citizen_values(citizen))
                      ).scalar_one()
        if citizen.identities:
            await self.session.execute(_ADD_IDENTITY, [
                {"citizen_id": citizen_id, "channel": i.channel, "external_id": i.external_id,
                 "chat_id": i.chat_id} for i in citizen.identities])
        citizen.id = citizen_id
        self._known(citizen)
        return citizen

    async def save(self, citizen: Citizen) -> None:
        """Write back changed fields and identities; raises LookupError if never added."""
        self.prefetched.clear()
        if citizen.id is None:
            raise LookupError("citizen None is not stored")
        result = await self.session.execute(
            _SAVE_CITIZEN, {"citizen_id": citizen.id, **citizen_values(citizen)})
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise LookupError(f"citizen {citizen.id} is not stored")
        if self._identities.get(citizen.id) != _identity_key(citizen):
            await self._save_identities(citizen.id, citizen)
        self._known(citizen)

    async def _save_identities(self, citizen_id: int, citizen: Citizen) -> None:
        """Identities are matched by (channel, external_id): gone ones are deleted, a
        changed chat id is updated, new ones are added (in the citizen's order)."""
        stored = {(r.channel, r.external_id): r for r in (await self.session.execute(
            _IDENTITIES_OF, {"citizen_id": citizen_id})).all()}
        wanted = {(i.channel, i.external_id): i for i in citizen.identities}
        gone = [r.id for key, r in stored.items() if key not in wanted]
        if gone:
            await self.session.execute(delete(_IDENTITIES).where(_IDENTITIES.c.id.in_(gone)))
        for key, identity in wanted.items():
            row = stored.get(key)
            if row is None:
                await self.session.execute(_ADD_IDENTITY, {
                    "citizen_id": citizen_id, "channel": identity.channel,
                    "external_id": identity.external_id, "chat_id": identity.chat_id})
            elif row.chat_id != identity.chat_id:
                await self.session.execute(
                    update(_IDENTITIES).where(_IDENTITIES.c.id == row.id)
                    .values(chat_id=identity.chat_id))


_COMPLAINTS, _PHOTOS, _HISTORY = (cast(Table, ComplaintRow.__table__),
                                  cast(Table, PhotoRow.__table__),
                                  cast(Table, HistoryRow.__table__))
_ADD_COMPLAINT = _COMPLAINTS.insert().returning(_COMPLAINTS.c.id)
_ADD_PHOTO = _PHOTOS.insert()
_ADD_HISTORY = _HISTORY.insert().returning(_HISTORY.c.id)


class SqlComplaintRepository:
    """Complaints; reads and updates go through the ORM, a new complaint is inserted with
    Core statements (the last step of every complaint dialogue). A complaint added in
    this unit is handed out as it is by :meth:`get` (the event handlers ask for it right
    after, at commit), not read back."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._added: dict[int, Complaint] = {}

    async def get(self, complaint_id: int) -> Complaint | None:
        added = self._added.get(complaint_id)
        if added is not None:
            return added
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
        session = self.session
        complaint_id = (await session.execute(_ADD_COMPLAINT, complaint_values(complaint))
                        ).scalar_one()
        if complaint.photos:
            await session.execute(_ADD_PHOTO, [
                {"complaint_id": complaint_id, "position": position, "ref": photo.ref,
                 "mime": photo.mime} for position, photo in enumerate(complaint.photos)])
        for entry in complaint.history:
            entry.id = (await session.execute(_ADD_HISTORY, {
                "complaint_id": complaint_id, "kind": str(entry.kind), "at": entry.at,
                "actor": entry.actor, "text": entry.text, "data": dict(entry.data)})
            ).scalar_one()
        complaint.id = complaint_id
        self._after_flush(complaint, [])
        self._added[complaint_id] = complaint
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
        """A new number such as ``2026-000042``, unique across processes; a unit that is
        rolled back may leave a gap.

        PostgreSQL: from the year's sequence ``complaint_number_<year>``, made on first use
        (see :func:`_number_from_new_sequence`). A sequence hands out numbers without locking
        anything, where the counter row stayed locked from the number to the commit and
        made concurrent registrations queue (bench/intake.py). SQLite: a per-year counter
        row; the unit already holds the database's only write lock, so it costs nothing
        more, and a rolled-back number is handed out again.
        """
        if self.session.get_bind().dialect.name == "postgresql":
            sequence = f"complaint_number_{int(year)}"
            next_value = text("SELECT nextval(to_regclass(:sequence))")
            value = (await self.session.execute(next_value, {"sequence": sequence})).scalar()
            if value is None:  # no sequence yet for the year (nextval of NULL is NULL)
                value = await _number_from_new_sequence(self.session, year)
            return f"{year}-{value:06d}"
        table = CounterRow.__table__
        stmt = _insert(self.session, table).values(name=f"complaint:{year}", value=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.name], set_={"value": table.c.value + 1},
        ).returning(table.c.value)
        value = (await self.session.execute(stmt)).scalar_one()
        return f"{year}-{value:06d}"


async def _number_from_new_sequence(session: AsyncSession, year: int) -> int:
    """Create ``complaint_number_<year>`` on PostgreSQL unless it exists, and take a number.

    Runs in the registering unit (a second connection could wait forever for a pool
    that units waiting here have drained). The advisory lock, held to the unit's end, lets
    one unit create the sequence; the others then find it: ``IF NOT EXISTS`` looks it up
    under a lock, which also refreshes the backend's catalogue cache, where the plain
    ``to_regclass`` look-up above may still see it missing. It continues after the year's
    counter row, the numbers given before sequences were used. Once a year."""
    name = f"complaint_number_{int(year)}"
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
                          {"name": name})
    counted = (await session.execute(select(CounterRow.value).where(
        CounterRow.name == f"complaint:{year}"))).scalar()
    await session.execute(text(
        f"CREATE SEQUENCE IF NOT EXISTS {name} START WITH {int(counted or 0) + 1}"))
    return int((await session.execute(text(f"SELECT nextval('{name}')"))).scalar_one())


_CONVERSATIONS = ConversationRow.__table__
_MATCHED_CONVERSATION = _IDENTITIES.alias("conversation_identity")
# the conversation, and the citizen of the same identity with each of its identities (or
# NULLs); on PostgreSQL the conversation row is locked (SQLite renders no FOR UPDATE)
_LOAD_WITH_CITIZEN = (
    select(_CONVERSATIONS.c.state, _CONVERSATIONS.c.data, _CONVERSATIONS.c.updated_at,
           _CITIZENS, _IDENTITIES.c.channel.label("identity_channel"),
           _IDENTITIES.c.external_id.label("identity_external_id"),
           _IDENTITIES.c.chat_id.label("identity_chat_id"))
    .select_from(
        _CONVERSATIONS
        .outerjoin(_MATCHED_CONVERSATION,
                   (_MATCHED_CONVERSATION.c.channel == _CONVERSATIONS.c.channel)
                   & (_MATCHED_CONVERSATION.c.external_id == _CONVERSATIONS.c.user_id))
        .outerjoin(_CITIZENS, _CITIZENS.c.id == _MATCHED_CONVERSATION.c.citizen_id)
        .outerjoin(_IDENTITIES, _IDENTITIES.c.citizen_id == _CITIZENS.c.id))
    .where(_CONVERSATIONS.c.channel == bindparam("channel"),
           _CONVERSATIONS.c.user_id == bindparam("user_id"))
    .order_by(_IDENTITIES.c.id)
    .with_for_update(of=_CONVERSATIONS))


@functools.cache
def _peek(channels: int) -> Any:
    """A plain read of ``channels`` conversations of one user id: no lock, no citizen
    (built once per count: an expanding IN would be rendered again on every call)."""
    return (select(_CONVERSATIONS.c.channel, _CONVERSATIONS.c.state, _CONVERSATIONS.c.data,
                   _CONVERSATIONS.c.updated_at)
            .where(_CONVERSATIONS.c.channel.in_([bindparam(f"c{i}") for i in range(channels)]),
                   _CONVERSATIONS.c.user_id == bindparam("user_id")))


def utc_now() -> datetime:
    return datetime.now(UTC)


class SqlConversationStore:
    """Conversations by (channel, user id). With ``citizens``, :meth:`load` also reads the
    citizen of that identity in the same query (the engine asks for both on every step:
    one round trip to the database instead of two) and leaves it to
    ``citizens.by_identity``."""

    def __init__(self, session: AsyncSession, clock: Callable[[], datetime] = utc_now,
                 citizens: SqlCitizenRepository | None = None) -> None:
        self.session = session
        self.clock = clock
        self.citizens = citizens

    async def load(self, channel: str, user_id: str) -> Conversation:
        """The stored conversation, or a fresh idle one with empty data.

        On PostgreSQL the row stays locked (``FOR UPDATE``) until the unit ends, so two
        worker processes handed updates of one user take turns, as the engine's lock does
        within a process; a first conversation is inserted (idle) to have a row to lock.
        SQLite needs nothing: the unit holds the database's write lock from its start.
        """
        params = {"channel": channel, "user_id": user_id}
        rows = (await self.session.execute(_LOAD_WITH_CITIZEN, params)).all()
        if not rows and self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(_insert(self.session, _CONVERSATIONS).values(
                channel=channel, user_id=user_id, state="idle", data={}, updated_at=None,
            ).on_conflict_do_nothing())
            rows = (await self.session.execute(_LOAD_WITH_CITIZEN, params)).all()
        if self.citizens is not None and rows:
            known = [r for r in rows if r.id is not None]
            self.citizens.prefetched[(channel, user_id)] = (
                citizen_from_core(known) if known else None)
        row = rows[0] if rows else None
        if row is None or row.updated_at is None:  # new (or only just locked on PostgreSQL)
            return Conversation(channel, user_id, "idle", {}, None)
        # JSON is decoded afresh for each query: edits of the draft alias nothing
        return Conversation(channel, user_id, row.state, row.data or {}, row.updated_at)

    async def peek(self, user_id: str, *channels: str) -> dict[str, Conversation]:
        """The stored conversations of ``user_id`` on these channels, by channel, in one
        query: a plain read that neither locks nor inserts (unlike :meth:`load`), for a
        caller that only looks. A channel without a row is left out."""
        params = {f"c{i}": channel for i, channel in enumerate(channels)}
        rows = await self.session.execute(_peek(len(channels)), {**params, "user_id": user_id})
        return {r.channel: Conversation(r.channel, user_id, r.state, r.data or {},
                                        r.updated_at) for r in rows}

    async def save(self, conversation: Conversation) -> None:
        """Insert or replace; stamps ``updated_at`` with the store's clock."""
        conversation.updated_at = self.clock()
        stmt = _SAVE_CONVERSATION[self.session.get_bind().dialect.name]
        await self.session.execute(stmt, {
            "channel": conversation.channel, "user_id": conversation.user_id,
            "state": conversation.state, "data": conversation.data or {},
            "updated_at": conversation.updated_at})


def _upsert_conversation(insert: Any) -> Any:
    stmt = insert(_CONVERSATIONS)
    return stmt.on_conflict_do_update(
        index_elements=[_CONVERSATIONS.c.channel, _CONVERSATIONS.c.user_id],
        set_={name: stmt.excluded[name] for name in ("state", "data", "updated_at")})


# built once: saved after every dialogue step
_SAVE_CONVERSATION = {"sqlite": _upsert_conversation(sqlite.insert),
                      "postgresql": _upsert_conversation(postgresql.insert)}
