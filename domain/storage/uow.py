"""The SQL unit of work, and :class:`Database`, which owns the engine and hands out units."""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from domain.complaint import Complaint
from domain.events import DomainEvent
from domain.ports import EventHandler, UnitOfWork
from domain.storage.deadlines import SqlDeadlineWatch
from domain.storage.outbox import SqlOutbox
from domain.storage.repositories import (
    SqlCitizenRepository,
    SqlComplaintRepository,
    SqlConversationStore,
    utc_now,
)
from domain.storage.sqlite_driver import BUSY_TIMEOUT_MS, inline_statements, one_hop_creator
from domain.storage.surveys import SqlSurveyRepository

SQLITE_BUSY_TIMEOUT_MS = BUSY_TIMEOUT_MS


def sqlite_url(path: str | Path) -> str:
    """The async SQLAlchemy URL of an SQLite database file."""
    return f"sqlite+aiosqlite:///{Path(path).expanduser().resolve()}"


def _json_dumps(value: Any) -> str:
    # Keep Cyrillic readable in the database instead of \\u escapes.
    return json.dumps(value, ensure_ascii=False)


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


# A server database's connection pool per process (``TSUR_DB_POOL_SIZE``,
# ``TSUR_DB_MAX_OVERFLOW``). Telegram holds up to 40 webhook requests open at once (its
# default ``max_connections``), 10 per worker over four; SQLAlchemy's default pool of 5
# opened and closed an overflow connection for most units beyond the fifth (a new
# PostgreSQL backend, its start-up and the driver's type set-up each time), measured by
# bench/intake.py. Connections beyond the overflow wait in the pool's queue.
POOL_SIZE = 10
MAX_OVERFLOW = 5


def create_engine(url: str | URL, *, echo: bool = False, pool_size: int = POOL_SIZE,
                  max_overflow: int = MAX_OVERFLOW) -> AsyncEngine:
    """An async engine for ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://...``.

    A server database keeps ``pool_size`` connections open once used, and opens up to
    ``max_overflow`` more for bursts (closed again when returned to a full pool).

    For SQLite the parent directory is created, and every connection gets WAL, a busy
    timeout and foreign keys. Each transaction starts with ``BEGIN IMMEDIATE``: it takes the
    write lock up front, so two read-then-write transactions wait for each other instead of
    failing with "database is locked" when the second one tries to write. Its pool is
    SQLAlchemy's default (units take turns anyway, see :func:`sqlite_gate`).
    """
    url = make_url(url)
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, echo=echo, json_serializer=_json_dumps,
                                   pool_size=pool_size, max_overflow=max_overflow)
    file = _sqlite_file(url)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
    # one round trip to aiosqlite's thread per statement (see domain.storage.sqlite_driver)
    cargs, cparams = url.get_dialect()().create_connect_args(url)
    engine = create_async_engine(
        url, echo=echo, json_serializer=_json_dumps,
        async_creator=one_hop_creator(functools.partial(
            sqlite3.connect, *cargs, **{**cparams, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})))

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the driver (its legacy mode defers it until the first write).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if file is not None:
            cursor.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL fsyncs at checkpoints rather than at every commit: a killed
            # process loses no committed transaction (only a power cut could), and each
            # dialogue step stops paying an fsync (measured by bench/intake.py).
            cursor.execute("PRAGMA synchronous=NORMAL")
        # (the busy timeout is the connection's own: sqlite_driver switches it off and on)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class _TrackedComplaints(SqlComplaintRepository):
    """Remembers every complaint added or saved, so the unit can collect their events."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self.seen: list[Complaint] = []

    def _track(self, complaint: Complaint) -> None:
        if not any(c is complaint for c in self.seen):
            self.seen.append(complaint)

    async def add(self, complaint: Complaint) -> Complaint:
        result = await super().add(complaint)
        self._track(complaint)
        return result

    async def save(self, complaint: Complaint) -> None:
        await super().save(complaint)
        self._track(complaint)


_HOLDING: ContextVar[frozenset[int]] = ContextVar("tsur_sqlite_gates", default=frozenset())
_GATES: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def sqlite_gate(engine: AsyncEngine) -> AsyncIterator[None]:
    """Units of work on one SQLite engine take turns in this process, first come first
    served. SQLite lets one writer in at a time anyway (``BEGIN IMMEDIATE``), but waiting
    for its lock means sleeping in its busy handler (1, 2, 5 … 100 ms naps, no order), which
    under load gave dialogue steps p99 latencies of seconds. Other processes still meet
    the busy handler. Re-entrant per task: a unit opened inside another one (the pattern
    that already waited on SQLite's lock) passes."""
    key = id(engine.sync_engine)
    if key in _HOLDING.get():
        yield
        return
    gate = _GATES.get(engine.sync_engine)
    if gate is None:
        gate = _GATES[engine.sync_engine] = asyncio.Lock()
    async with gate:
        token = _HOLDING.set(_HOLDING.get() | {key})
        try:
            yield
        finally:
            _HOLDING.reset(token)


class SqlUnitOfWork:
    """One transaction over the SQL repositories; rolls back unless :meth:`commit` is called.

    Use as ``async with db.uow() as uow: ...; await uow.commit()``. A unit is single-use.
    ``commit`` first hands the events of the complaints it added or saved to
    ``event_handler`` (which writes outbox rows through this same unit), then commits
    both together and clears the events.
    """

    citizens: SqlCitizenRepository
    complaints: _TrackedComplaints
    conversations: SqlConversationStore
    outbox: SqlOutbox
    surveys: SqlSurveyRepository
    deadlines: SqlDeadlineWatch

    def __init__(self, session_factory: async_sessionmaker[AsyncSession],
                 clock: Callable[[], datetime] = utc_now,
                 event_handler: EventHandler | None = None) -> None:
        self._session_factory = session_factory
        self._clock = clock
        self._event_handler = event_handler
        self._session: AsyncSession | None = None
        self._gate: AbstractAsyncContextManager[None] | None = None
        self._inline: AbstractContextManager[None] | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("unit of work is not entered")
        return self._session

    async def __aenter__(self) -> SqlUnitOfWork:
        if self._session is not None:
            raise RuntimeError("unit of work is already in use")
        engine = self._session_factory.kw.get("bind")
        if isinstance(engine, AsyncEngine) and engine.dialect.name == "sqlite":
            self._gate = sqlite_gate(engine)
            await self._gate.__aenter__()
            self._inline = inline_statements()
            self._inline.__enter__()
        session = self._session_factory()
        self._session = session
        self.citizens = SqlCitizenRepository(session)
        self.complaints = _TrackedComplaints(session)
        self.conversations = SqlConversationStore(session, self._clock, self.citizens)
        self.outbox = SqlOutbox(session)
        self.surveys = SqlSurveyRepository(session)
        self.deadlines = SqlDeadlineWatch(session)
        return self

    async def __aexit__(self, *exc: object) -> None:
        session = self.session
        try:
            await session.rollback()
        finally:
            try:
                await session.close()
            finally:
                if self._inline is not None:
                    inline, self._inline = self._inline, None
                    inline.__exit__(None, None, None)
                if self._gate is not None:
                    gate, self._gate = self._gate, None
                    await gate.__aexit__(None, None, None)

    def collect_events(self) -> list[DomainEvent]:
        """Pending events of the aggregates this unit added or saved, in order."""
        return [event for complaint in self.complaints.seen for event in complaint.events]

    async def commit(self) -> None:
        events: Sequence[DomainEvent] = self.collect_events()
        if events and self._event_handler is not None:
            # the protocol's attributes are mutable, hence invariant: a cast, not a mismatch
            await self._event_handler(cast("UnitOfWork", self), events)
        await self.session.commit()
        for complaint in self.complaints.seen:
            complaint.events.clear()

    async def rollback(self) -> None:
        await self.session.rollback()


class Database:
    """The engine and session factory of one database; ``uow()`` opens units of work."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = utc_now, *,
                 event_handler: EventHandler | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.event_handler = event_handler
        self.session_factory = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str | URL, *, echo: bool = False,
                 clock: Callable[[], datetime] = utc_now,
                 event_handler: EventHandler | None = None, pool_size: int = POOL_SIZE,
                 max_overflow: int = MAX_OVERFLOW) -> Database:
        """Create the engine (see :func:`create_engine`, which also explains the pool
        sizes); ``clock`` stamps conversations; ``event_handler`` receives the events of
        every unit's commit (see :class:`SqlUnitOfWork`)."""
        engine = create_engine(url, echo=echo, pool_size=pool_size, max_overflow=max_overflow)
        return cls(engine, clock, event_handler=event_handler)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.session_factory, self.clock, self.event_handler)

    async def dispose(self) -> None:
        await self.engine.dispose()
