"""aiosqlite connections that cross to their thread once per statement, not four times.

aiosqlite runs every sqlite3 call on one worker thread per connection, and SQLAlchemy's
adapter makes four calls per statement (create a cursor, execute, fetch, close): four
round trips between the event loop and the thread, each a queue put, a thread wake-up and
a ``call_soon_threadsafe`` back. On a loaded machine a round trip costs far more than the
statement itself (bench/intake.py measured ~30 per dialogue step). :class:`OneHopConnection`
does create, execute, fetch and close in one function on the thread, and skips the round
trip of a ``COMMIT``/``ROLLBACK`` when no transaction is open (the pool's reset of every
returned connection).

It relies on ``aiosqlite.Connection._execute`` (queue a function for the thread), which
every public method of aiosqlite is built on; the version is pinned.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiosqlite


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

