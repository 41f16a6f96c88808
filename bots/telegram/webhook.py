"""Telegram webhook mode: an aiohttp route that feeds updates to the polling dispatcher.

When ``TSUR_TELEGRAM_WEBHOOK_URL`` is set, Telegram POSTs each update (JSON) to that URL
instead of the bot long-polling ``getUpdates``. The route:

* checks ``X-Telegram-Bot-Api-Secret-Token`` against the ``secret_token`` given to
  ``setWebhook``, in constant time; anything else gets 403 and nothing is handled;
* answers 400 to a body that is not a JSON ``Update`` (Telegram never sends one; a
  prober does);
* feeds the update to the same aiogram :class:`~aiogram.Dispatcher` that polling uses
  (:func:`bots.telegram.channel.build_dispatcher` plus whatever routers were included);
* answers only once the update is *settled* (:mod:`bots.receipt`): handled, or
  persisted by the dialogue core with its replies under way for a few seconds. Telegram
  repeats every update not answered with 2xx, so a process killed before that point gets
  the update again (in this or another worker) and nothing the citizen sent is lost; the
  engine recognises a repeat of what it had already persisted and does not record it
  twice (its fingerprints — time stamp and content of a message; a button press is
  checked against the current step instead — are stored with the conversation, whose
  row PostgreSQL locks while a worker handles it, so this holds across several worker
  processes too: ``tests/e2e/test_telegram_webhook_replicas.py``);
* answers with a Bot API call a handler handed it (:mod:`bots.telegram.webhook_reply`:
  the answer to a button press), which Telegram then makes: one request fewer;
* answers 200 even when a handler raises: the error is logged, and Telegram, which
  repeats every update not answered with 2xx, does not retry it forever; but 503 when
  the handler was cancelled (a shutdown), so that the update comes again;
* answers a repeat of an ``update_id`` it has seen recently without handling it again,
  but only once the first delivery has settled (a repeat that comes while the first is
  in flight must not confirm it early). This memory is per process and only saves work:
  the engine's stored fingerprints are what keeps a repeat from being recorded twice
  when it reaches another worker.

With ``background=False`` the answer waits for the whole handler, replies included.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.methods import DeleteWebhook, SetWebhook
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from bots.dedup import RecentIds
from bots.receipt import REPLY_GRACE, Receipt, receipt_for

from .channel import ALLOWED_UPDATES, DialogueEngine, build_dispatcher, make_bot
from .messenger import TelegramMessenger
from .webhook_reply import opened_reply

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what setWebhook accepts
DEFAULT_PATH = "/telegram/webhook"
RECENT_UPDATES = 10_000
STOP_GRACE = 10.0  # seconds to let updates in flight finish on shutdown


def webhook_secret(token: str, configured: str = "") -> str:
    """The ``secret_token`` for ``setWebhook``: ``configured`` if given (checked against
    Telegram's rules), else one derived from the bot token — the same in every process of
    a deployment, and unknown to anyone who does not know the token."""
    if configured:
        if not SECRET_PATTERN.match(configured):
            raise ValueError("the Telegram webhook secret must be 1-256 characters "
                             "A-Z, a-z, 0-9, _ and -")
        return configured
    return hmac.new(token.encode(), b"tsur-telegram-webhook", hashlib.sha256).hexdigest()


def webhook_path(url: str, configured: str = "") -> str:
    """The local route: ``configured``, else the path of the public ``url``."""
    path = configured or urlsplit(url).path or DEFAULT_PATH
    return path if path.startswith("/") else "/" + path


class TelegramWebhook:
    """The request handler; one per bot. Holds the dispatcher and the bot, never
    subclasses them."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, *, secret: str,
                 background: bool = True, recent: int = RECENT_UPDATES) -> None:
        if not SECRET_PATTERN.match(secret):
            raise ValueError("the webhook secret must be 1-256 characters A-Za-z0-9_-")
        self.dispatcher = dispatcher
        self.bot = bot
        self.background = background
        self._secret = secret.encode()
        self._recent = RecentIds(recent)
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight: dict[int, Receipt] = {}

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            log.warning("telegram webhook: a request from %s without the right secret",
                        request.remote)
            return web.Response(status=403, text="forbidden")
        try:
            raw = json.loads(await request.read())
            if not isinstance(raw, dict):
                raise ValueError("not an object")
            update = Update.model_validate(raw, context={"bot": self.bot})
        except (ValueError, ValidationError, RecursionError) as exc:  # JSONDecodeError too
            log.warning("telegram webhook: a malformed update: %s", str(exc)[:200])
            return web.Response(status=400, text="malformed update")
        uid = update.update_id
        if not self._recent.add(uid):
            first = self._inflight.get(uid)
            if first is not None:
                await first.settled.wait()
                if first.abandoned:
                    return _unavailable()
            log.info("telegram webhook: update %s again; skipped", uid)
            return web.Response(text="ok")
        receipt = Receipt(grace=REPLY_GRACE if self.background else None)
        self._inflight[uid] = receipt
        with opened_reply() as reply:  # the handler's task sees it (its context is a copy)
            task = receipt_for(self._feed(update), receipt)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            await receipt.settled.wait()
            if receipt.abandoned:
                self._recent.discard(uid)
                reply.close()  # the update comes again, and its call with it
                return _unavailable()
        finally:
            self._inflight.pop(uid, None)
        return reply.response()

    async def _feed(self, update: Update) -> None:
        try:
            await self.dispatcher.feed_update(self.bot, update)
        except Exception:  # answered 200 anyway: a retry would fail the same way
            log.exception("telegram webhook: handling update %s failed", update.update_id)

    async def drain(self, timeout: float = STOP_GRACE) -> None:
        """Wait (up to ``timeout``) for updates in flight."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


def setup_telegram_webhook(app: web.Application, dispatcher: Dispatcher, bot: Bot, *,
                           path: str, secret: str, background: bool = True
                           ) -> TelegramWebhook:
    """Register ``POST path`` on ``app``, feeding updates to ``dispatcher`` with ``bot``.

    Updates in flight get :data:`STOP_GRACE` seconds when the application shuts down.
    Setting the webhook at Telegram is :func:`set_webhook`'s job (or
    :func:`setup_telegram_webhook_mode`'s, which does everything).
    """
    hook = TelegramWebhook(dispatcher, bot, secret=secret, background=background)
    app.router.add_post(path, hook.handle)

    async def drain(_: web.Application) -> None:
        await hook.drain()

    app.on_shutdown.append(drain)
    return hook


async def set_webhook(bot: Bot, url: str, secret: str, *,
                      allowed_updates: list[str] | None = None,
                      drop_pending_updates: bool = False,
                      max_connections: int | None = None) -> None:
    """Tell Telegram to POST updates to ``url`` with ``secret`` in the secret header.

    Flood waits and transient failures are retried; a refusal (a URL Telegram does not
    accept) raises :class:`aiogram.exceptions.TelegramBadRequest`.
    """
    await TelegramMessenger(bot).call(SetWebhook(
        url=url, secret_token=secret,
        allowed_updates=ALLOWED_UPDATES if allowed_updates is None else allowed_updates,
        drop_pending_updates=drop_pending_updates, max_connections=max_connections))


async def delete_webhook(bot: Bot) -> None:
    """Back to ``getUpdates``; pending updates are kept."""
    await TelegramMessenger(bot).call(DeleteWebhook(drop_pending_updates=False))


class TelegramWebhookMode:
    """Webhook mode of one bot: the route (already on the application), the bot it
    answers with, and the two moments that talk to Telegram — :meth:`start` and
    :meth:`close`."""

    def __init__(self, hook: TelegramWebhook, *, url: str, secret: str,
                 drop_pending_updates: bool, delete_on_stop: bool) -> None:
        self.hook = hook
        self.url = url
        self._secret = secret
        self._drop_pending_updates = drop_pending_updates
        self._delete_on_stop = delete_on_stop
        self._started = False
        self._closed = False

    @property
    def bot(self) -> Bot:
        return self.hook.bot

    @property
    def dispatcher(self) -> Dispatcher:
        return self.hook.dispatcher

    async def start(self) -> None:
        """Set the webhook. Call it once the server listens: Telegram starts POSTing at
        once, and an update it cannot deliver waits for its next, later retry."""
        await set_webhook(self.bot, self.url, self._secret,
                          drop_pending_updates=self._drop_pending_updates)
        self._started = True
        await self.dispatcher.emit_startup(bot=self.bot, bots=[self.bot],
                                           dispatcher=self.dispatcher)
        log.info("telegram: webhook set to %s", self.url)

    async def close(self) -> None:
        """Delete the webhook if so configured, and close the bot's session. Idempotent;
        run by the application's cleanup (after updates in flight have drained)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._started:
                await self.dispatcher.emit_shutdown(bot=self.bot, bots=[self.bot],
                                                    dispatcher=self.dispatcher)
            if self._delete_on_stop:
                try:
                    await delete_webhook(self.bot)
                except Exception as exc:  # the next start sets it again anyway
                    log.warning("telegram: could not delete the webhook: %r", exc)
        finally:
            await self.bot.session.close()


def setup_telegram_webhook_mode(app: web.Application, engine: DialogueEngine, *, token: str,
                                api_url: str | None, url: str, secret: str = "",
                                path: str = "", drop_pending_updates: bool = False,
                                delete_on_stop: bool = False,
                                dispatcher: Dispatcher | None = None,
                                background: bool = True) -> TelegramWebhookMode:
    """Everything webhook mode needs on ``app``; call ``await mode.start()`` once the
    server listens.

    Registers the route (``path``, default the path of ``url``) with ``secret`` (default:
    derived from the token, see :func:`webhook_secret`). :meth:`TelegramWebhookMode.start`
    sets the webhook to ``url``. On the application's shutdown updates in flight finish;
    on its cleanup the webhook is deleted only if ``delete_on_stop`` (with several
    processes behind one URL, one stopping must not switch the others off) and the bot's
    session is closed.
    """
    secret = webhook_secret(token, secret)
    dp = dispatcher or build_dispatcher(engine)
    bot = make_bot(token, api_url)
    hook = setup_telegram_webhook(app, dp, bot, path=webhook_path(url, path), secret=secret,
                                  background=background)
    mode = TelegramWebhookMode(hook, url=url, secret=secret,
                               drop_pending_updates=drop_pending_updates,
                               delete_on_stop=delete_on_stop)

    async def close(_: web.Application) -> None:
        await mode.close()

    app.on_cleanup.append(close)  # after on_shutdown, where the updates in flight drain
    return mode


def _unavailable() -> web.Response:
    """The handler was cancelled (shutting down): a 5xx makes the platform repeat the
    update, to this or another worker."""
    return web.Response(status=503, text="shutting down")
