"""The PostgreSQL connection pool: sized by settings, and kept rather than churned.

With SQLAlchemy's default pool (5 kept, 10 overflow) a web worker handling 8 updates at
once opened and closed 3 connections for most batches (bench/intake.py counted 245
connects in one run); the pool is now sized by ``TSUR_DB_POOL_SIZE`` and
``TSUR_DB_MAX_OVERFLOW``.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, text

from config.bootstrap import bootstrap
from config.settings import Settings
from dialogue.nlu import KeywordClassifier
from domain.catalogue import load_catalogue
from domain.storage import Database
from domain.storage.uow import MAX_OVERFLOW, POOL_SIZE


def test_the_pool_settings_reach_the_engine() -> None:
    settings = Settings.from_env({"TSUR_DATABASE_URL": "postgresql+asyncpg://tsur@127.0.0.1/x",
                                  "TSUR_DB_POOL_SIZE": "7", "TSUR_DB_MAX_OVERFLOW": "2"})
    system = bootstrap(settings, classifier=KeywordClassifier(load_catalogue(None)))
    pool = system.database.engine.pool  # nothing has connected yet
    assert (pool.size(), pool._max_overflow) == (7, 2)  # type: ignore[attr-defined]


def test_the_defaults_are_the_engines() -> None:
    assert (Settings().db_pool_size, Settings().db_max_overflow) == (POOL_SIZE, MAX_OVERFLOW)


@pytest.mark.parametrize("env", [{"TSUR_DB_POOL_SIZE": "0"}, {"TSUR_DB_MAX_OVERFLOW": "-1"},
                                 {"TSUR_DB_POOL_SIZE": "ten"}])
def test_bad_pool_settings_are_reported(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="TSUR_DB_"):
        Settings.from_env(env)


async def hold_units(database: Database, count: int) -> None:
    """``count`` units of work, each holding its connection until all have one."""
    barrier = asyncio.Barrier(count)

    async def unit() -> None:
        async with database.uow() as uow:
            await uow.session.execute(text("SELECT 1"))
            await barrier.wait()

    await asyncio.gather(*(unit() for _ in range(count)))


@pytest.mark.postgres
async def test_busy_units_reuse_the_pools_connections(postgres_url: str) -> None:
    database = Database.from_url(postgres_url, pool_size=8, max_overflow=2)
    connects: list[object] = []
    event.listen(database.engine.sync_engine, "connect", lambda *args: connects.append(args))
    try:
        for _ in range(3):  # three bursts of 8 updates at once, as one web worker sees them
            await hold_units(database, 8)
        assert len(connects) == 8  # (SQLAlchemy's default pool of 5 opened 14)
        await hold_units(database, 10)  # a larger burst overflows, and the pool keeps 8
        assert len(connects) == 10
        assert database.engine.pool.checkedin() == 8  # type: ignore[attr-defined]
    finally:
        await database.dispose()
