"""A fake VK API and Bots Long Poll server on 127.0.0.1 for end-to-end tests.

Point the real vkbottle ``API`` at it by overriding the instance attribute that
``API.request`` prefixes to every method name::

    async with FakeVK(group_id=1) as vk:
        api = API(vk.token)
        api.API_URL = vk.api_url          # "http://127.0.0.1:PORT/method/"
        bot = Bot(api=api)                # its BotPolling asks groups.getLongPollServer,
                                          # which answers with the fake's own /lp URL
        ...
        await vk.wait_polling()           # events injected earlier are never delivered
        vk.send_text(42, "Привет")

Every request is recorded in ``vk.calls``; ``deny``, ``fail_next`` and ``fault_rate``
script failures. Opt-in ``vk.flood = FloodGate(20)`` (``tests/fakes/flood.py``) enforces
the community's 20 requests per second: a request over it gets error 6, counted in
``vk.flood.refused``.

``random_id``: by default a repeated ``random_id`` gets the first request's answer,
whatever its peers. :meth:`FakeVK.dedup_per_peer` switches to what VK documents: the
``random_id`` is unique per sender (the community) over the whole message history, and
keeps a message from being sent again *to the same recipient* (the bots guide) — so a
``peer_ids`` request repeating a ``random_id`` sends nothing to the peers that already got
a message with it and sends to the others; repeats are counted in ``vk.repeats_dropped``.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from tests.fakes.flood import FloodGate, repeats
from tests.fakes.telegram import Signal
from tests.fakes.vk_inject import VkInjector
from tests.fakes.vk_keyboard import VkError
from tests.fakes.vk_methods import METHODS, _reachable, send_request
from tests.fakes.vk_state import VkCall, VkSentMessage, VkWorld

T = TypeVar("T")
DEFAULT_TOKEN = "vk1.a.fake-community-token-for-tsur-tests"
_NOT_FAULTED = {"groups.getById", "groups.getLongPollServer"}
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8")


@dataclass
class VkFault:
    """A VK error ``code``; or an HTTP ``status`` (5xx) with an HTML body; or
    ``drop`` (connection closed). ``after_apply``: the method runs, the reply is lost."""

    code: int = 6
    status: int = 200
    drop: bool = False
    after_apply: bool = False


class FakeVK(VkInjector):
    def __init__(self, group_id: int = 1, *, token: str = DEFAULT_TOKEN, seed: int = 0) -> None:
        self.group_id = group_id
        self.token = token
        self.world = VkWorld(group_id)
        self.calls: list[VkCall] = []
        self.fault_rate = 0.0
        self.fault_methods: set[str] | None = None  # None: all but the polling set-up
        self.fault_kinds = [VkFault(6), VkFault(10), VkFault(status=502), VkFault(drop=True)]
        self.random = random.Random(seed)
        self.flood: FloodGate | None = None  # None: no rate limits enforced
        self.base_url = ""
        self.api_url = ""
        self.polls_in_flight = 0
        self.methods = dict(METHODS)
        self.repeats_dropped: list[tuple[int, int]] = []  # (peer, random_id) not sent again
        self._release = 0
        self._faults: list[tuple[str | None, VkFault]] = []
        self._signal = Signal()
        self._closing = False
        self._runner: web.AppRunner | None = None

    # --- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> FakeVK:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/method/{name}", self._method)
        app.router.add_route("*", "/lp/{group_id}", self._long_poll)
        app.router.add_post("/upload/photo", self._upload)
        app.router.add_get("/photos/{name}", self._photo)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        self.api_url = f"{self.base_url}/method/"
        self.world.base_url = self.base_url
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        self._signal.notify()
        if self._runner is not None:
            await self._runner.cleanup()

    def _changed(self) -> None:
        self._signal.notify()

    # --- scenario controls ---------------------------------------------------------------
    def fail_next(
        self,
        method: str | None = None,
        code: int | str = 6,
        *,
        after_apply: bool = False,
        times: int = 1,
    ) -> None:
        """Fail the next call(s) of ``method`` (any method if None).

        ``code``: a VK error code (6 too many requests, 9 flood control, 10 internal...),
        an HTTP status >= 500 (HTML reply, like a VK front end), or ``"drop"``.
        """
        if code == "drop":
            fault = VkFault(drop=True, after_apply=after_apply)
        elif int(code) >= 500:
            fault = VkFault(status=int(code), after_apply=after_apply)
        else:
            fault = VkFault(int(code), after_apply=after_apply)
        self._faults.extend((method, fault) for _ in range(times))

    def dedup_per_peer(self) -> None:
        """Drop a repeated ``random_id`` per recipient, as VK documents (module doc)."""
        first: dict[tuple[int, int], VkSentMessage] = {}

        def send(world: VkWorld, params: dict[str, Any]) -> Any:
            return _send_per_peer(world, params, first, self.repeats_dropped)

        self.methods["messages.send"] = send

    def release_polls(self) -> None:
        """Answer every held long-poll request now (with no updates), e.g. to stop a bot."""
        self._release += 1
        self._changed()

    def _take_fault(self, method: str) -> VkFault | None:
        for i, (key, fault) in enumerate(self._faults):
            if key in (None, method):
                del self._faults[i]
                return fault
        eligible = (
            method in self.fault_methods
            if self.fault_methods is not None
            else method not in _NOT_FAULTED
        )
        if self.fault_rate and eligible and self.random.random() < self.fault_rate:
            return self.random.choice(self.fault_kinds)
        return None

    # --- HTTP ----------------------------------------------------------------------------
    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            post = await request.post()
            params.update({k: v for k, v in post.items() if isinstance(v, str)})
        return params

    def _error(self, name: str, params: dict[str, Any], error: VkError) -> web.Response:
        shown = [{"key": "method", "value": name}, {"key": "oauth", "value": "1"}]
        shown += [{"key": k, "value": str(v)} for k, v in params.items() if k != "access_token"]
        body = {
            "error": {"error_code": error.code, "error_msg": error.message, "request_params": shown}
        }
        return web.json_response(body)

    async def _method(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        params = await self._params(request)
        call = VkCall(
            name, {k: v for k, v in params.items() if k != "access_token"}, time.monotonic()
        )
        self.calls.append(call)
        try:
            if self.flood is not None and not self.flood.admit(["community"], call.time):
                raise VkError(6)  # too many requests per second: all methods count
            fault = self._take_fault(name)
            if fault and not fault.after_apply:
                return self._fail(request, call, name, params, fault)
            if params.get("access_token") != self.token:
                raise VkError(5)
            if not params.get("v"):
                raise VkError(8)
            if name not in self.methods:
                raise VkError(3)
            result = self.methods[name](self.world, params)
            if fault:
                return self._fail(request, call, name, params, fault)
            return web.json_response({"response": result})
        except VkError as error:
            call.error_code = error.code
            return self._error(name, params, error)
        finally:
            self._changed()

    def _fail(self, request, call: VkCall, name: str, params: dict, fault: VkFault):
        if fault.drop:
            call.status = 0
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        if fault.status >= 500:
            call.status = fault.status
            html = f"<html><body><h1>{fault.status}</h1></body></html>"
            return web.Response(status=fault.status, text=html, content_type="text/html")
        call.error_code = fault.code
        return self._error(name, params, VkError(fault.code))

    async def _long_poll(self, request: web.Request) -> web.StreamResponse:
        params = await self._params(request)
        world = self.world
        if params.get("key") not in world.keys:
            return web.json_response({"failed": 2})
        try:
            ts = int(params.get("ts", ""))
        except ValueError:
            return web.json_response({"failed": 1, "ts": world.next_ts})
        wait = min(max(int(params.get("wait") or 25), 0), 90)
        release = self._release
        deadline = time.monotonic() + wait
        self.polls_in_flight += 1
        self._changed()
        try:
            while True:
                start = max(ts, world.first_ts) - world.first_ts
                ready = world.events[start:]
                remaining = deadline - time.monotonic()
                if ready or remaining <= 0 or self._closing or release != self._release:
                    return web.json_response({"ts": str(world.next_ts), "updates": ready})
                await self._signal.wait(remaining)
        finally:
            self.polls_in_flight -= 1
            self._changed()

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        post = await request.post()
        field = post.get("photo") or post.get("file1")
        data = field.file.read() if isinstance(field, web.FileField) else b""
        if not data.startswith(_IMAGE_MAGIC):
            return web.json_response({"server": 1, "photo": "[]", "hash": ""})
        token, hash_ = secrets.token_hex(8), secrets.token_hex(16)
        self.world.uploads[token] = data
        photo = json.dumps([{"upload": token, "hash": hash_}])
        return web.json_response({"server": 1, "photo": photo, "hash": hash_})

    async def _photo(self, request: web.Request) -> web.StreamResponse:
        key = "photo" + request.match_info["name"].removesuffix(".jpg")
        photo = self.world.photos.get(key)
        if photo is None:
            raise web.HTTPNotFound()
        return web.Response(body=photo.data, content_type="image/jpeg")

    # --- recording -----------------------------------------------------------------------
    def duplicates(self) -> int:
        """Messages that repeat an earlier one to the same peer (same text)."""
        return repeats((m.peer_id, m.text) for m in self.world.sent)

    def calls_of(self, method: str) -> list[VkCall]:
        return [c for c in self.calls if c.method == method]

    def sent_to(self, peer_id: int) -> list[VkSentMessage]:
        """Messages the community sent to ``peer_id``, oldest first."""
        return [m for m in self.world.sent if m.peer_id == peer_id]

    @property
    def event_answers(self) -> dict[str, dict[str, Any]]:
        return self.world.event_answers

    async def wait_polling(self, timeout: float = 5) -> None:
        """Wait until a long-poll request is being held (so new events will be delivered)."""
        await self.wait_for(lambda: self.polls_in_flight > 0, timeout)

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5) -> T:
        """Wait until ``predicate()`` is truthy and return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                recent = [(c.method, c.error_code, c.status) for c in self.calls[-10:]]
                raise AssertionError(f"condition not met in {timeout}s; last calls: {recent}")
            await self._signal.wait(remaining)

    async def wait_for_message(
        self, peer_id: int, contains: str | None = None, *, count: int = 1, timeout: float = 5
    ) -> VkSentMessage:
        """Wait for the ``count``-th community message to ``peer_id`` containing ``contains``."""

        def matching() -> VkSentMessage | None:
            found = [m for m in self.sent_to(peer_id) if contains is None or contains in m.text]
            return found[count - 1] if len(found) >= count else None

        return await self.wait_for(matching, timeout)


def _send_per_peer(world: VkWorld, params: dict[str, Any],
                   first: dict[tuple[int, int], VkSentMessage],
                   dropped: list[tuple[int, int]]) -> Any:
    """``messages.send`` with ``random_id`` checked per (peer, random_id); see the module
    doc. The same validation as :func:`tests.fakes.vk_methods.messages_send`."""
    req = send_request(world, params)
    random_id, peers, many = req.random_id, req.peers, req.many
    text, keyboard, attachments = req.text, req.keyboard, req.attachments
    results = []
    for peer in peers:
        earlier = first.get((peer, random_id)) if random_id else None
        if earlier is not None:
            dropped.append((peer, random_id))
            results.append({"peer_id": peer, "message_id": earlier.message_id,
                            "conversation_message_id": earlier.conversation_message_id})
            continue
        error = _reachable(world, peer)
        if error and not many:
            raise error
        if error:
            results.append({"peer_id": peer,
                            "error": {"code": error.code, "description": error.message}})
            continue
        message_id, cmid = world.next_ids(peer)
        sent = VkSentMessage(peer, message_id, cmid, random_id, text, keyboard, attachments,
                             params.get("payload"))
        world.sent.append(sent)
        if random_id:
            first[peer, random_id] = sent
        results.append({"peer_id": peer, "message_id": message_id,
                        "conversation_message_id": cmid})
    return results if many else results[0]["message_id"]
