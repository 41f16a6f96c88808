"""``tsur run``: one process serving the web chat and portal, the configured bots and the
outbox workers, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

from config.bootstrap import System, bootstrap
from config.settings import Settings
from notifications.delivery import DeliveryWorker

log = logging.getLogger("tsur")
STOP_SECONDS = 10.0


class Tasks:
    """Background tasks started by ``serve``; stopped together, each given a grace period."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[Any]] = []

    def start(self, name: str, work: Coroutine[Any, Any, Any]) -> None:
        self._tasks.append(asyncio.create_task(work, name=name))

    async def join(self, timeout: float = STOP_SECONDS) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for task in pending:
            log.warning("%s did not stop in %.0f s; cancelling it", task.get_name(), timeout)
            task.cancel()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for task, result in zip(self._tasks, results, strict=True):
            if isinstance(result, Exception):
                log.error("%s ended with %r", task.get_name(), result)


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


def start_channels(system: System, tasks: Tasks, stop: asyncio.Event) -> list[str]:
    """Start each chat channel whose token is set; returns their names."""
    settings = system.settings
    started = []
    if settings.telegram_token:
        from bots.telegram import serve_telegram  # aiogram is slow to import: only if used

        tasks.start("telegram", serve_telegram(
            system.engine, token=settings.telegram_token,
            api_url=settings.telegram_api_url or None, stop=stop))
        started.append("Telegram")
    if settings.vk_token:
        from bots.vk import serve_vk

        tasks.start("vk", serve_vk(
            system.engine, token=settings.vk_token, group_id=settings.vk_group_id,
            api_url=settings.vk_api_url or None, data_dir=settings.data_dir, stop=stop))
        started.append("VK")
    return started


def start_outbox_workers(system: System, tasks: Tasks) -> list[DeliveryWorker]:
    """Start an outbox worker for each chat channel whose token is set; returns them.

    Each worker holds its own platform client (a Bot, an API), apart from the polling
    bot's: polling owns and closes its own session, and a long poll must never hold a
    status notice back. The client is closed when its worker has stopped.
    """
    settings = system.settings
    workers: list[DeliveryWorker] = []
    if settings.telegram_token:
        from bots.telegram import make_bot
        from bots.telegram.outbox import TelegramOutboxMessenger

        bot = make_bot(settings.telegram_token, settings.telegram_api_url or None)
        worker = system.delivery_worker("telegram", TelegramOutboxMessenger(bot))
        tasks.start("outbox:telegram", _run_then_close(worker, bot.session.close))
        workers.append(worker)
    if settings.vk_token:
        from bots.vk import make_api
        from bots.vk.outbox import VkOutboxMessenger

        api = make_api(settings.vk_token, settings.vk_api_url or None)
        worker = system.delivery_worker("vk", VkOutboxMessenger(api))
        tasks.start("outbox:vk", _run_then_close(worker, api.http_client.close))
        workers.append(worker)
    return workers


async def _run_then_close(worker: DeliveryWorker,
                          close: Callable[[], Awaitable[Any]]) -> None:
    try:
        await worker.run()
    finally:
        await close()


async def serve(settings: Settings) -> None:
    """Migrate, start everything configured and wait for SIGINT/SIGTERM."""
    from bots.web import WebMessenger
    from domain.storage.migrate import upgrade_async
    from notifications.messenger import OnlineOnlyMessenger

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
    channels = start_channels(system, tasks, stop)
    runner = web.AppRunner(build_web_app(system, web_messenger), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _print_banner(settings, channels)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        stop.set()
        for worker in workers:
            worker.stop()  # lets the message in flight finish, gives the rest back
        await tasks.join()
        await runner.cleanup()
        await system.close()
        print("tsur stopped.", flush=True)


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
