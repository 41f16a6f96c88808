"""The shared fake Telegram and VK, failing a fifth of their calls.

``fault_rate`` of the shared fakes picks among their fault kinds (429 / VK 6 and 9,
500/502 pages, VK 10, dropped connections); these add a dropped connection *after* the
method took effect (the reply is what gets lost) and timeouts: a call that hangs longer
than the client waits, and then takes effect anyway. Everything is seeded.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from typing import Any

from aiohttp import web

from tests.fakes import telegram_checks as check
from tests.fakes.telegram import FakeTelegram, Fault
from tests.fakes.vk import FakeVK, VkFault

RATE = float(os.environ.get("TSUR_FAULT_RATE", "0.2"))
HANG_SHARE = 1 / 6  # of the faults, how many are timeouts
_TG_SETUP = {"getupdates", "getme", "deletewebhook", "getfile", "setwebhook"}
_VK_SETUP = {"groups.getById", "groups.getLongPollServer"}


class FaultyTelegram(FakeTelegram):
    def __init__(self, seed: int, *, rate: float = RATE, hang_seconds: float = 1.0) -> None:
        super().__init__(seed=seed)
        self.fault_kinds = [Fault(429, 1), Fault(500), Fault(502), Fault(0),
                            Fault(0, after_apply=True)]
        self.fault_rate = rate * (1 - HANG_SHARE)
        self.hang_rate = rate * HANG_SHARE
        self.hang_seconds = hang_seconds
        self.lost_replies: Counter[str] = Counter()  # method → calls applied, reply lost
        # (chat, text or caption as shown) → messages put into a chat whose reply was lost:
        # the only sends a bot may repeat without knowing (Telegram has no idempotency key)
        self.lost_messages: Counter[tuple[int, str]] = Counter()
        self.faults: Counter[str] = Counter()  # kind → how many were injected

    def _take_fault(self, method: str) -> Fault | None:
        fault = super()._take_fault(method)
        if fault is not None:
            self.faults["dropped after apply" if fault.after_apply else
                        "dropped" if fault.status == 0 else str(fault.status)] += 1
            if fault.after_apply:
                # called by _handle right after it recorded this call, with no await between
                call = self.calls[-1]
                assert call.method.lower() == method, (call.method, method)
                self._reply_lost(method, call.params)
        return fault

    def _reply_lost(self, method: str, params: dict[str, Any]) -> None:
        self.lost_replies[method] += 1
        if method not in ("sendmessage", "sendphoto"):
            return
        try:
            chat = int(params["chat_id"])
            text = (check.message_text(params)[0] if method == "sendmessage"
                    else check.caption(params)[0]) or ""
        except (check.ApiError, KeyError, TypeError, ValueError):
            return  # refused: nothing is shown
        self.lost_messages[chat, text.strip()] += 1

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"].lower()
        if method in _TG_SETUP or self.random.random() >= self.hang_rate:
            return await super()._handle(request)
        # the whole request arrived; the answer is late (the fields only: a file part is
        # left unread for the method)
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            params.update(body if isinstance(body, dict) else {})
        else:
            params.update({k: v for k, v in (await request.post()).items()
                           if isinstance(v, str)})
        self.faults["timeout"] += 1
        await asyncio.sleep(self.hang_seconds)
        answer = await super()._handle(request)
        if answer.status == 200:  # it took effect; the client has stopped waiting for this
            self._reply_lost(method, params)
        return answer


class FaultyVK(FakeVK):
    def __init__(self, group_id: int, seed: int, *, rate: float = RATE,
                 hang_seconds: float = 1.0) -> None:
        super().__init__(group_id, seed=seed)
        self.dedup_per_peer()  # a repeated random_id is dropped per recipient, as VK does
        self.fault_kinds = [VkFault(6), VkFault(9), VkFault(10), VkFault(status=502),
                            VkFault(drop=True), VkFault(drop=True, after_apply=True)]
        self.fault_rate = rate * (1 - HANG_SHARE)
        self.hang_rate = rate * HANG_SHARE
        self.hang_seconds = hang_seconds
        self.lost_replies: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.polls: list[float] = []

    def _take_fault(self, method: str) -> VkFault | None:
        fault = super()._take_fault(method)
        if fault is not None:
            self.faults["dropped after apply" if fault.after_apply and fault.drop else
                        "dropped" if fault.drop else
                        str(fault.status) if fault.status >= 500 else
                        f"error {fault.code}"] += 1
            if fault.after_apply:
                self.lost_replies[method] += 1
        return fault

    async def _method(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["name"] not in _VK_SETUP and self.random.random() < self.hang_rate:
            await request.read()
            self.faults["timeout"] += 1
            self.lost_replies[request.match_info["name"]] += 1
            await asyncio.sleep(self.hang_seconds)
        return await super()._method(request)

    async def _long_poll(self, request: web.Request) -> Any:
        self.polls.append(time.monotonic())
        return await super()._long_poll(request)
