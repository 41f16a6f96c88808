"""Fixtures for the SQL integration tests: one SQLite file and one real PostgreSQL server.

The PostgreSQL server is started once per session (see :mod:`tests.fakes.postgres`); each
test gets a fresh, empty database on it. Without PostgreSQL binaries the PostgreSQL half is
skipped, unless ``TSUR_REQUIRE_POSTGRES`` is set (CI sets it), in which case it fails.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from domain.storage import Database, sqlite_url, upgrade_async
from tests.fakes.postgres import PostgresServer, PostgresUnavailable, find_bindir


def _postgres_required() -> bool:
    return os.environ.get("TSUR_REQUIRE_POSTGRES", "").strip().lower() not in (
        "", "0", "false", "no")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if find_bindir() is None:
        reason = ("PostgreSQL server binaries not found (install the `postgresql` package); "
                  "set TSUR_REQUIRE_POSTGRES=1 to make this an error")
        if _postgres_required():
            pytest.fail(f"TSUR_REQUIRE_POSTGRES is set but {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as exc:  # pragma: no cover - raced with find_bindir
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """``postgresql+asyncpg://`` URL of a new, empty database, private to the test."""
    return postgres_server.create_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty database of each kind; the SQLite file's directory does not exist yet."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path_factory.mktemp("sqlite") / "var" / "tsur.sqlite3")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A migrated database, disposed of after the test."""
    await upgrade_async(db_url)
    database = Database.from_url(db_url)
    yield database
    await database.dispose()
