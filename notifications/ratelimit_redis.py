"""Rate limits shared by every process of a deployment, kept in Redis.

:class:`~notifications.ratelimit.RateLimiter` paces one process. With several worker
processes (``tsur run --role worker`` on many hosts) each would allow the platform's whole
budget, and together they would draw 429s; so when ``TSUR_REDIS_URL`` is set the workers
book their slots here instead. The algorithm is the same GCRA: one key per bucket holds
the theoretical arrival time (TAT) of the next message, and one Lua script books the
channel's overall slot and the chat's slot atomically, so no two processes ever get the
same slot, and slots of one bucket are never closer than ``1 / rate`` (beyond the burst).

Times are integer microseconds. By default they come from the Redis server's ``TIME``,
one clock for every host (monotonic clocks of different machines cannot be compared);
tests inject a clock instead. Keys expire once their bucket is full again, so idle chats
cost nothing. All keys of a channel share a hash tag (``{telegram}``): the script works on
Redis Cluster too.

If Redis cannot be reached, each process falls back to pacing itself with the in-process
limiter (logged): delivery goes on, at worst at ``processes × rate``, and a 429 from the
platform still pauses the channel. Nothing is lost either way; the outbox keeps the rows.

The interface is :class:`RateLimiter`'s, made asynchronous: ``await reserve(chat_id)``
returns the seconds to wait, ``await pause(seconds)`` holds the channel back (for every
process: the pause is a key too).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from notifications.ratelimit import RateLimit, RateLimiter

log = logging.getLogger(__name__)

MICRO = 1_000_000
WARN_EVERY = 60.0  # seconds between two "Redis is unreachable" warnings of one limiter
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)

# KEYS: paused, overall TAT, chat TAT.  ARGV: now (µs, "" = Redis TIME), overall interval
# and tolerance, chat interval and tolerance (µs; interval 0 = no such bucket).
# Returns {slot, now}: the booked send time and the time it was booked at (µs).
BOOK = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local oi, ot = tonumber(ARGV[2]), tonumber(ARGV[3])
local ci, ct = tonumber(ARGV[4]), tonumber(ARGV[5])
local at = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local otat, ctat = 0, 0
if oi > 0 then
  otat = tonumber(redis.call('GET', KEYS[2]) or '0')
  at = math.max(at, otat - ot)
end
if ci > 0 then
  ctat = tonumber(redis.call('GET', KEYS[3]) or '0')
  at = math.max(at, ctat - ct)
  local tat = math.max(ctat, at) + ci
  redis.call('SET', KEYS[3], string.format('%.0f', tat), 'PX',
             math.ceil((tat - now) / 1000) + 1)
end
if oi > 0 then
  local tat = math.max(otat, at) + oi
  redis.call('SET', KEYS[2], string.format('%.0f', tat), 'PX',
             math.ceil((tat - now) / 1000) + 1)
end
return {string.format('%.0f', at), string.format('%.0f', now)}
"""

# KEYS: paused.  ARGV: now (µs, "" = Redis TIME), pause (µs).  Keeps the later end.
PAUSE = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local till = now + tonumber(ARGV[2])
if till > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%.0f', till), 'PX',
             math.ceil(tonumber(ARGV[2]) / 1000) + 1)
end
return string.format('%.0f', till)
"""


def _interval(rate: float | None) -> int:
    """Microseconds between two slots, rounded up so the rate is never exceeded."""
    return math.ceil(MICRO / rate) if rate else 0


@dataclass(frozen=True, slots=True)
class Booking:
    """A booked slot: ``slot`` is when the message may go, ``now`` when it was booked
    (both µs on the limiter's clock)."""

    slot: int
    now: int

    @property
    def wait(self) -> float:
        return (self.slot - self.now) / MICRO


class RedisRateLimiter:
    """One channel's limits, shared through Redis by every process that uses the same
    ``prefix`` and ``channel``.

    :param client: a ``redis.asyncio.Redis`` (shared by the process's limiters).
    :param clock: seconds as a float; ``None`` (production) uses the Redis server's clock.
    """

    def __init__(self, client: Any, channel: str, limit: RateLimit, *,
                 prefix: str = "tsur", clock: Callable[[], float] | None = None) -> None:
        if limit.per_second is not None and limit.per_second <= 0:
            raise ValueError("per_second must be positive")
        if limit.per_chat_per_second is not None and limit.per_chat_per_second <= 0:
            raise ValueError("per_chat_per_second must be positive")
        self.limit = limit
        self.channel = str(channel)
        self.clock = clock
        self.client = client
        tag = f"{prefix}:rl:{{{self.channel}}}"  # one hash slot per channel
        self.keys = (f"{tag}:paused", f"{tag}:all", f"{tag}:chat:")
        overall, chat = _interval(limit.per_second), _interval(limit.per_chat_per_second)
        self._args = (overall, (max(1, limit.burst) - 1) * overall,
                      chat, (max(1, limit.per_chat_burst) - 1) * chat)
        self._book = client.register_script(BOOK)
        self._pause = client.register_script(PAUSE)
        self._local = RateLimiter(limit, clock or time.monotonic)
        self._warned_at = -math.inf

    def _now(self) -> str:
        return "" if self.clock is None else str(round(self.clock() * MICRO))

    async def book(self, chat_id: str) -> Booking:
        """Book the next slot for one message to ``chat_id`` (raises if Redis is down)."""
        paused, overall, chat_prefix = self.keys
        slot, now = await self._book(keys=[paused, overall, chat_prefix + str(chat_id)],
                                     args=[self._now(), *self._args])
        return Booking(int(slot), int(now))

    async def reserve(self, chat_id: str) -> float:
        """Book a slot for one message to ``chat_id``; returns the seconds to wait."""
        try:
            return (await self.book(chat_id)).wait
        except UNREACHABLE as exc:  # Redis away: pace this process alone meanwhile
            self._unreachable(exc)
            return self._local.reserve(chat_id)

    async def pause(self, seconds: float) -> None:
        """Send nothing on this channel, from any process, for ``seconds`` from now."""
        self._local.pause(seconds)
        try:
            await self._pause(keys=[self.keys[0]],
                              args=[self._now(), max(0, round(seconds * MICRO))])
        except UNREACHABLE as exc:
            self._unreachable(exc)

    def _unreachable(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning("rate limits of %s: Redis unreachable (%r); pacing this process "
                        "alone until it is back", self.channel, exc)


class RedisLimiters:
    """Makes the shared limiter of each channel: ``limiters(channel, limit)``; what
    :class:`config.bootstrap.System` calls when ``TSUR_REDIS_URL`` is set."""

    def __init__(self, client: Any, *, prefix: str = "tsur",
                 clock: Callable[[], float] | None = None) -> None:
        self.client = client
        self.prefix = prefix
        self.clock = clock

    def __call__(self, channel: str, limit: RateLimit) -> RedisRateLimiter:
        return RedisRateLimiter(self.client, channel, limit, prefix=self.prefix,
                                clock=self.clock)


def connect(url: str) -> Any:
    """A ``redis.asyncio.Redis`` for ``url`` (connects lazily, on the first command).

    Short timeouts: a limiter that waits long for Redis holds a claimed batch back; the
    fallback is better. ``health_check_interval`` finds dead pooled connections."""
    from redis.asyncio import Redis

    return Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0,
                          health_check_interval=30)
