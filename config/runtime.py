"""``tsur run``: one process serving the web chat and portal, the configured bots and the
outbox workers, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from typing import Any

from aiohttp import web

from config.bootstrap import System, bootstrap
from config.channels import start_channels, start_outbox_workers
from config.settings import Settings
from config.tasks import Tasks

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


async def serve(settings: Settings) -> None:
    """Migrate, start everything configured and wait for SIGINT/SIGTERM."""
    from bots.web import WebMessenger
    from domain.storage.migrate import upgrade_async
    from notifications.broadcasts import BroadcastService
    from notifications.messenger import OnlineOnlyMessenger
    from notifications.scheduler import build_scheduler

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.sqlalchemy_url)
    system = bootstrap(settings)
    stop = asyncio.Event()
    tasks = Tasks()
    web_messenger = WebMessenger()
    # status notices wait in the outbox until the citizen's chat page is open
    web_worker = system.delivery_worker("web", OnlineOnlyMessenger(web_messenger.send))
    tasks.start("outbox:web", web_worker.run())
    workers = [web_worker, *start_outbox_workers(system, tasks)]
    app = build_web_app(system, web_messenger)
    channels = start_channels(system, tasks, stop, app)
    scheduler = build_scheduler(
        system.database.uow, system.calendar, system.clock,  # type: ignore[arg-type]
        deadline_every=timedelta(minutes=settings.deadline_check_minutes),
        survey_every=timedelta(seconds=settings.survey_check_seconds),
        near_ratio=settings.deadline_near_ratio, operator_language=settings.language)
    broadcasts = BroadcastService(system.database, catalogue=system.catalogue,
                                  clock=system.clock)
    scheduler.every("broadcasts", timedelta(seconds=settings.broadcast_check_seconds),
                    broadcasts.run_due)
    scheduler.start()
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _print_banner(settings, channels.names)
    failed = ""
    try:
        for start in channels.after_listen:
            try:
                await start()
            except Exception as exc:  # e.g. Telegram refuses the webhook URL
                failed = f"tsur: a channel could not start: {exc}"
                break
        else:
            await stop.wait()
    finally:
        log.info("stopping")
        stop.set()
        await scheduler.stop()
        for worker in workers:
            worker.stop()  # lets the message in flight finish, gives the rest back
        await tasks.join()
        await runner.cleanup()
        await system.close()
        print("tsur stopped.", flush=True)
    if failed:
        raise SystemExit(failed)


def _print_banner(settings: Settings, channels: list[str]) -> None:
    base = f"http://{settings.host}:{settings.port}"
    print(f"tsur is running on {settings.sqlalchemy_url.split('://')[0]}", flush=True)
    print(f"  web chat: {base}/chat", flush=True)
    print(f"  portal:   {base}/portal  (first admin: `.venv/bin/tsur user add admin admin`)",
          flush=True)
    print("  channels: " + (", ".join(channels) if channels else
                            "web chat only (set TSUR_TELEGRAM_TOKEN / TSUR_VK_TOKEN for bots)"),
          flush=True)
    print("Press Ctrl-C to stop.", flush=True)
