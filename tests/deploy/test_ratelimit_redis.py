"""The shared rate limiter against a real redis-server: several clients (and processes)
book slots of one budget; the slots themselves are checked, never the wall clock, so
nothing here depends on how fast the machine is."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from notifications.ratelimit import RateLimit, RateLimiter
from notifications.ratelimit_redis import MICRO, RedisLimiters, RedisRateLimiter, connect

ROOT = Path(__file__).resolve().parents[2]
SECOND = MICRO


class Clock:
    """A fake clock in seconds shared by the clients of one test."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[Callable[[], object]]:
    """Factory of independent clients (each its own connection pool), closed after."""
    made: list[object] = []

    def make() -> object:
        client = connect(redis_url)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()  # type: ignore[attr-defined]


def most_in_any_second(slots: list[int]) -> int:
    """The most slots that fall into one half-open second [t, t + 1 s)."""
    slots = sorted(slots)
    best, start = 0, 0
    for end, slot in enumerate(slots):
        while slot - slots[start] >= SECOND:
            start += 1
        best = max(best, end - start + 1)
    return best


def gaps(slots: list[int]) -> list[int]:
    slots = sorted(slots)
    return [b - a for a, b in zip(slots, slots[1:], strict=False)]


async def run_workers(limiters: list[RedisRateLimiter], clock: Clock, chats: list[str],
                      seconds: float, step: float = 0.001) -> list[tuple[int, str, int]]:
    """Each limiter stands for a worker that sends one message whenever it may: it books a
    slot, "sleeps" until it, books the next. Returns (slot µs, chat, worker) per send."""
    sent: list[tuple[int, str, int]] = []
    free_at = [clock.now] * len(limiters)
    turn = [0] * len(limiters)
    end = clock.now + seconds
    while clock.now < end:
        for index, limiter in enumerate(limiters):
            if free_at[index] <= clock.now + 1e-9:
                chat = chats[(turn[index] + index) % len(chats)]
                turn[index] += 1
                booking = await limiter.book(chat)
                sent.append((booking.slot, chat, index))
                free_at[index] = booking.slot / MICRO
        clock.now += step
    return [s for s in sent if s[0] < end * MICRO]


async def test_two_clients_share_a_10_per_second_budget(clients):
    clock = Clock()
    limit = RateLimit(per_second=10)
    a = RedisRateLimiter(clients(), "telegram", limit, clock=clock)
    b = RedisRateLimiter(clients(), "telegram", limit, clock=clock)
    sent = await run_workers([a, b], clock, ["1", "2", "3"], seconds=3.0)
    slots = [slot for slot, _, _ in sent]
    assert most_in_any_second(slots) <= 10
    assert min(gaps(slots)) >= SECOND // 10
    assert len(slots) >= 29  # the budget is used, not wasted: 3 s × 10/s
    assert {worker for _, _, worker in sent} == {0, 1}  # both sent, neither starved


async def test_one_client_alone_gets_the_whole_budget_and_no_more(clients):
    clock = Clock()
    limiter = RedisRateLimiter(clients(), "vk", RateLimit(per_second=10), clock=clock)
    waits = [await limiter.reserve("7") for _ in range(20)]  # booked back to back at once
    assert waits == pytest.approx([i / 10 for i in range(20)])


async def test_per_chat_limit_holds_across_clients_and_chats_are_independent(clients):
    clock = Clock()
    limit = RateLimit(per_second=30, per_chat_per_second=1)
    limiters = [RedisRateLimiter(clients(), "telegram", limit, clock=clock) for _ in range(3)]
    sent = await run_workers(limiters, clock, ["alice", "bob"], seconds=5.0)
    for chat in ("alice", "bob"):
        slots = [slot for slot, c, _ in sent if c == chat]
        assert min(gaps(slots)) >= SECOND
        assert most_in_any_second(slots) == 1
        assert len(slots) >= 4
    first = {chat: min(s for s, c, _ in sent if c == chat) for chat in ("alice", "bob")}
    assert abs(first["alice"] - first["bob"]) < SECOND // 10  # bob did not wait for alice


async def test_a_burst_after_a_quiet_spell_then_the_steady_rate(clients):
    clock = Clock()
    limit = RateLimit(per_second=10, burst=5)
    a = RedisRateLimiter(clients(), "vk", limit, clock=clock)
    b = RedisRateLimiter(clients(), "vk", limit, clock=clock)
    waits = [await (a if i % 2 else b).reserve(str(i)) for i in range(8)]
    assert waits == pytest.approx([0, 0, 0, 0, 0, 0.1, 0.2, 0.3])


async def test_the_same_waits_as_the_in_process_limiter(clients):
    """Same algorithm, same answers: a mixed sequence of requests over time gets the same
    waits from Redis as from :class:`RateLimiter` (to the microsecond)."""
    clock = Clock(0.0)
    limit = RateLimit(per_second=30, burst=3, per_chat_per_second=1, per_chat_burst=2)
    shared = RedisRateLimiter(clients(), "telegram", limit, clock=clock)
    local = RateLimiter(limit, clock)
    pattern = ["a", "b", "a", "a", "c", "a", "b", "d", "e", "a"]
    for step in range(120):
        chat = pattern[step % len(pattern)]
        assert await shared.reserve(chat) == pytest.approx(local.reserve(chat), abs=1e-4)
        clock.now += (0.0, 0.004, 0.05, 0.3)[step % 4]


async def test_a_pause_from_one_process_holds_every_process_back(clients):
    clock = Clock()
    limit = RateLimit(per_second=30)
    a = RedisRateLimiter(clients(), "telegram", limit, clock=clock)
    b = RedisRateLimiter(clients(), "telegram", limit, clock=clock)
    await a.pause(5.0)  # a 429 with retry_after=5 seen by a's worker
    assert await b.reserve("1") == pytest.approx(5.0)
    await b.pause(1.0)  # a shorter pause never shortens a longer one
    assert await a.reserve("2") == pytest.approx(5.0 + 1 / 30)
    clock.now += 10
    assert await a.reserve("3") == 0


async def test_channels_and_deployments_do_not_share_budgets(clients):
    clock = Clock()
    limit = RateLimit(per_second=1)
    telegram = RedisLimiters(clients(), clock=clock)("telegram", limit)
    vk = RedisLimiters(clients(), clock=clock)("vk", limit)
    other = RedisLimiters(clients(), prefix="staging", clock=clock)("telegram", limit)
    assert [await telegram.reserve("1"), await vk.reserve("1"), await other.reserve("1")] \
        == [0, 0, 0]
    assert await telegram.reserve("1") == pytest.approx(1.0)


async def test_idle_buckets_expire(clients):
    client = clients()
    clock = Clock()
    limiter = RedisRateLimiter(client, "telegram", RateLimit(per_second=10,
                                                              per_chat_per_second=1),
                               clock=clock)
    await limiter.reserve("42")
    keys = sorted(k.decode() for k in await client.keys("tsur:rl:*"))
    assert keys == ["tsur:rl:{telegram}:all", "tsur:rl:{telegram}:chat:42"]
    # a key lives only until its bucket is full again (+1 ms): 100 ms and 1 s here
    assert 0 < await client.pttl("tsur:rl:{telegram}:all") <= 101
    assert 900 < await client.pttl("tsur:rl:{telegram}:chat:42") <= 1001


async def test_the_redis_clock_by_default(clients):
    limiter = RedisRateLimiter(clients(), "vk", RateLimit(per_second=2))
    first, second = await limiter.book("1"), await limiter.book("1")
    assert first.wait == 0 and second.slot - first.slot == SECOND // 2
    assert 0 < second.wait <= 0.5


async def test_without_redis_each_process_paces_itself(caplog, unused_port):
    client = connect(f"redis://127.0.0.1:{unused_port}/0")
    limiter = RedisRateLimiter(client, "telegram", RateLimit(per_second=10))
    caplog.set_level(logging.WARNING)
    try:
        waits = [await limiter.reserve("1") for _ in range(3)]
        await limiter.pause(0.0)
    finally:
        await client.aclose()
    assert waits == pytest.approx([0, 0.1, 0.2], abs=0.05)
    warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1  # said once, not per message


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: nothing listens there


# --- several processes --------------------------------------------------------------------

BOOKER = """
import asyncio, json, sys
from notifications.ratelimit import RateLimit
from notifications.ratelimit_redis import RedisRateLimiter, connect

async def main(url, count):
    client = connect(url)
    await client.blpop(["go"], timeout=60)  # start together
    limiter = RedisRateLimiter(client, "telegram",
                               RateLimit(per_second=10, per_chat_per_second=1))
    slots = []
    for i in range(count):
        chat = "hot" if i % 4 == 0 else f"c{i}"
        booking = await limiter.book(chat)
        slots.append([booking.slot, chat])
    await client.aclose()
    print(json.dumps(slots))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_processes_book_disjoint_slots_of_one_budget(redis_url: str):
    """Three processes book 30 slots each, as fast as they can, on Redis's own clock:
    together they never get more than 10 in any second, nor two to one chat within a
    second, and every slot is booked once."""
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", BOOKER, redis_url, "30", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for _ in range(3)]
    client = connect(redis_url)
    try:
        await client.rpush("go", *["go"] * len(procs))
        results = [await asyncio.wait_for(p.communicate(), 120) for p in procs]
    finally:
        await client.aclose()
        for p in procs:
            if p.returncode is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0, 0], [err.decode() for _, err in results]
    booked = [json.loads(out) for out, _ in results]
    slots = [slot for one in booked for slot, _ in one]
    assert len(slots) == len(set(slots)) == 90
    assert most_in_any_second(slots) <= 10
    assert min(gaps(slots)) >= SECOND // 10
    hot = [slot for one in booked for slot, chat in one if chat == "hot"]
    assert len(hot) == 24 and min(gaps(hot)) >= SECOND
