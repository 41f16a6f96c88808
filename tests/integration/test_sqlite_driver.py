"""SQLite units of work: statements on the loop's thread, turns taken in-process, and a
lock held by another process waited for without blocking the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from domain.storage import Database, sqlite_url, upgrade_async
from domain.storage.sqlite_driver import OneHopConnection


@pytest.fixture
async def sqlite_db(tmp_path: Path):
    url = sqlite_url(tmp_path / "tsur.sqlite3")
    await upgrade_async(url)
    db = Database.from_url(url)
    yield db, tmp_path / "tsur.sqlite3"
    await db.dispose()


async def save_step(db: Database, user: str, state: str) -> None:
    async with db.uow() as uow:
        conversation = await uow.conversations.load("telegram", user)
        conversation.state = state
        await uow.conversations.save(conversation)
        await uow.commit()


async def test_another_process_holding_the_lock_does_not_block_the_loop(sqlite_db) -> None:
    db, path = sqlite_db
    other = sqlite3.connect(path, isolation_level=None)  # as another process would
    other.execute("BEGIN IMMEDIATE")
    try:
        step = asyncio.create_task(save_step(db, "1", "cmp.text"))
        ticks = 0
        for _ in range(5):  # the loop keeps running while the unit waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 5 and not step.done()
    finally:
        other.execute("COMMIT")
        other.close()
    await step
    async with db.uow() as uow:
        assert (await uow.conversations.load("telegram", "1")).state == "cmp.text"


async def test_inline_statements_never_wait_for_a_lock(sqlite_db) -> None:
    """On the loop's thread SQLite's busy timeout is off (a locked database sends the
    statement to the thread); on the thread it waits, from the first connection on."""
    db, _path = sqlite_db
    async with db.uow() as uow:  # the pool's first connection is made inside a unit
        assert (await uow.session.execute(text("PRAGMA busy_timeout"))).scalar() == 0
    async with db.session_factory() as session:
        assert (await session.execute(text("PRAGMA busy_timeout"))).scalar() == 30_000
    async with db.uow() as uow:
        assert (await uow.session.execute(text("PRAGMA busy_timeout"))).scalar() == 0


async def test_units_run_their_statements_on_the_loop_thread(sqlite_db) -> None:
    db, _path = sqlite_db
    calls: list[str] = []
    original = OneHopConnection._waiting

    def on_thread(self: OneHopConnection, fn):  # type: ignore[no-untyped-def]
        calls.append("thread")
        return original(self, fn)

    OneHopConnection._waiting = on_thread  # type: ignore[method-assign]
    try:
        await save_step(db, "2", "cmp.photos")
        assert calls == []  # no statement of the unit went to aiosqlite's thread
        async with db.session_factory() as session:  # outside a unit: on the thread
            await session.execute(text("SELECT 1"))
        assert calls
    finally:
        OneHopConnection._waiting = original  # type: ignore[method-assign]


async def test_concurrent_units_all_commit(sqlite_db) -> None:
    db, _path = sqlite_db
    await asyncio.gather(*(save_step(db, str(100 + i), f"s{i}") for i in range(30)))
    async with db.uow() as uow:
        states = [(await uow.conversations.load("telegram", str(100 + i))).state
                  for i in range(30)]
    assert states == [f"s{i}" for i in range(30)]
