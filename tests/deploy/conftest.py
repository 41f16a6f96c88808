"""Fixtures of the deployment tests: a real Redis server (and the PostgreSQL ones of the
integration tests).

The Redis server is started once per session (see :mod:`tests.fakes.redis`). Without a
``redis-server`` binary its tests are skipped, unless ``TSUR_REQUIRE_REDIS`` is set (CI
sets it), in which case they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fakes.redis import RedisServer, find_redis_server
from tests.integration.conftest import postgres_server, postgres_url  # noqa: F401


def _required(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if find_redis_server() is None:
        reason = ("redis-server not found (install the `redis-server` package); "
                  "set TSUR_REQUIRE_REDIS=1 to make this an error")
        if _required("TSUR_REQUIRE_REDIS"):
            pytest.fail(f"TSUR_REQUIRE_REDIS is set but {reason}", pytrace=False)
        pytest.skip(reason)
    server = RedisServer.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """``redis://`` URL of an empty logical database, private to the test."""
    return redis_server.next_url()
