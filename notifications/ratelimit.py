"""Pacing sends to a platform's limits: per channel overall and per chat.

A limiter that paces itself never draws a 429, which matters more than a few percent of
throughput (Telegram bans bots that keep hitting flood control). Each bucket is a GCRA
("generic cell rate algorithm") token bucket: it keeps the theoretical arrival time of
the next message, so a reservation is O(1), exact, and allows at most ``burst`` messages
above the steady rate in any window.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

PRUNE_ABOVE = 10_000  # per-chat buckets kept before idle ones are forgotten


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``per_second`` overall and ``per_chat_per_second`` to one chat; ``None`` is
    unlimited. ``burst`` messages may go at once after a quiet spell."""

    per_second: float | None = None
    burst: int = 1
    per_chat_per_second: float | None = None
    per_chat_burst: int = 1


# Telegram: ~30 messages/s overall, 1/s to one chat (paid broadcasts: up to 1000/s);
# VK: 20 requests/s for a community; the web chat has no platform limit.
DEFAULT_LIMITS: dict[str, RateLimit] = {
    "telegram": RateLimit(per_second=30, per_chat_per_second=1),
    "vk": RateLimit(per_second=20),
    "web": RateLimit(),
}


HEADROOM = 0.99


def paced(limit: RateLimit, headroom: float = HEADROOM) -> RateLimit:
    """``limit`` scaled to ``headroom`` of the platform's rates. A platform counts sends
    when they arrive; a send delayed on the way (a busy event loop, a slow connection)
    lands closer to the next one than it left, and a sender at exactly the limit then
    draws a 429. A percent of headroom absorbs such a delay without flood control.

    The overall rate may burst by what the headroom leaves of a second (``per_second ×
    (1 − headroom)``, 10 at 1000/s, none at 30/s): a sender that woke up late for its slot
    (a timer fires a millisecond or so late, and at 1000/s a slot is a millisecond)
    catches up instead of losing the slot, and in any second it still books at most
    ``burst + headroom × per_second`` ≤ ``per_second`` sends."""
    def scale(rate: float | None) -> float | None:
        return rate * headroom if rate else rate

    burst = limit.burst
    if limit.per_second:
        burst = max(burst, math.floor(limit.per_second * (1 - headroom) + 1e-9))
    return RateLimit(per_second=scale(limit.per_second), burst=burst,
                     per_chat_per_second=scale(limit.per_chat_per_second),
                     per_chat_burst=limit.per_chat_burst)


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up (GCRA form)."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.interval = 1.0 / rate
        self.tolerance = (burst - 1) * self.interval
        self.tat = -math.inf  # theoretical arrival time of the next token

    def available_at(self, now: float) -> float:
        """The earliest time, not before ``now``, at which a token may be taken."""
        return max(now, self.tat - self.tolerance)

    def take(self, at: float) -> None:
        """Take a token at ``at`` (which must be ``>= available_at``)."""
        self.tat = max(self.tat, at) + self.interval

    def idle(self, now: float) -> bool:
        """True if the bucket is full again (it can be forgotten)."""
        return self.tat <= now


class RateLimiter:
    """One per channel, shared by all of the channel's workers in a process.

    :meth:`reserve` books the next slot for a chat and says how long to wait for it;
    :meth:`pause` holds the whole channel back (flood control from the platform).
    """

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._overall = (TokenBucket(limit.per_second, limit.burst)
                         if limit.per_second else None)
        self._chats: dict[str, TokenBucket] = {}
        self._paused_until = -math.inf

    def reserve(self, chat_id: str) -> float:
        """Book a slot for one message to ``chat_id``; returns the seconds to wait."""
        now = self.clock()
        at = max(now, self._paused_until)
        chat = self._chat(chat_id, now)
        if self._overall is not None:
            at = self._overall.available_at(at)
        if chat is not None:
            at = chat.available_at(at)  # not earlier than the overall slot found above
            chat.take(at)
        if self._overall is not None:
            self._overall.take(at)
        return at - now

    def pause(self, seconds: float) -> None:
        """Send nothing on this channel for ``seconds`` from now."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)

    def _chat(self, chat_id: str, now: float) -> TokenBucket | None:
        rate = self.limit.per_chat_per_second
        if not rate:
            return None
        bucket = self._chats.get(chat_id)
        if bucket is None:
            if len(self._chats) >= PRUNE_ABOVE:
                self._chats = {k: b for k, b in self._chats.items() if not b.idle(now)}
            bucket = self._chats[chat_id] = TokenBucket(rate, self.limit.per_chat_burst)
        return bucket


class Slot:
    """One send through a :class:`SendWindow`: :meth:`done` when its answer is back."""

    __slots__ = ("ended", "_event")

    def __init__(self) -> None:
        self.ended: float | None = None
        self._event = asyncio.Event()

    def done(self, at: float) -> None:
        if self.ended is None:
            self.ended = at
            self._event.set()

    async def wait(self) -> None:
        await self._event.wait()


class SendWindow:
    """Keeps "at most ``n`` per ``seconds``" as the platform counts it, whatever the delays.

    A platform counts a request when it arrives: after it was sent, before its answer came
    back. Pacing alone spaces the *sends*; a send held up on the way (a busy event loop, a
    slow connection) arrives closer to the later ones, and ``n + 1`` can land in one
    window. So a send also waits until the send ``n`` places before it (overall, and to the
    same chat) has had its answer for ``seconds``: then those two arrived at least
    ``seconds`` apart, and no window holds more than ``n``. With the pacing a little under
    the limit (:func:`paced`) this wait is usually zero; it only absorbs the stragglers.
    """

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 seconds: float = 1.0) -> None:
        self.clock = clock
        self.sleep = sleep
        self.seconds = seconds
        self.overall = _per_window(limit.per_second, seconds)
        self.per_chat = _per_window(limit.per_chat_per_second, seconds)
        self._recent: deque[Slot] = deque()
        self._chats: dict[str, deque[Slot]] = {}

    async def acquire(self, chat_id: str) -> Slot:
        """Wait until a send to ``chat_id`` cannot exceed a window; the caller calls
        ``done`` on the returned slot when the answer is back (or the send failed)."""
        chat = self._chat(chat_id)
        while True:
            blockers = [b for b in (_blocker(self._recent, self.overall),
                                    _blocker(chat, self.per_chat)) if b is not None]
            in_flight = [b for b in blockers if b.ended is None]
            if in_flight:
                await in_flight[0].wait()
                continue
            now = self.clock()
            delay = max((b.ended + self.seconds - now for b in blockers  # type: ignore[operator]
                         ), default=0.0)
            if delay <= 0:
                break
            await self.sleep(delay)
        slot = Slot()
        for queue, n in ((self._recent, self.overall), (chat, self.per_chat)):
            if n is not None:
                queue.append(slot)
                while len(queue) > n:
                    queue.popleft()
        return slot

    def _chat(self, chat_id: str) -> deque[Slot]:
        queue = self._chats.get(chat_id)
        if queue is None:
            if len(self._chats) >= PRUNE_ABOVE:
                cutoff = self.clock() - self.seconds
                self._chats = {k: q for k, q in self._chats.items()
                               if any(s.ended is None or s.ended > cutoff for s in q)}
            queue = self._chats[chat_id] = deque()
        return queue


def _per_window(rate: float | None, seconds: float) -> int | None:
    return max(1, math.floor(rate * seconds + 1e-9)) if rate else None


def _blocker(queue: deque[Slot], n: int | None) -> Slot | None:
    """The send ``n`` places back, if there is one and it may still block."""
    if n is None or len(queue) < n:
        return None
    return queue[-n]
