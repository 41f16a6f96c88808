"""Pacing sends to a platform's limits: per channel overall and per chat.

A limiter that paces itself never draws a 429, which matters more than a few percent of
throughput (Telegram bans bots that keep hitting flood control). Each bucket is a GCRA
("generic cell rate algorithm") token bucket: it keeps the theoretical arrival time of
the next message, so a reservation is O(1), exact, and allows at most ``burst`` messages
above the steady rate in any window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
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
    draws a 429. A percent of headroom absorbs such a delay without flood control."""
    def scale(rate: float | None) -> float | None:
        return rate * headroom if rate else rate

    return RateLimit(per_second=scale(limit.per_second), burst=limit.burst,
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
