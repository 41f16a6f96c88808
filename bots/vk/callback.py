"""VK Callback API mode: an aiohttp route VK POSTs community events to.

Used instead of Bots Long Poll when ``TSUR_VK_CALLBACK_SECRET`` and
``TSUR_VK_CONFIRMATION`` are set (the community's "Callback API" settings: the secret
key, and the string the server must return to confirm its address). The route:

* answers 400 to a body that is not a JSON event object;
* checks the event's ``secret`` (in constant time) and, if configured, its ``group_id``;
  anything else gets 403 and nothing happens;
* answers the ``confirmation`` event with the confirmation string (``text/plain``);
* answers every other accepted event ``ok`` only once it is *settled*
  (:mod:`bots.receipt`: handled, or persisted by the dialogue core with its replies under
  way for a few seconds). VK repeats an event not answered ``ok``, so a process killed
  before that point gets it again (here or in another worker) and nothing the citizen
  sent is lost; the engine recognises a repeat of what it had already persisted and
  does not record it twice — its fingerprints are stored with the conversation, whose
  row PostgreSQL locks while a worker handles it, so this holds across several worker
  processes (a button press has none and is checked against the current step). A handler
  cancelled by a shutdown gets 503, so that VK sends the event again;
* answers a repeat of an ``event_id`` it has seen recently without handling it again,
  but only once the first delivery has settled. This memory is per process and only
  saves work: with several worker processes behind one URL a repeat may reach another
  worker, where the engine's stored fingerprints keep it from being recorded twice;
* hands ``message_new`` and ``message_event`` to the very handlers long polling uses
  (:class:`bots.vk.channel.VkChannel`, through vkbottle's router, so the event becomes
  the same ``Message``/``MessageEvent`` objects); other event types are acknowledged and
  ignored.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

from aiohttp import web
from vkbottle import Bot

from bots.dedup import RecentIds
from bots.receipt import REPLY_GRACE, Receipt, receipt_for

from .channel import STOP_GRACE, DialogueEngine, VkChannel, make_api
from .messenger import VkMessenger

log = logging.getLogger(__name__)

HANDLED = frozenset({"message_new", "message_event"})
RECENT_EVENTS = 10_000
DEFAULT_PATH = "/vk/callback"


class VkCallback:
    """The request handler; one per community. Events go through a vkbottle
    :class:`~vkbottle.Bot` that never polls: it only routes them to ``channel``."""

    def __init__(self, channel: VkChannel, *, secret: str, confirmation: str,
                 group_id: int | None = None, recent: int = RECENT_EVENTS) -> None:
        if not secret or not confirmation:
            raise ValueError("VK Callback API needs both the secret key and the "
                             "confirmation string")
        self.channel = channel
        self.group_id = group_id or None
        self.confirmation = confirmation
        self._secret = secret.encode()
        self._recent = RecentIds(recent)
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight: dict[str, Receipt] = {}
        self.bot = Bot(api=channel.messenger.api)
        channel.register(self.bot)

    async def handle(self, request: web.Request) -> web.Response:
        try:
            event = json.loads(await request.read())
        except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep
            return _bad("not JSON")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return _bad("not a Callback API event")
        given = event.pop("secret", "")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), self._secret):
            log.warning("vk callback: an event from %s without the right secret",
                        request.remote)
            return web.Response(status=403, text="forbidden")
        if self.group_id is not None and event.get("group_id") != self.group_id:
            log.warning("vk callback: an event for community %r", event.get("group_id"))
            return web.Response(status=403, text="forbidden")
        kind = event["type"]
        if kind == "confirmation":
            return web.Response(text=self.confirmation)
        if kind in HANDLED and not isinstance(event.get("object"), dict):
            return _bad("an event without an object")
        event_id = event.get("event_id")
        if isinstance(event_id, str) and event_id and not self._recent.add(event_id):
            first = self._inflight.get(event_id)
            if first is not None:
                await first.settled.wait()
                if first.abandoned:
                    return _unavailable()
            log.info("vk callback: event %s again; skipped", event_id)
            return web.Response(text="ok")
        if kind in HANDLED:
            receipt = Receipt(grace=REPLY_GRACE)
            key = event_id if isinstance(event_id, str) and event_id else None
            if key is not None:
                self._inflight[key] = receipt
            task = receipt_for(self._route(event), receipt)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            try:
                await receipt.settled.wait()
                if receipt.abandoned:
                    if key is not None:
                        self._recent.discard(key)
                    return _unavailable()
            finally:
                if key is not None:
                    self._inflight.pop(key, None)
        return web.Response(text="ok")

    async def _route(self, event: dict[str, Any]) -> None:
        try:
            await self.bot.process_event(event)
        except Exception:  # vkbottle logs handler errors itself; this is the last guard
            log.exception("vk callback: handling event %s failed", event.get("event_id"))

    async def drain(self, timeout: float = STOP_GRACE) -> None:
        """Wait (up to ``timeout``) for events in flight and the replies they started."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        await self.channel.drain(timeout)


def _bad(reason: str) -> web.Response:
    log.warning("vk callback: a malformed request (%s)", reason)
    return web.Response(status=400, text="malformed event")


def setup_vk_callback(app: web.Application, channel: VkChannel, *, path: str, secret: str,
                      confirmation: str, group_id: int | None = None) -> VkCallback:
    """Register ``POST path`` on ``app``, handing events to ``channel``.

    Events in flight get :data:`~bots.vk.channel.STOP_GRACE` seconds when the application
    shuts down. The channel's API session is the caller's to close (or use
    :func:`setup_vk_callback_mode`, which owns it).
    """
    hook = VkCallback(channel, secret=secret, confirmation=confirmation, group_id=group_id)
    app.router.add_post(path, hook.handle)

    async def drain(_: web.Application) -> None:
        await hook.drain()

    app.on_shutdown.append(drain)
    return hook


def setup_vk_callback_mode(app: web.Application, engine: DialogueEngine, *, token: str,
                           api_url: str | None, secret: str, confirmation: str,
                           group_id: int | None = None, path: str = DEFAULT_PATH
                           ) -> VkCallback:
    """Everything Callback API mode needs on ``app``: an API, the channel over a
    :class:`~bots.vk.messenger.VkMessenger`, the route; the API's session is closed when
    the application is cleaned up (after the events in flight have drained)."""
    api = make_api(token, api_url)
    channel = VkChannel(engine, VkMessenger(api))
    hook = setup_vk_callback(app, channel, path=path, secret=secret,
                             confirmation=confirmation, group_id=group_id)

    async def close(_: web.Application) -> None:
        await api.http_client.close()

    app.on_cleanup.append(close)
    return hook


def _unavailable() -> web.Response:
    """The handler was cancelled (shutting down): a 5xx makes the platform repeat the
    event, to this or another worker."""
    return web.Response(status=503, text="shutting down")
