"""``tsur run`` and ``tsur migrate``."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from config.settings import Settings


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="apply migrations and start the web chat, the portal "
                                     "and every channel whose token is set")
    run.add_argument("--role", choices=("all", "web", "worker", "scheduler"), default="all",
                     help="all (default) | web: chat, portal, webhooks | worker: outbox "
                          "delivery | scheduler: jobs and polling, one active at a time")
    run.set_defaults(handler=_run)
    migrate = sub.add_parser("migrate", help="apply database migrations and exit")
    migrate.set_defaults(handler=_migrate)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from config.runtime import serve

    asyncio.run(serve(settings, role=args.role))
    return 0


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from domain.storage.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.sqlalchemy_url)
    print("migrations applied", flush=True)
    return 0
