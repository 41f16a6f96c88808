"""Migrations, engine set-up and the migration command line, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from domain.storage import Database, sqlite_url, upgrade
from domain.storage.migrate import alembic_config
from domain.storage.migrate import main as migrate_main
from domain.storage.uow import create_engine

TABLES = {"alembic_version", "citizens", "identities", "complaints", "complaint_photos",
          "complaint_history", "conversations", "counters", "outbox",
          "portal_users", "portal_sessions", "portal_audit", "complaint_topics", "surveys",
          "broadcasts", "report_daily", "report_monthly", "report_hist", "report_state",
          "report_rating_wait"}
# SQLite only: the register's search index (migration 0009), an FTS5 table and its shadows
SEARCH_TABLES = {"complaints_fts", "complaints_fts_config", "complaints_fts_data",
                 "complaints_fts_docsize", "complaints_fts_idx"}
HEAD = "0011_outbox_order"


def test_migrations_apply_to_an_empty_database_and_are_idempotent(db_url: str):
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        assert not Path(str(url.database)).parent.exists()
    upgrade(db_url)
    upgrade(db_url)  # a second run is a no-op, not an error
    command.check(alembic_config(db_url))  # models and migrations agree

    async def schema() -> tuple[set[str], str | None]:
        engine = create_engine(db_url)
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))
                       ).scalar_one_or_none()
        await engine.dispose()
        return tables, version

    expected = TABLES | (SEARCH_TABLES if url.get_backend_name() == "sqlite" else set())
    tables, version = asyncio.run(schema())
    assert tables == expected
    assert version == HEAD

    command.downgrade(alembic_config(db_url), "base")
    assert asyncio.run(schema()) == ({"alembic_version"}, None)
    upgrade(db_url)
    assert asyncio.run(schema()) == (expected, HEAD)


async def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path):
    database = Database.from_url(sqlite_url(tmp_path / "a" / "b.sqlite3"))
    try:
        async with database.engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 1  # NORMAL
            assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 30_000
    finally:
        await database.dispose()
    assert (tmp_path / "a").is_dir()


def test_command_line_upgrades_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert migrate_main([]) == 2
    assert "usage" in capsys.readouterr().err
    assert migrate_main([sqlite_url(tmp_path / "cli" / "tsur.sqlite3")]) == 0
    assert (tmp_path / "cli" / "tsur.sqlite3").stat().st_size > 0
