"""The security tests use the integration suite's databases: one SQLite file and a real
PostgreSQL (skipped without its binaries unless ``TSUR_REQUIRE_POSTGRES`` is set)."""

from tests.integration.conftest import db, db_url, postgres_server, postgres_url  # noqa: F401
