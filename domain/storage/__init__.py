"""SQL storage: SQLAlchemy 2 (async) repositories, unit of work and Alembic migrations.

Works on SQLite (``sqlite+aiosqlite:///path``) and PostgreSQL (``postgresql+asyncpg://...``)::

    await upgrade_async(url)
    db = Database.from_url(url)
    async with db.uow() as uow:
        ...
        await uow.commit()
    await db.dispose()
"""

from domain.storage.migrate import upgrade, upgrade_async
from domain.storage.repositories import (
    SqlCitizenRepository,
    SqlComplaintRepository,
    SqlConversationStore,
)
from domain.storage.uow import Database, SqlUnitOfWork, create_engine, sqlite_url

__all__ = [
    "Database",
    "SqlCitizenRepository",
    "SqlComplaintRepository",
    "SqlConversationStore",
    "SqlUnitOfWork",
    "create_engine",
    "sqlite_url",
    "upgrade",
    "upgrade_async",
]
