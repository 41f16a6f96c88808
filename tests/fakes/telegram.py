"""A fake Telegram Bot API server on 127.0.0.1 for end-to-end tests.

Point the real aiogram ``Bot`` at it::

    async with FakeTelegram() as tg:
        session = AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url))
        bot = Bot(tg.token, session=session)
        tg.send_text(42, "/start")                 # a citizen writes
        reply = await tg.wait_for_message(42)      # what the bot answered

It validates parameters like the real API (see ``telegram_checks``), records every
request in ``tg.calls`` and can be told to fail (``block``, ``fail_next``,
``fault_rate``). Injected updates are served by ``getUpdates`` long polling; a test that
POSTs them to a webhook hands the webhook's answer to ``tg.webhook_answered`` (a method
call in it is made, as Telegram does). Opt-in ``tg.flood = FloodGate(30, 1)``
(``tests/fakes/flood.py``) enforces the Bot API's rate limits: a message over them gets
429 ``retry_after``, counted in ``tg.flood.refused``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from tests.fakes import telegram_checks as check
from tests.fakes.flood import FloodGate, repeats
from tests.fakes.telegram_checks import ApiError
from tests.fakes.telegram_inject import TelegramInjector
from tests.fakes.telegram_methods import METHODS
from tests.fakes.telegram_state import Call, SentMessage, TelegramWorld

T = TypeVar("T")
DEFAULT_TOKEN = "123456789:AAFakeTokenForTsurTests_0123456789ab"
_NOT_FAULTED = {"getupdates", "getme", "deletewebhook", "getfile"}
_DEFAULT_UPDATES_EXCLUDED = {"chat_member", "message_reaction", "message_reaction_count"}


@dataclass
class Fault:
    """An injected failure. ``status`` 0 drops the connection without a reply;
    ``after_apply`` performs the method first (the reply is what gets lost)."""

    status: int = 429
    retry_after: int = 1
    description: str | None = None
    after_apply: bool = False

    def error(self) -> ApiError:
        if self.status == 429:
            return ApiError(
                429,
                self.description or f"Too Many Requests: retry after {self.retry_after}",
                {"retry_after": self.retry_after},
            )
        reason = {500: "Internal Server Error", 502: "Bad Gateway"}.get(self.status, "Error")
        return ApiError(self.status, self.description or reason)


def _sends_message(method: str) -> bool:
    """Whether a Bot API method puts a message into a chat (what flood control counts)."""
    return (method.startswith("send") and method != "sendchataction") or method in (
        "copymessage", "forwardmessage")


class Signal:
    """Wakes every waiter when something changes (a call, an update, an edit)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), max(timeout, 0))


class FakeTelegram(TelegramInjector):
    """The fake server; the update-injection helpers come from ``TelegramInjector``."""

    def __init__(
        self, token: str = DEFAULT_TOKEN, *, username: str = "tsur_test_bot", seed: int = 0
    ) -> None:
        self.token = token
        self.world = TelegramWorld(int(token.split(":")[0]), username)
        self.calls: list[Call] = []
        self.fault_rate = 0.0
        self.fault_methods: set[str] | None = None  # None: every method that sends or edits
        self.fault_kinds: list[Fault] = [Fault(429, 1), Fault(500), Fault(0)]
        self.random = random.Random(seed)
        self.flood: FloodGate | None = None  # None: no rate limits enforced
        self.base_url = ""
        self._faults: list[tuple[str | None, Fault]] = []
        self._signal = Signal()
        self._poller = 0
        self._closing = False
        self._runner: web.AppRunner | None = None

    # --- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> FakeTelegram:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        self._signal.notify()
        if self._runner is not None:
            await self._runner.cleanup()

    def _changed(self) -> None:
        self._signal.notify()

    # --- scenario controls ---------------------------------------------------------------
    def block(self, chat_id: int) -> None:
        """The user blocked the bot: sends to ``chat_id`` get 403."""
        self.world.blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self.world.blocked.discard(chat_id)

    def fail_next(
        self,
        method: str | None = None,
        status: int = 429,
        *,
        retry_after: int = 1,
        drop: bool = False,
        after_apply: bool = False,
        description: str | None = None,
        times: int = 1,
    ) -> None:
        """Fail the next ``times`` calls of ``method`` (any method but getUpdates if None).

        ``drop=True`` closes the connection without a reply; with ``after_apply=True``
        the method takes effect first, so only the reply is lost.
        """
        fault = Fault(0 if drop else status, retry_after, description, after_apply)
        key = method.lower() if method else None
        self._faults.extend((key, fault) for _ in range(times))

    def _take_fault(self, method: str) -> Fault | None:
        for i, (key, fault) in enumerate(self._faults):
            if key == method or (key is None and method != "getupdates"):
                del self._faults[i]
                return fault
        eligible = (
            method in {m.lower() for m in self.fault_methods}
            if self.fault_methods is not None
            else method not in _NOT_FAULTED
        )
        if self.fault_rate and eligible and self.random.random() < self.fault_rate:
            return self.random.choice(self.fault_kinds)
        return None

    # --- HTTP ----------------------------------------------------------------------------
    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        elif request.can_read_body:
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                else:
                    params[key] = value
        return params, files

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        params, files = await self._params(request)
        call = Call(method, params, time.monotonic(), files)
        self.calls.append(call)
        self._changed()
        key = method.lower()
        if self.flood is not None and _sends_message(key) and not self.flood.admit(
                [str(params.get("chat_id"))], call.time):
            call.status = 429
            return web.json_response(Fault(429, 1).error().body(), status=429)
        fault = self._take_fault(key)
        try:
            if fault and not fault.after_apply:
                raise fault.error()
            if key == "getupdates":
                result = await self._get_updates(params)
            elif key in METHODS:
                result = METHODS[key](self.world, params, files)
            else:
                raise ApiError(404, "Not Found")
            if fault:
                raise fault.error()
        except ApiError as error:
            call.status = error.code if not (fault and fault.status == 0) else 0
            self._changed()
            if call.status == 0:
                return self._drop(request)
            return web.json_response(error.body(), status=error.code)
        finally:
            self._changed()
        return web.json_response({"ok": True, "result": result})

    def webhook_answered(self, status: int, body: str, content_type: str = "") -> None:
        """What Telegram does with a webhook's answer (the caller POSTed an update to the
        bot's webhook and got this): a 2xx JSON object naming a ``method`` is that call,
        made as if requested (recorded in ``calls``, as ``via_webhook``). Its result goes
        nowhere, as at Telegram, so a failing call is only recorded with its status."""
        if not 200 <= status < 300 or not content_type.startswith("application/json"):
            return
        try:
            params = json.loads(body)
        except ValueError:
            return
        if not isinstance(params, dict) or not isinstance(params.get("method"), str):
            return
        method = params.pop("method")
        call = Call(method, params, time.monotonic(), via_webhook=True)
        self.calls.append(call)
        try:
            handler = METHODS.get(method.lower())
            if handler is None or method.lower() == "getupdates":
                raise ApiError(404, "Not Found")
            handler(self.world, params, {})
        except ApiError as error:
            call.status = error.code
        finally:
            self._changed()

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)  # never reaches the client

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        world = self.world
        if world.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = check.as_int(params, "offset") or 0
        limit = min(max(check.as_int(params, "limit") or 100, 1), 100)
        timeout = check.as_int(params, "timeout") or 0
        if params.get("allowed_updates") not in (None, ""):
            world.allowed_updates = check.as_json(params["allowed_updates"], "allowed_updates")
        if offset > 0:
            world.updates = [u for u in world.updates if u["update_id"] >= offset]
        elif offset < 0:
            world.updates = world.updates[offset:]
        self._poller += 1
        me = self._poller
        self._changed()  # wakes (and so terminates) an older getUpdates
        deadline = time.monotonic() + timeout
        while True:
            ready = [u for u in world.updates if self._allowed(u)][:limit]
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0 or self._closing:
                return ready
            await self._signal.wait(remaining)
            if self._poller != me:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )

    def _allowed(self, update: dict[str, Any]) -> bool:
        kind = next(k for k in update if k != "update_id")
        if self.world.allowed_updates:
            return kind in self.world.allowed_updates
        return kind not in _DEFAULT_UPDATES_EXCLUDED

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        path = request.match_info["path"]
        for stored in self.world.files.values():
            if stored.file_path == path:
                return web.Response(body=stored.data, content_type="application/octet-stream")
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    # --- recording -----------------------------------------------------------------------
    def duplicates(self) -> int:
        """Messages that repeat an earlier one to the same chat (same text or caption)."""
        return repeats((m.chat_id, m.text or m.caption) for m in self.world.sent)

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def sent_to(self, chat_id: int, *, include_deleted: bool = False) -> list[SentMessage]:
        """Messages the bot sent to ``chat_id``, oldest first (edits applied in place)."""
        return [
            m
            for m in self.world.sent
            if m.chat_id == chat_id and (include_deleted or not m.deleted)
        ]

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates the bot has not confirmed yet (by a higher getUpdates offset)."""
        return list(self.world.updates)

    @property
    def callback_answers(self) -> dict[str, dict[str, Any]]:
        return self.world.callback_answers

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5) -> T:
        """Wait until ``predicate()`` is truthy and return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                recent = [(c.method, c.status) for c in self.calls[-10:]]
                raise AssertionError(f"condition not met in {timeout}s; last calls: {recent}")
            await self._signal.wait(remaining)

    async def wait_for_message(
        self,
        chat_id: int,
        contains: str | None = None,
        *,
        predicate: Callable[[SentMessage], bool] | None = None,
        count: int = 1,
        timeout: float = 5,
    ) -> SentMessage:
        """Wait for the ``count``-th bot message to ``chat_id`` matching; return it."""

        def matching() -> SentMessage | None:
            found = [
                m
                for m in self.sent_to(chat_id)
                if (contains is None or contains in (m.text or m.caption or ""))
                and (predicate is None or predicate(m))
            ]
            return found[count - 1] if len(found) >= count else None

        return await self.wait_for(matching, timeout)
