"""The shared fakes, recording a little more for the crash suite: when updates were handed
out and confirmed, when a bot long-polled VK."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_checks import ApiError
from tests.fakes.vk import FakeVK


class RecordingTelegram(FakeTelegram):
    """Remembers when each update was handed out by ``getUpdates`` and when a later
    ``getUpdates`` confirmed it (times of the requests, which name the asking life)."""

    def __init__(self) -> None:
        super().__init__()
        self.handed: defaultdict[int, list[float]] = defaultdict(list)
        self.confirmed: dict[int, float] = {}

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        asked = time.monotonic()
        offset = int(params.get("offset") or 0)
        for update in self.world.updates:
            if offset > 0 and update["update_id"] < offset:
                self.confirmed.setdefault(update["update_id"], asked)
        result = await super()._get_updates(params)
        for update in result:
            self.handed[update["update_id"]].append(asked)
        return result


class RecordingVK(FakeVK):
    """Remembers when each long-poll request came (to know a restarted bot is polling)."""

    def __init__(self, group_id: int) -> None:
        super().__init__(group_id)
        self.polls: list[float] = []

    async def _long_poll(self, request: Any) -> Any:
        self.polls.append(time.monotonic())
        return await super()._long_poll(request)


class HoldingTelegram(RecordingTelegram):
    """Holds back the ``getUpdates`` that would confirm update ``hold_from`` and later
    ones, as if the process died before asking: Telegram then hands them out again."""

    def __init__(self) -> None:
        super().__init__()
        self.hold_from: int | None = None
        self.released = asyncio.Event()

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        if self.hold_from is not None and offset > self.hold_from:
            await self.released.wait()
            raise ApiError(409, "Conflict: terminated by other getUpdates request")
        return await super()._get_updates(params)
