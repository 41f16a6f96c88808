"""``tsur run``: one process serving the web chat and portal, the configured bots and the
outbox workers, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import Any

from aiohttp import web

from config.bootstrap import System
from config.settings import Settings

log = logging.getLogger("tsur")


def build_web_app(system: System, web_messenger: Any) -> web.Application:
    """The web chat at ``/chat`` and the staff portal at ``/portal`` on one application."""
    from bots.web import create_web_app
    from portal import setup_portal

    settings = system.settings
    app = create_web_app(system.engine, uploads_dir=settings.uploads_dir,
                         messenger=web_messenger,
                         max_upload_bytes=settings.max_upload_mb * 1024 * 1024)
    setup_portal(app, database=system.database, catalogue=system.catalogue,
                 clock=system.clock, calendar=system.calendar)
    return app


async def serve(settings: Settings, role: str = "all") -> None:
    """Migrate, start what ``role`` runs (:mod:`config.roles`; ``all``: everything in one
    process) and wait for SIGINT/SIGTERM; then stop it all in order."""
    from config.roles import banner, start_role

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    running = await start_role(role, settings, stop)
    # What start-up made (modules, the catalogue, the NLU model, clients) lives as long as
    # the process: out of the collector's sight, a full collection no longer walks it
    # again (bench/intake.py: the bot's collections took ~0.5 ms per update, then ~0.1)
    gc.freeze()
    for line in banner(running):
        print(line, flush=True)
    failed = ""
    try:
        failed = await running.after_start()
        if not failed:
            await stop.wait()
    finally:
        log.info("stopping")
        await running.close()
        print("tsur stopped.", flush=True)
    if failed:
        raise SystemExit(failed)
