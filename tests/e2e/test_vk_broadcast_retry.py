"""A VK broadcast request whose outcome is unknown, retried: nobody is shown it twice.

One ``messages.send`` with ``peer_ids`` carries one ``random_id``, derived from the request's
key. When VK applied such a request but its reply was lost (a dropped connection, a
timeout), the rows are retried later — and a later claim may cut them into other groups
(claims are limited; rows come due at different times). A regrouped retry must not carry
a new ``random_id`` to a peer that may already have the message: VK would show it again.

The fake VK drops a repeated ``random_id`` per recipient, as VK documents it
(:meth:`tests.fakes.vk.FakeVK.dedup_per_peer`); the real vkbottle ``API`` and the real
delivery worker over a real SQLite file; the outbox's clock is a fake one, stepped to the
next due row when nothing is due.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from domain.citizen import Citizen, Identity
from domain.ports import OutboxStatus
from domain.storage import Database, sqlite_url, upgrade_async
from notifications.broadcasts import BroadcastService
from notifications.delivery import DeliveryWorker
from tests.fakes.messenger import FakeClock
from tests.fakes.vk import FakeVK

GROUP_ID = 218000081
VK_USERS = [7_700_000 + i for i in range(7)]
TEXT = "Плановое отключение света 5 декабря с 10:00 до 12:00"


class Killed(Exception):
    pass


@dataclass
class Env:
    database: Database
    clock: FakeClock
    vk: FakeVK
    api: Any

    def worker(self, uow: Callable[[], Any] | None = None, **kwargs: Any) -> DeliveryWorker:
        from bots.vk.outbox import VkOutboxMessenger

        jitter = iter([0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6] * 20)
        return DeliveryWorker(uow or self.database.uow, "vk", VkOutboxMessenger(self.api),
                              clock=self.clock.now, sleep=self.clock.sleep,
                              jitter=lambda: next(jitter), **kwargs)

    async def drain(self, worker: DeliveryWorker) -> None:
        """Deliver until nothing is pending, moving the clock to the next due row."""
        for _ in range(100):
            if await worker.run_once():
                continue
            async with self.database.uow() as uow:
                pending = await uow.outbox.find(status=OutboxStatus.PENDING, channel="vk")
            if not pending:
                return
            due = min(max(m.not_before, m.locked_until or m.not_before) for m in pending)
            self.clock.advance(max(0.1, (due - self.clock.now()).total_seconds()))
        raise AssertionError("the outbox did not drain")

    def shown(self) -> Counter[int]:
        return Counter(m.peer_id for m in self.vk.world.sent if TEXT in m.text)

    def requests(self) -> list[tuple[list[int], str]]:
        return [([int(p) for p in str(c.params.get("peer_ids") or c.params["peer_id"])
                  .split(",")], c.params["random_id"])
                for c in self.vk.calls_of("messages.send")]

    def dies_after_claim(self) -> Callable[[], Any]:
        """A worker's unit of work that opens once (the claim) and then never again: the
        worker is gone after it sent, before it marked anything."""
        opened = 0

        def uow() -> Any:
            nonlocal opened
            opened += 1
            if opened > 1:
                raise Killed("the worker died before marking its sends")
            return self.database.uow()

        return uow

    async def statuses(self) -> set[OutboxStatus]:
        async with self.database.uow() as uow:
            return {m.status for m in await uow.outbox.find(channel="vk")}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    from bots.vk import make_api

    url = sqlite_url(tmp_path / "tsur.db")
    await upgrade_async(url)
    clock = FakeClock()
    database = Database.from_url(url, clock=clock.now)
    async with database.uow() as uow:
        for user in VK_USERS:
            await uow.citizens.add(Citizen([Identity("vk", str(user), str(user))],
                                           language="ru", created_at=clock.now()))
        await uow.commit()
    async with FakeVK(group_id=GROUP_ID) as vk:
        vk.dedup_per_peer()
        for user in VK_USERS:
            vk.add_user(user, "Житель", str(user))
        api = make_api(vk.token, vk.api_url)
        svc = BroadcastService(database, clock=clock.now)
        b = await svc.create(TEXT, created_by="test")
        assert b.id is not None
        assert (await svc.send_now(b.id)).recipients == len(VK_USERS)
        yield Env(database, clock, vk, api)
        await api.http_client.close()
    await database.dispose()


async def test_a_lost_reply_retried_in_smaller_claims_shows_the_broadcast_once(
        env: Env) -> None:
    """The claim after the lost reply takes two rows at a time: the request to all seven
    is retried as three smaller ones, each with the first request's ``random_id``."""
    env.vk.fail_next("messages.send", "drop", after_apply=True)
    assert await env.worker().run_once() == len(VK_USERS)
    assert env.shown() == Counter(VK_USERS)  # it went through; the worker does not know
    assert await env.statuses() == {OutboxStatus.PENDING}

    await env.drain(env.worker(batch_size=2))

    assert env.shown() == Counter(VK_USERS)  # nobody twice
    assert await env.statuses() == {OutboxStatus.SENT}
    [(first_peers, first_id), *retries] = env.requests()
    assert sorted(first_peers) == VK_USERS
    assert [len(peers) for peers, _ in retries] == [2, 2, 2, 1]  # regrouped
    assert {random_id for _, random_id in retries} == {first_id}
    assert len(env.vk.repeats_dropped) == len(VK_USERS)


async def test_a_lost_reply_is_retried_as_the_same_request(env: Env) -> None:
    """Each row draws its own backoff jitter; the group is due again as one, so the retry
    is the first request again (not seven single sends)."""
    env.vk.fail_next("messages.send", "drop", after_apply=True)
    await env.drain(env.worker())

    assert env.shown() == Counter(VK_USERS)
    assert await env.statuses() == {OutboxStatus.SENT}
    [first, again] = env.requests()
    assert sorted(first[0]) == sorted(again[0]) == VK_USERS and first[1] == again[1]


async def test_a_request_vk_never_applied_retried_in_smaller_claims_reaches_everyone(
        env: Env) -> None:
    """A 502 before VK applied the request: the smaller retries share its ``random_id``,
    and VK (which drops a repeat per recipient) delivers to each of them."""
    env.vk.fail_next("messages.send", 502)
    assert await env.worker().run_once() == len(VK_USERS)
    assert env.vk.world.sent == []

    await env.drain(env.worker(batch_size=3))

    assert env.shown() == Counter(VK_USERS)
    assert await env.statuses() == {OutboxStatus.SENT}
    assert len({random_id for _, random_id in env.requests()}) == 1
    assert env.vk.repeats_dropped == []


@pytest.mark.parametrize(("first_claim", "retry_claim"), [(100, 2), (1, 100)],
                         ids=["retried-in-smaller-claims", "sent-alone-retried-in-a-group"])
async def test_a_worker_dead_between_send_and_mark_shows_the_broadcast_once(
        env: Env, first_claim: int, retry_claim: int) -> None:
    """VK applied the request and answered; the worker died before it marked the rows.
    When the lease runs out a claim of another size cuts them into other groups (two at
    a time; or the row sent alone goes with the rest): the retries carry the dead
    worker's ``random_id`` for those rows, and VK drops them for those peers."""
    dead = env.worker(env.dies_after_claim(), batch_size=first_claim)
    with pytest.raises(Killed):
        await dead.run_once()
    crashed = len(env.vk.world.sent)
    assert crashed == min(first_claim, len(VK_USERS))  # VK showed it; nothing was marked
    assert await env.statuses() == {OutboxStatus.PENDING}

    env.clock.advance(dead.lease.total_seconds())
    await env.drain(env.worker(batch_size=retry_claim))

    assert env.shown() == Counter(VK_USERS)  # nobody twice
    assert await env.statuses() == {OutboxStatus.SENT}
    assert len(env.vk.repeats_dropped) == crashed
