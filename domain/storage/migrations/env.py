"""Alembic environment: runs migrations over the async engine via ``run_sync``.

The URL comes from ``config.attributes["url"]`` (set by :func:`domain.storage.migrate.upgrade`)
or, for developers using an ini file, from ``sqlalchemy.url``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

import domain.storage.backoffice_orm  # noqa: F401  (registers complaint_topics)
import domain.storage.broadcasts_orm  # noqa: F401  (registers the broadcasts table)
import domain.storage.portal_orm  # noqa: F401  (registers the portal tables)
import domain.storage.report_daily_orm  # noqa: F401  (registers the report aggregates)
import domain.storage.report_indexes  # noqa: F401  (registers the reporting indexes)
import domain.storage.surveys_orm  # noqa: F401  (registers the surveys table)
from domain.storage.orm import Base
from domain.storage.uow import create_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the migrations")
    return str(url)


def _include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Leave out of the comparison the search index of migration 0009, which has no model:
    SQLite's FTS5 table (and its shadow tables) and PostgreSQL's expression index."""
    if type_ == "table" and name and name.startswith("complaints_fts"):
        return False
    return not (type_ == "index" and name == "ix_complaints_search")


def _configure(**kwargs: Any) -> None:
    context.configure(target_metadata=target_metadata, render_as_batch=True,
                      compare_type=True, include_name=_include_name, **kwargs)


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
