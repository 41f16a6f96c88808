"""A broadcast delivered through the real aiogram ``Bot`` and vkbottle ``API`` to fakes that
enforce the platforms' rate limits (``tests/fakes/flood.py``): it reaches exactly its
audience, once; VK gets it 100 peers per ``messages.send``; a sender that died after
sending and before marking is followed by one that sends nothing twice on VK.

The limiters run on real time (the fakes count real arrivals); the outbox's own clock
is a fake one, so a claim's lease is stepped over, not waited for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from dialogue.messages import OutgoingMessage
from domain.broadcast import Audience
from domain.citizen import Citizen, Identity
from domain.ports import OutboxMessage, OutboxStatus
from domain.storage import Database, sqlite_url, upgrade_async
from notifications.broadcasts import BroadcastService
from notifications.delivery import DeliveryWorker
from notifications.ratelimit import DEFAULT_LIMITS, RateLimit, RateLimiter, SendWindow, paced
from tests.fakes.flood import FloodGate
from tests.fakes.messenger import FakeClock
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVK

GROUP_ID = 218000005
TG_USERS = [5_300_000 + i for i in range(20)]
VK_USERS = [7_300_000 + i for i in range(230)]
DENIED = VK_USERS[::50]  # these deny messages from the community: error 901 per peer
OUTSIDE = [5_400_000 + i for i in range(5)]  # another municipality
OPTED_OUT = [5_500_000 + i for i in range(3)]
TEXT = "Плановое отключение воды 3 декабря с 9:00 до 13:00"


@dataclass
class Env:
    database: Database
    clock: FakeClock
    tg: FakeTelegram
    vk: FakeVK
    bot: Any
    api: Any

    def worker(self, channel: str, *, limit: RateLimit | None = None,
               **kwargs: Any) -> DeliveryWorker:
        from bots.telegram.outbox import TelegramOutboxMessenger
        from bots.vk.outbox import VkOutboxMessenger

        limit = limit or DEFAULT_LIMITS[channel]
        messenger = (TelegramOutboxMessenger(self.bot, paid_broadcast=(
                         TelegramOutboxMessenger.paid_broadcast_for(limit.per_second)))
                     if channel == "telegram" else VkOutboxMessenger(self.api))
        return DeliveryWorker(self.database.uow, channel, messenger,
                              limiter=RateLimiter(paced(limit)), send_window=SendWindow(limit),
                              clock=self.clock.now, **kwargs)

    async def statuses(self) -> dict[tuple[str, str], OutboxStatus]:
        async with self.database.uow() as uow:
            return {(m.channel, m.chat_id): m.status
                    for m in await uow.outbox.find() if m.kind == "broadcast"}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    from bots.telegram import make_bot
    from bots.vk import make_api

    url = sqlite_url(tmp_path / "tsur.db")
    await upgrade_async(url)
    clock = FakeClock()
    database = Database.from_url(url, clock=clock.now)
    async with database.uow() as uow:
        for channel, users, where in (("telegram", TG_USERS, "derbent"),
                                      ("vk", VK_USERS, "derbent"),
                                      ("telegram", OUTSIDE, "kaspiysk"),
                                      ("telegram", OPTED_OUT, "derbent")):
            for user in users:
                citizen = Citizen([Identity(channel, str(user), str(user))], language="ru",
                                  created_at=clock.now())
                citizen.subscribed_municipality = where
                citizen.broadcast_opt_out = user in OPTED_OUT
                await uow.citizens.add(citizen)
        await uow.commit()
    async with FakeTelegram() as tg, FakeVK(group_id=GROUP_ID) as vk:
        for user in TG_USERS + OUTSIDE + OPTED_OUT:
            tg.add_user(user, "Житель", language_code="ru")
        for user in VK_USERS:
            vk.add_user(user, "Житель", str(user))
        vk.world.denied.update(DENIED)
        tg.flood, vk.flood = FloodGate(30, 1), FloodGate(20)
        bot, api = make_bot(tg.token, tg.base_url), make_api(vk.token, vk.api_url)
        yield Env(database, clock, tg, vk, bot, api)
        await bot.session.close()
        await api.http_client.close()
    await database.dispose()


async def start(env: Env) -> int:
    svc = BroadcastService(env.database, clock=env.clock.now)
    b = await svc.create(TEXT, created_by="test", audience=Audience(municipalities=("derbent",)))
    assert b.id is not None
    assert (await svc.send_now(b.id)).recipients == len(TG_USERS) + len(VK_USERS)
    return b.id


async def drain(worker: DeliveryWorker) -> None:
    while await worker.run_once():
        pass


def peers_of(call: Any) -> list[int]:
    return [int(p) for p in str(call.params.get("peer_ids") or call.params["peer_id"])
            .split(",")]


async def test_a_broadcast_reaches_exactly_its_audience_once_vk_100_peers_a_request(
        env: Env) -> None:
    await start(env)
    await drain(env.worker("telegram"))
    await drain(env.worker("vk"))

    got_tg = [m.chat_id for m in env.tg.world.sent if TEXT in (m.text or "")]
    assert sorted(got_tg) == TG_USERS  # not the other municipality, not the opted out
    got_vk = [m.peer_id for m in env.vk.world.sent if TEXT in m.text]
    assert sorted(got_vk) == sorted(set(VK_USERS) - set(DENIED))
    sends = env.vk.calls_of("messages.send")
    assert [len(peers_of(c)) for c in sends] == [100, 100, 30]
    assert sorted(p for c in sends for p in peers_of(c)) == VK_USERS
    assert env.tg.flood is not None and env.vk.flood is not None
    assert (env.tg.flood.refused, env.vk.flood.refused) == (0, 0)  # paced, never flooded
    statuses = await env.statuses()
    assert {k for k, s in statuses.items() if s is OutboxStatus.UNREACHABLE} == {
        ("vk", str(p)) for p in DENIED}
    assert {s for k, s in statuses.items() if k[1] not in map(str, DENIED)} == {
        OutboxStatus.SENT}
    async with env.database.uow() as uow:
        denied = await uow.citizens.by_identity("vk", str(DENIED[0]))
    assert denied is not None and denied.reachable is False


async def test_a_paid_broadcast_asks_for_paid_sending_and_a_status_notice_does_not(
        env: Env) -> None:
    await start(env)
    async with env.database.uow() as uow:  # a status notice queued during the broadcast
        assert await uow.outbox.add(OutboxMessage(
            kind="status", channel="telegram", chat_id=str(TG_USERS[0]),
            payload=OutgoingMessage("Обращение взято в работу").to_json(),
            dedup_key="status:1:in_progress", created_at=env.clock.now(),
            not_before=env.clock.now(), priority=10))
        await uow.commit()
    env.tg.flood = FloodGate(1000, 1)
    await drain(env.worker("telegram", limit=RateLimit(per_second=1000,
                                                       per_chat_per_second=1)))

    news = [m for m in env.tg.world.sent if TEXT in (m.text or "")]
    assert sorted(m.chat_id for m in news) == TG_USERS
    assert {m.paid_broadcast for m in news} == {True}
    [notice] = [m for m in env.tg.world.sent if TEXT not in (m.text or "")]
    assert notice.text == "Обращение взято в работу" and notice.paid_broadcast is False
    assert [c.params.get("allow_paid_broadcast") for c in env.tg.calls_of("sendMessage")
            if c.params["chat_id"] == TG_USERS[0]] == [None, True]  # the notice went first


async def test_a_broadcast_at_the_free_rate_does_not_ask_for_paid_sending(env: Env) -> None:
    await start(env)
    await drain(env.worker("telegram"))
    assert len(env.tg.world.sent) == len(TG_USERS)
    assert not any(m.paid_broadcast for m in env.tg.world.sent)


class DiesBeforeMarking(DeliveryWorker):
    """A sender killed after its requests went out and before it wrote down what they did."""

    async def flush(self) -> None:
        self._outcomes.clear()


async def test_a_vk_broadcast_sent_again_after_a_crash_reaches_nobody_twice(env: Env) -> None:
    await start(env)
    lease = timedelta(minutes=2)
    dead = DiesBeforeMarking(env.database.uow, "vk", env.worker("vk").messenger,
                             clock=env.clock.now, lease=lease, batch_size=500)
    assert await dead.run_once() == len(VK_USERS)
    first = [(m.peer_id, m.text) for m in env.vk.world.sent]
    assert len(first) == len(VK_USERS) - len(DENIED)
    assert {s for s in (await env.statuses()).values()} == {OutboxStatus.PENDING}
    env.clock.advance(lease.total_seconds())  # the claim runs out; a new sender takes over
    await drain(env.worker("vk", lease=lease, batch_size=500))

    assert [(m.peer_id, m.text) for m in env.vk.world.sent] == first  # VK dropped repeats
    sends = env.vk.calls_of("messages.send")
    assert [len(peers_of(c)) for c in sends] == [100, 100, 30] * 2  # the same requests
    assert [c.params["random_id"] for c in sends[:3]] == [
        c.params["random_id"] for c in sends[3:]]
    statuses = await env.statuses()
    assert {k for k, s in statuses.items() if s is OutboxStatus.SENT} == {
        ("vk", str(p)) for p in VK_USERS if p not in DENIED}
