"""Starting the chat channels configured by tokens, and the outbox worker of each."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from config.bootstrap import System
from config.settings import Settings
from config.tasks import Tasks
from notifications.delivery import Backoff, DeliveryWorker, send_timeout
from notifications.ratelimit import DEFAULT_LIMITS, RateLimit, SendWindow, paced


class Started:
    """What :func:`start_channels` started: names for the banner, and what must run once
    the web server listens (setting the Telegram webhook)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.after_listen: list[Callable[[], Awaitable[Any]]] = []


def start_channels(system: System, tasks: Tasks, stop: asyncio.Event,
                   app: web.Application) -> Started:
    """Start each chat channel whose token is set: Telegram by webhook (routes on ``app``)
    or long polling, VK by Callback API (routes on ``app``) or Bots Long Poll."""
    started = Started()
    if system.settings.telegram_token:
        _start_telegram(system, tasks, stop, app, started)
    if system.settings.vk_token:
        _start_vk(system, tasks, stop, app, started)
    return started


def _start_telegram(system: System, tasks: Tasks, stop: asyncio.Event, app: web.Application,
                    started: Started) -> None:
    # aiogram is slow to import: only when Telegram is used
    from bots.telegram import build_dispatcher, serve_telegram
    from bots.telegram.keyboards import SqlReplyKeyboards

    settings = system.settings
    dispatcher = build_dispatcher(system.engine,
                                  keyboards=SqlReplyKeyboards())
    if settings.telegram_backoffice_chat_id:
        from bots.backoffice.photos import PhotoRelay
        from bots.backoffice.router import build_backoffice_router

        dispatcher.include_router(build_backoffice_router(
            system.database, system.catalogue, system.clock,
            settings.telegram_backoffice_chat_id, settings.operator_roles(),
            PhotoRelay(uploads_dir=settings.uploads_dir, vk_token=settings.vk_token,
                       vk_api_url=settings.vk_api_url or None)))
    if settings.telegram_webhook_url:
        from bots.telegram.webhook import setup_telegram_webhook_mode

        mode = setup_telegram_webhook_mode(
            app, system.engine, token=settings.telegram_token,
            api_url=settings.telegram_api_url or None, url=settings.telegram_webhook_url,
            secret=settings.telegram_webhook_secret, path=settings.telegram_webhook_path,
            delete_on_stop=settings.telegram_webhook_delete_on_stop, dispatcher=dispatcher)
        started.after_listen.append(mode.start)  # set the webhook once the server listens
        started.names.append("Telegram (webhook)")
    else:
        tasks.start("telegram", serve_telegram(
            system.engine, token=settings.telegram_token,
            api_url=settings.telegram_api_url or None, stop=stop, dispatcher=dispatcher))
        started.names.append("Telegram")
    if settings.telegram_backoffice_chat_id:
        started.names.append("Telegram back office")


def _start_vk(system: System, tasks: Tasks, stop: asyncio.Event, app: web.Application,
              started: Started) -> None:
    settings = system.settings
    if settings.vk_callback_secret:
        from bots.vk.callback import setup_vk_callback_mode

        setup_vk_callback_mode(
            app, system.engine, token=settings.vk_token, api_url=settings.vk_api_url or None,
            secret=settings.vk_callback_secret, confirmation=settings.vk_confirmation,
            group_id=settings.vk_group_id, path=settings.vk_callback_path)
        started.names.append("VK (Callback API)")
        return
    from bots.vk import serve_vk

    tasks.start("vk", serve_vk(
        system.engine, token=settings.vk_token, group_id=settings.vk_group_id,
        api_url=settings.vk_api_url or None, data_dir=settings.data_dir, stop=stop))
    started.names.append("VK")


def _send_timeout(settings: Settings) -> float:
    """How long an outbox worker's client waits for one request: within the margin of its
    claim's lease (:func:`notifications.delivery.send_timeout`)."""
    return send_timeout(timedelta(seconds=settings.outbox_lease_seconds))


def outbox_worker(system: System, channel: str, messenger: Any,
                  limit: RateLimit) -> DeliveryWorker:
    """A delivery worker for ``channel`` with the ``TSUR_OUTBOX_*`` settings, paced a
    little under ``limit`` (see :func:`notifications.ratelimit.paced`), and never over it
    as the platform counts (:class:`~notifications.ratelimit.SendWindow`, this process)."""
    settings = system.settings
    return DeliveryWorker(
        system.database.uow, channel, messenger,
        limiter=system.limiters(channel, paced(limit)), clock=system.clock,
        send_window=SendWindow(limit),
        backoff=Backoff(base=settings.outbox_retry_seconds,
                        cap=settings.outbox_retry_max_seconds),
        max_attempts=settings.outbox_max_attempts, batch_size=settings.outbox_batch,
        lease=timedelta(seconds=settings.outbox_lease_seconds))


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

        bot = make_bot(settings.telegram_token, settings.telegram_api_url or None,
                       timeout=_send_timeout(settings))
        messenger = TelegramOutboxMessenger(bot, paid_broadcast=(
            TelegramOutboxMessenger.paid_broadcast_for(settings.telegram_rate)))
        worker = outbox_worker(system, "telegram", messenger, RateLimit(
            per_second=settings.telegram_rate,
            per_chat_per_second=DEFAULT_LIMITS["telegram"].per_chat_per_second))
        tasks.start("outbox:telegram", _run_then_close(worker, bot.session.close))
        workers.append(worker)
        if settings.telegram_backoffice_chat_id:
            workers.append(_start_backoffice_worker(system, tasks))
    if settings.vk_token:
        from bots.vk import make_api
        from bots.vk.outbox import VkOutboxMessenger

        api = make_api(settings.vk_token, settings.vk_api_url or None,
                       timeout=_send_timeout(settings))
        worker = outbox_worker(system, "vk", VkOutboxMessenger(api),
                               RateLimit(per_second=settings.vk_rate))
        tasks.start("outbox:vk", _run_then_close(worker, api.http_client.close))
        workers.append(worker)
    return workers


async def _run_then_close(worker: DeliveryWorker,
                          close: Callable[[], Awaitable[Any]]) -> None:
    try:
        await worker.run()
    finally:
        await close()




def _start_backoffice_worker(system: System, tasks: Tasks) -> DeliveryWorker:
    """Cards, citizens' follow-ups, escalations and survey alerts into the operators'
    forum group. One overall pace: every row names a complaint's topic, not the group."""
    from bots.backoffice.messenger import BackofficeDeliveryWorker, BackofficeMessenger
    from bots.telegram import make_bot
    from notifications.ratelimit import RateLimit

    settings = system.settings
    bot = make_bot(settings.telegram_token, settings.telegram_api_url or None,
                   timeout=_send_timeout(settings))
    worker = BackofficeDeliveryWorker(
        system.database.uow,
        BackofficeMessenger(bot, system.database, system.catalogue,
                            settings.telegram_backoffice_chat_id, clock=system.clock),
        # Telegram: ~20 messages a minute into one group; shared by every worker process
        limiter=system.limiters("backoffice", RateLimit(per_second=0.3, burst=5)),
        clock=system.clock)
    tasks.start("outbox:backoffice", _run_then_close(worker, bot.session.close))
    return worker
