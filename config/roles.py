"""Process roles of ``tsur run --role``: what each starts, over the pieces runtime has.

* ``web`` — the web chat, the portal, the Telegram webhook and VK Callback API routes, and
  the web chat's outbox worker (a chat page's socket lives in the process that serves it).
  Any number, behind a load balancer (or sharing one port: ``TSUR_REUSE_PORT``).
* ``worker`` — the outbox workers of Telegram, VK and the back office. Any number:
  ``FOR UPDATE SKIP LOCKED`` splits the rows, ``TSUR_REDIS_URL`` shares the rate limits.
* ``scheduler`` — the singleton duties: the APScheduler jobs and long polling (Telegram
  and VK each allow one poller; in webhook/Callback mode the web processes take their
  updates instead). Any number, exactly one active: the leader lease (:mod:`config.leader`).
* ``all`` — the three in one process (the default, and SQLite's natural shape).

Every role migrates at start-up under a lock, so processes started together never
upgrade the schema at once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web

from config.bootstrap import System, bootstrap
from config.leader import Leader, StopDuties, exclusive, lease_for
from config.settings import Settings
from config.tasks import Tasks
from notifications.delivery import DeliveryWorker

if TYPE_CHECKING:
    from notifications.scheduler import Scheduler

log = logging.getLogger("tsur")
ROLES = ("all", "web", "worker", "scheduler")
PARTS = {"all": ("web", "worker", "scheduler"), "web": ("web",), "worker": ("worker",),
         "scheduler": ("scheduler",)}


def channel_views(settings: Settings) -> tuple[Settings, Settings]:
    """``(web, polling)``: the settings as the web processes and as the leader see them.

    A channel in webhook/Callback mode is served by the web processes (its token is
    blanked for the leader); a polled one by the leader alone (blanked for the web). The
    outbox workers see the real settings: they deliver on every channel with a token.
    """
    hook_tg, hook_vk = bool(settings.telegram_webhook_url), bool(settings.vk_callback_secret)
    web_view = replace(settings, telegram_token=settings.telegram_token if hook_tg else "",
                       vk_token=settings.vk_token if hook_vk else "")
    polling_view = replace(settings, telegram_token="" if hook_tg else settings.telegram_token,
                           vk_token="" if hook_vk else settings.vk_token)
    return web_view, polling_view


async def prepare(settings: Settings) -> tuple[System, Any]:
    """Migrate (one process at a time) and bootstrap. With ``TSUR_REDIS_URL`` the system's
    rate limiters are shared through Redis; returns the system and the Redis client."""
    from domain.storage.migrate import upgrade_async

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with exclusive(settings.sqlalchemy_url, settings.data_dir, "migrate"):
        await upgrade_async(settings.sqlalchemy_url)
    system = bootstrap(settings)
    redis = None
    if settings.redis_url:
        from notifications.ratelimit_redis import RedisLimiters, connect

        redis = connect(settings.redis_url)
        system.limiters = RedisLimiters(redis)
    return system, redis


@dataclass
class Running:
    """What one process started; :meth:`close` stops it all, in order."""

    role: str
    system: System
    stop: asyncio.Event
    tasks: Tasks = field(default_factory=Tasks)
    redis: Any = None
    runner: web.AppRunner | None = None
    workers: list[DeliveryWorker] = field(default_factory=list)
    leader: Leader | None = None
    web_channels: list[str] = field(default_factory=list)
    polled_channels: list[str] = field(default_factory=list)
    after_listen: list[Any] = field(default_factory=list)

    async def after_start(self) -> str:
        """Run what must wait until the server listens (setting the Telegram webhook);
        returns why a channel could not start, or ``""``."""
        for start in self.after_listen:
            try:
                await start()
            except Exception as exc:  # e.g. Telegram refuses the webhook URL
                return f"tsur: a channel could not start: {exc}"
        return ""

    async def close(self) -> None:
        self.stop.set()  # ends polling and the leader loop, which stops the scheduler
        for worker in self.workers:
            worker.stop()  # lets the message in flight finish, gives the rest back
        await self.tasks.join()
        if self.runner is not None:
            await self.runner.cleanup()
        await self.system.close()
        if self.redis is not None:
            await self.redis.aclose()


async def start_web(running: Running) -> None:
    """The web chat, the portal and the webhook routes, listening on host:port."""
    from bots.web import WebMessenger
    from config.channels import start_channels
    from config.runtime import build_web_app
    from notifications.messenger import OnlineOnlyMessenger

    system, settings = running.system, running.system.settings
    web_messenger = WebMessenger()
    # status notices wait in the outbox until the citizen's chat page is open
    worker = system.delivery_worker("web", OnlineOnlyMessenger(web_messenger.send))
    running.tasks.start("outbox:web", worker.run())
    running.workers.append(worker)
    app = build_web_app(system, web_messenger)
    web_view, _ = channel_views(settings)
    hooks = start_channels(replace(system, settings=web_view), running.tasks, running.stop,
                           app)
    running.web_channels, running.after_listen = hooks.names, hooks.after_listen
    running.runner = web.AppRunner(app, handle_signals=False)
    await running.runner.setup()
    await web.TCPSite(running.runner, settings.host, settings.port,
                      reuse_port=settings.reuse_port or None).start()


def start_worker(running: Running) -> None:
    """The outbox workers of every chat channel with a token."""
    from config.channels import start_outbox_workers

    running.workers.extend(start_outbox_workers(running.system, running.tasks))


async def start_scheduler_role(running: Running) -> None:
    """The singleton duties under the leader lease; tries once now (so the banner can
    tell), then keeps leading or standing by in the background."""
    settings = running.system.settings
    lease = lease_for(settings.leader_lock, database_url=settings.sqlalchemy_url,
                      data_dir=settings.data_dir, redis=running.redis,
                      check_seconds=settings.leader_check_seconds)
    running.leader = Leader(lease, lambda: _start_duties(running),
                            check_seconds=settings.leader_check_seconds)
    await running.leader.try_lead()
    running.tasks.start("leader", running.leader.run(running.stop))


def build_jobs(system: System) -> Scheduler:
    """The scheduler with every job (deadlines, surveys, broadcasts, the ratings'
    aggregates), not yet started."""
    from domain.storage.report_refresh import REFRESH_EVERY, refresh_reports
    from notifications.broadcasts import BroadcastService
    from notifications.scheduler import build_scheduler

    settings = system.settings
    scheduler = build_scheduler(
        system.database.uow, system.calendar, system.clock,  # type: ignore[arg-type]
        deadline_every=timedelta(minutes=settings.deadline_check_minutes),
        survey_every=timedelta(seconds=settings.survey_check_seconds),
        near_ratio=settings.deadline_near_ratio, operator_language=settings.language)
    broadcasts = BroadcastService(system.database, catalogue=system.catalogue,
                                  clock=system.clock)
    scheduler.every("broadcasts", timedelta(seconds=settings.broadcast_check_seconds),
                    broadcasts.run_due)
    scheduler.every("reports", REFRESH_EVERY, partial(
        refresh_reports, system.database.session_factory, system.calendar.tz))
    return scheduler


async def _start_duties(running: Running) -> StopDuties:
    from config.channels import start_channels

    system, settings = running.system, running.system.settings
    stop, tasks = asyncio.Event(), Tasks()  # this term's: a lost lease ends them, not all
    scheduler = build_jobs(system)
    scheduler.start()

    async def stop_duties() -> None:
        stop.set()
        await scheduler.stop()
        await tasks.join()

    try:
        _, polling_view = channel_views(settings)
        # no routes are mounted: every channel in webhook mode is blanked in this view
        polled = start_channels(replace(system, settings=polling_view), tasks, stop,
                                web.Application())
    except BaseException:
        await stop_duties()
        raise
    running.polled_channels = polled.names
    return stop_duties


async def start_role(role: str, settings: Settings, stop: asyncio.Event) -> Running:
    """Migrate, bootstrap and start what ``role`` runs."""
    if role not in PARTS:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    system, redis = await prepare(settings)
    running = Running(role, system, stop, redis=redis)
    try:
        if "worker" in PARTS[role]:
            start_worker(running)
        if "scheduler" in PARTS[role]:
            await start_scheduler_role(running)
        if "web" in PARTS[role]:
            await start_web(running)
    except BaseException:
        await running.close()
        raise
    return running


def banner(running: Running) -> list[str]:
    """What ``tsur run`` prints once started (the web lines as before for ``all``)."""
    settings = running.system.settings
    role = "" if running.role == "all" else f" as {running.role}"
    lines = [f"tsur is running on {settings.sqlalchemy_url.split('://')[0]}{role}"]
    if running.runner is not None:
        base = f"http://{settings.host}:{settings.port}"
        lines += [f"  web chat: {base}/chat",
                  f"  portal:   {base}/portal  (first admin: `.venv/bin/tsur user add admin "
                  "admin`)"]
    if running.role == "worker":
        outbox = [w.channel for w in running.workers]
        lines.append("  outbox:   " + (", ".join(outbox) if outbox else "nothing to deliver "
                                       "(set TSUR_TELEGRAM_TOKEN / TSUR_VK_TOKEN)"))
    if running.leader is not None:
        state = ("active" if running.leader.leading else "standby: another process leads")
        lines.append(f"  scheduler: {state} ({running.leader.lease.kind})")
    channels = ", ".join(running.web_channels + running.polled_channels)
    if running.runner is not None:
        lines.append("  channels: " + (channels or "web chat only (set TSUR_TELEGRAM_TOKEN "
                                                   "/ TSUR_VK_TOKEN for bots)"))
    elif running.leader is not None:
        idle = ("nothing (no token, or webhook mode)" if running.leader.leading
                else "whatever is configured, once this process becomes active")
        lines.append("  polling:  " + (channels or idle))
    lines.append("Press Ctrl-C to stop.")
    return lines
