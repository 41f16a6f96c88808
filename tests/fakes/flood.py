"""Opt-in flood control for the fake Telegram and VK: the platforms' rate limits, enforced.

Off by default (``FakeTelegram.flood`` and ``FakeVK.flood`` are ``None``), so no existing
test changes. Turned on, a :class:`FloodGate` admits a sending request only if it keeps
every limit over a sliding window (``window`` seconds, one by default — the most literal
reading of "30 messages per second"): at most ``per_second × window`` requests in all, and
at most ``per_chat_per_second × window`` to one chat. A request over a limit is refused —
Telegram answers 429 with ``retry_after``, VK error 6 — and counted in ``refused``; refused
requests do not count towards the limits.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Iterable


class SlidingWindow:
    """At most ``limit`` events in any ``seconds``-long window (open at its start)."""

    def __init__(self, limit: int, seconds: float = 1.0) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.seconds = seconds
        self.times: deque[float] = deque()

    def _trim(self, now: float) -> None:
        while self.times and self.times[0] <= now - self.seconds:
            self.times.popleft()

    def allows(self, now: float) -> bool:
        self._trim(now)
        return len(self.times) < self.limit

    def add(self, now: float) -> None:
        self.times.append(now)

    def idle(self, now: float) -> bool:
        self._trim(now)
        return not self.times


class FloodGate:
    """One platform's limits; ``admit(chats, now)`` is ``False`` (and counted) when a
    request to ``chats`` (one chat, or a VK ``peer_ids`` list) would exceed one of them."""

    def __init__(self, per_second: float, per_chat_per_second: float | None = None, *,
                 window: float = 1.0) -> None:
        self.per_second = per_second
        self.per_chat_per_second = per_chat_per_second
        self.window = window
        self.overall = SlidingWindow(max(1, math.floor(per_second * window)), window)
        self.chats: dict[Hashable, SlidingWindow] = {}
        self.admitted = 0
        self.refused = 0

    def admit(self, chats: Iterable[Hashable], now: float) -> bool:
        chats = list(chats)
        gates = [self.overall] + [self._chat(chat, now) for chat in chats
                                  if self.per_chat_per_second]
        if not all(gate.allows(now) for gate in gates):
            self.refused += 1
            return False
        for gate in gates:
            gate.add(now)
        self.admitted += 1
        return True

    def _chat(self, chat: Hashable, now: float) -> SlidingWindow:
        gate = self.chats.get(chat)
        if gate is None:
            if len(self.chats) > 50_000:  # forget the chats that are quiet again
                self.chats = {k: g for k, g in self.chats.items() if not g.idle(now)}
            assert self.per_chat_per_second
            limit = max(1, math.floor(self.per_chat_per_second * self.window))
            gate = self.chats[chat] = SlidingWindow(limit, self.window)
        return gate


def repeats(keys: Iterable[Hashable]) -> int:
    """How many of ``keys`` repeat an earlier one (each extra copy counts once)."""
    seen: set[Hashable] = set()
    extra = 0
    for key in keys:
        if key in seen:
            extra += 1
        seen.add(key)
    return extra
