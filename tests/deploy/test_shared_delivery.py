"""Delivery workers of two processes (two Redis clients, one outbox) keep the platform's
limits together; with per-process limiters they would not. Fake clock: nothing waits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from dialogue.messages import Address, Channel, OutgoingMessage
from domain.ports import OutboxStatus
from domain.storage import Database, sqlite_url, upgrade_async
from notifications.delivery import DeliveryWorker
from notifications.messenger import RetryAfter
from notifications.outbox import new_message
from notifications.ratelimit import RateLimit, RateLimiter
from notifications.ratelimit_redis import RedisRateLimiter, connect
from tests.fakes.messenger import FakeClock, FakeMessenger

LIMIT = RateLimit(per_second=30, per_chat_per_second=1)  # Telegram's


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = sqlite_url(tmp_path / "tsur.db")
    await upgrade_async(url)
    database = Database.from_url(url)
    yield database
    await database.dispose()


async def queue(db: Database, clock: FakeClock, chats: list[str]) -> None:
    async with db.uow() as uow:
        for n, chat in enumerate(chats):
            await uow.outbox.add(new_message(
                "status", Address(Channel.TELEGRAM, chat), OutgoingMessage(f"notice {n}"),
                dedup_key=f"n{n}", now=clock.now()))
        await uow.commit()


class Sends:
    """(fake time, chat, worker) of every send of every worker."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.log: list[tuple[float, str, int]] = []

    def messenger(self, worker: int) -> FakeMessenger:
        messenger = FakeMessenger()

        async def record(to: Address) -> None:
            self.log.append((self.clock.monotonic(), to.chat_id, worker))

        messenger.before_send = record
        return messenger

    def gaps(self, chat: str) -> list[float]:
        times = sorted(t for t, c, _ in self.log if c == chat)
        return [b - a for a, b in zip(times, times[1:], strict=False)]


def workers(db: Database, clock: FakeClock, sends: Sends, limiters: list) -> list:
    return [DeliveryWorker(db.uow, "telegram", sends.messenger(n), limiter=limiter,
                           clock=clock.now, sleep=clock.sleep, batch_size=3,
                           lease=timedelta(minutes=5))
            for n, limiter in enumerate(limiters)]


async def drain(db: Database, pair: list[DeliveryWorker]) -> None:
    for _ in range(100):
        done = [await worker.run_once() for worker in pair]
        if not any(done):
            break
    async with db.uow() as uow:
        assert {m.status for m in await uow.outbox.find()} == {OutboxStatus.SENT}


async def test_two_workers_keep_one_chat_at_one_message_a_second(db, redis_url):
    clock = FakeClock()
    clients = [connect(redis_url), connect(redis_url)]
    try:
        sends = Sends(clock)
        pair = workers(db, clock, sends, [RedisRateLimiter(c, "telegram", LIMIT,
                                                           clock=clock.monotonic)
                                          for c in clients])
        await queue(db, clock, ["hot"] * 8 + [f"c{n}" for n in range(8)])
        await drain(db, pair)
    finally:
        for client in clients:
            await client.aclose()
    assert len(sends.log) == 16
    assert {worker for _, chat, worker in sends.log if chat == "hot"} == {0, 1}
    assert min(sends.gaps("hot")) >= 1.0 - 1e-6


async def test_per_process_limiters_would_not(db):
    """The control: the same two workers, each pacing itself, send to one chat faster
    than Telegram allows (which is why deployments set TSUR_REDIS_URL)."""
    clock = FakeClock()
    sends = Sends(clock)
    pair = workers(db, clock, sends, [RateLimiter(LIMIT, clock.monotonic) for _ in range(2)])
    await queue(db, clock, ["hot"] * 8)
    await drain(db, pair)
    assert min(sends.gaps("hot")) < 1.0


async def test_flood_control_seen_by_one_worker_holds_the_other_back(db, redis_url):
    clock = FakeClock()
    clients = [connect(redis_url), connect(redis_url)]
    try:
        sends = Sends(clock)
        limiters = [RedisRateLimiter(c, "telegram", LIMIT, clock=clock.monotonic)
                    for c in clients]
        first, second = workers(db, clock, sends, limiters)
        first.messenger.fail("a", RetryAfter(7))  # type: ignore[attr-defined]
        await queue(db, clock, ["a"])
        await first.run_once()  # 429: retry after 7 s, for everyone
        paused_at = clock.monotonic()
        await queue_more(db, clock)
        await second.run_once()
    finally:
        for client in clients:
            await client.aclose()
    assert [chat for _, chat, worker in sends.log if worker == 1] == ["b"]
    [(sent_at, _, _)] = [s for s in sends.log if s[2] == 1]
    assert sent_at >= paused_at + 7 - 1e-6


async def queue_more(db: Database, clock: FakeClock) -> None:
    async with db.uow() as uow:
        await uow.outbox.add(new_message(
            "status", Address(Channel.TELEGRAM, "b"), OutgoingMessage("later"),
            dedup_key="b", now=clock.now()))
        await uow.commit()
