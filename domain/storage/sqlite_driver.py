"""aiosqlite connections that cross to their thread once per statement, not four times.

aiosqlite runs every sqlite3 call on one worker thread per connection, and SQLAlchemy's
adapter makes four calls per statement (create a cursor, execute, fetch, close): four
round trips between the event loop and the thread, each a queue put, a thread wake-up and
a ``call_soon_threadsafe`` back. On a loaded machine a round trip costs far more than the
statement itself (bench/intake.py measured ~30 per dialogue step). :class:`OneHopConnection`
does create, execute, fetch and close in one function on the thread, and skips the round
trip of a ``COMMIT``/``ROLLBACK`` when no transaction is open (the pool's reset of every
returned connection).

Inside :func:`inline_statements` (the units of work of :mod:`domain.storage.uow`) it goes
further and runs statements on the event loop's own thread: an SQLite point query takes
microseconds, a round trip to a thread (two wake-ups and the GIL changing hands) far more,
and the units of a process already take turns (``sqlite_gate``), so nothing waits for
SQLite's lock in-process. Waiting for another process's lock must not block the loop:
inline statements run with SQLite's busy timeout at 0, and one that finds the database
locked (``SQLITE_BUSY``: nothing was done) is run again on the thread, which may wait.
Sessions outside units (the portal's reports) stay on the thread.

It relies on ``aiosqlite.Connection._execute`` (queue a function for the thread), which
every public method of aiosqlite is built on; the version is pinned.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any

import aiosqlite

BUSY_TIMEOUT_MS = 30_000  # how long a statement on the thread waits for another's lock
SQLITE_BUSY = 5
_INLINE: ContextVar[bool] = ContextVar("tsur_sqlite_inline", default=False)


@contextmanager
def inline_statements() -> Iterator[None]:
    """Run the statements of this task's SQLite connections on the event loop's thread."""
    token = _INLINE.set(True)
    try:
        yield
    finally:
        _INLINE.reset(token)


class OneHopCursor:
    """The part of ``aiosqlite.Cursor`` SQLAlchemy's adapter uses; rows are fetched on the
    thread together with the execution, so the fetch methods return without a round trip."""

    arraysize = 1

    def __init__(self, connection: OneHopConnection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []

    async def __aenter__(self) -> OneHopCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _run(self, sql: str, parameters: Any, many: bool) -> None:  # on the thread
        cursor = self._connection._conn.cursor()
        try:
            if many:
                cursor.executemany(sql, parameters)
            else:
                cursor.execute(sql, parameters)
            self.description = cursor.description
            # rowcount of INSERT … RETURNING is only final once its rows are read
            self._rows = cursor.fetchall() if cursor.description else []
            self.rowcount = cursor.rowcount
            self.lastrowid = cursor.lastrowid
        finally:
            cursor.close()

    async def execute(self, sql: str, parameters: Any = ()) -> OneHopCursor:
        await self._connection._execute(self._run, sql, parameters, False)
        return self

    async def executemany(self, sql: str, parameters: Sequence[Any]) -> OneHopCursor:
        await self._connection._execute(self._run, sql, parameters, True)
        return self

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        size = size or self.arraysize
        taken, self._rows = self._rows[:size], self._rows[size:]
        return taken

    async def fetchall(self) -> list[Any]:
        taken, self._rows = self._rows, []
        return taken

    async def close(self) -> None:
        self._rows = []


class OneHopConnection(aiosqlite.Connection):
    _busy_ms = BUSY_TIMEOUT_MS  # what the connection's busy timeout is set to now

    def _busy_timeout(self, ms: int) -> None:  # on whichever thread runs the statement
        if self._busy_ms != ms:
            self._conn.execute(f"PRAGMA busy_timeout={int(ms)}")
            self._busy_ms = ms

    def _waiting(self, fn: Callable[[], Any]) -> Any:
        self._busy_timeout(BUSY_TIMEOUT_MS)
        return fn()

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        function = partial(fn, *args, **kwargs)
        if not _INLINE.get() or self._connection is None:
            return await super()._execute(self._waiting, function)
        self._busy_timeout(0)
        try:
            return function()
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) != SQLITE_BUSY:
                raise
        # another process holds the lock: wait for it on the thread, not on the loop
        return await super()._execute(self._waiting, function)

    def cursor(self) -> OneHopCursor:  # type: ignore[override]
        """No round trip: the sqlite3 cursor is made on the thread when it executes.
        (SQLAlchemy enters the result with ``async with``, as aiosqlite allows.)"""
        return OneHopCursor(self)

    async def commit(self) -> None:
        if self._connection is not None and self._connection.in_transaction:
            await super().commit()

    async def rollback(self) -> None:
        if self._connection is not None and self._connection.in_transaction:
            await super().rollback()


def one_hop_creator(connect: Callable[[], sqlite3.Connection]
                    ) -> Callable[[], Awaitable[OneHopConnection]]:
    """An ``async_creator`` for :func:`sqlalchemy.ext.asyncio.create_async_engine`."""

    async def create() -> OneHopConnection:
        connection = OneHopConnection(connect, iter_chunk_size=64)
        connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own
        await connection  # starts the thread and connects on it
        return connection

    return create

