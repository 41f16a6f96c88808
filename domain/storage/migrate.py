"""Schema migrations, configured in code: no alembic.ini is needed at runtime.

``python -m domain.storage URL`` upgrades a database to the newest revision.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the packaged migrations and at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    # Passed as an attribute, not an option: ConfigParser would choke on a "%" in a password.
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the database at ``url`` up to ``revision``; safe to run again.

    Synchronous (for CLIs); it runs its own event loop, so inside a running loop use
    :func:`upgrade_async`. For SQLite the parent directory of the file is created.
    """
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "heads") -> None:
    """:func:`upgrade` in a worker thread, callable from inside a running event loop."""
    await asyncio.to_thread(upgrade, url, revision)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m domain.storage DATABASE_URL", file=sys.stderr)
        return 2
    upgrade(args[0])
    return 0
