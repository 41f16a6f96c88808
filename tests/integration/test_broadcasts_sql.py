"""Broadcasts on SQLite and PostgreSQL: the audience of every filter, eligibility,
materialization (idempotent, concurrent), pause/resume/cancel with the delivery worker,
progress and its ETA."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from domain.broadcast import Audience, BroadcastState, InvalidTransition, Link
from domain.citizen import Citizen, Identity
from domain.storage import Database
from domain.storage.orm import ComplaintRow
from notifications.broadcasts import BroadcastService
from notifications.delivery import DeliveryWorker
from notifications.outbox import Priority, new_message
from notifications.ratelimit import RateLimit
from tests.fakes.dialogue import catalogue
from tests.fakes.messenger import FakeClock, FakeMessenger

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def citizen(db: Database, *channels: str, lang: str = "ru", muni: str | None = None,
                  sectors: tuple[str, ...] = (), reachable: bool = True,
                  opted_out: bool = False, key: str = "") -> int:
    async with db.uow() as uow:
        c = Citizen([Identity(ch, f"{ch}-{key}", f"{ch}-{key}") for ch in channels],
                    language=lang, subscribed_municipality=muni,
                    subscribed_sectors=list(sectors), reachable=reachable,
                    broadcast_opt_out=opted_out, created_at=T0)
        await uow.citizens.add(c)
        await uow.commit()
    assert c.id is not None
    return c.id


async def complaint(db: Database, citizen_id: int, sector: str, muni: str | None,
                    days_ago: int) -> None:
    at = T0 - timedelta(days=days_ago)
    async with db.uow() as uow:
        uow.session.add(ComplaintRow(
            number=f"2026-{citizen_id:03d}{days_ago:03d}", citizen_id=citizen_id,
            channel="telegram", text="…", sector=sector, category="x", agency="tsur",
            municipality=muni, created_at=at, first_answer_due=at, resolution_due=at,
            classified_by="citizen", status="registered"))
        await uow.commit()


@pytest.fixture
async def town(db: Database) -> dict[str, int]:
    """A small population covering every filter and every reason to be left out."""
    ids = {
        "tg_ru_mkh": await citizen(db, "telegram", muni="makhachkala",
                                   sectors=("roads", "housing"), key="1"),
        "vk_en_der": await citizen(db, "vk", lang="en", muni="derbent", sectors=("waste",),
                                   key="2"),
        "web_only": await citizen(db, "web", key="3"),
        "blocked": await citizen(db, "telegram", muni="makhachkala", reachable=False, key="4"),
        "opted_out": await citizen(db, "telegram", muni="makhachkala", opted_out=True, key="5"),
        "tg_vk_der": await citizen(db, "telegram", "vk", muni="derbent", sectors=("roads",),
                                   key="6"),
        "vk_roads_recent": await citizen(db, "vk", key="7"),
        "tg_housing_old": await citizen(db, "telegram", lang="en", key="8"),
    }
    await complaint(db, ids["vk_roads_recent"], "roads", "derbent", days_ago=5)
    await complaint(db, ids["tg_housing_old"], "housing", "kaspiysk", days_ago=40)
    await complaint(db, ids["blocked"], "roads", "derbent", days_ago=1)
    return ids


def service(db: Database, clock: Clock | None = None, **kwargs: object) -> BroadcastService:
    return BroadcastService(db, catalogue=catalogue(), clock=clock or Clock(),
                            **kwargs)  # type: ignore[arg-type]


async def outbox(db: Database) -> list:
    async with db.uow() as uow:
        return [m for m in await uow.outbox.find() if m.kind == "broadcast"]


CASES = [
    (Audience(), {"tg_ru_mkh", "vk_en_der", "tg_vk_der", "vk_roads_recent", "tg_housing_old"}),
    (Audience(municipalities=("makhachkala",)), {"tg_ru_mkh"}),
    (Audience(municipalities=("derbent", "makhachkala")), {"tg_ru_mkh", "vk_en_der",
                                                          "tg_vk_der"}),
    (Audience(sectors=("roads",)), {"tg_ru_mkh", "tg_vk_der"}),
    (Audience(sectors=("waste", "housing")), {"tg_ru_mkh", "vk_en_der"}),
    (Audience(channels=("vk",)), {"vk_en_der", "tg_vk_der", "vk_roads_recent"}),
    (Audience(channels=("web",)), {"web_only"}),
    (Audience(channels=("telegram", "vk", "web")),
     {"tg_ru_mkh", "vk_en_der", "web_only", "tg_vk_der", "vk_roads_recent", "tg_housing_old"}),
    (Audience(languages=("en",)), {"vk_en_der", "tg_housing_old"}),
    (Audience(complained_sectors=("roads",)), {"vk_roads_recent"}),
    (Audience(complained_municipalities=("kaspiysk",)), {"tg_housing_old"}),
    (Audience(complained_days=30), {"vk_roads_recent"}),
    (Audience(complained_days=60), {"vk_roads_recent", "tg_housing_old"}),
    (Audience(complained_sectors=("housing",), complained_days=30), set()),
    (Audience(municipalities=("derbent",), sectors=("roads",), channels=("telegram",)),
     {"tg_vk_der"}),
]


class TestAudience:
    @pytest.mark.parametrize(("audience", "expected"), CASES)
    async def test_each_filter_counts_and_writes_exactly_its_citizens(
            self, db: Database, town: dict[str, int], audience: Audience, expected: set[str]):
        svc = service(db)
        assert await svc.audience(audience) == len(expected)
        b = await svc.create("Новость", created_by="test", audience=audience)
        assert b.audience_size == len(expected)
        await svc.send_now(b.id)
        written = {m.citizen_id for m in await outbox(db)}
        assert written == {town[name] for name in expected}

    async def test_a_citizen_on_two_channels_gets_one_message_on_the_first(
            self, db: Database, town: dict[str, int]):
        svc = service(db)
        b = await svc.create("Новость", created_by="test",
                             audience=Audience(municipalities=("derbent",)))
        await svc.send_now(b.id)
        rows = {m.citizen_id: m for m in await outbox(db)}
        assert rows[town["tg_vk_der"]].channel == "telegram"
        assert rows[town["vk_en_der"]].channel == "vk"  # VK only for those who wrote to it

    async def test_unknown_slugs_are_refused(self, db: Database):
        with pytest.raises(ValueError, match="municipality"):
            await service(db).audience(Audience(municipalities=("atlantis",)))
        with pytest.raises(ValueError, match="sector"):
            await service(db).audience(Audience(complained_sectors=("space",)))


class TestMaterialization:
    async def test_payload_language_photo_links_unsubscribe_and_priority(
            self, db: Database, town: dict[str, int]):
        svc = service(db)
        b = await svc.create("Дороги отремонтируют", created_by="test", photo="tg-file-1",
                             links=[Link("Подробнее", "https://rcr.example/news/1")])
        await svc.send_now(b.id)
        rows = {m.citizen_id: m for m in await outbox(db)}
        ru, en = rows[town["tg_ru_mkh"]], rows[town["vk_en_der"]]
        assert ru.priority == Priority.BROADCAST < Priority.STATUS
        assert ru.dedup_key == f"bc:{b.id}:{town['tg_ru_mkh']}"
        assert "https://rcr.example/news/1" in ru.payload["text"]
        assert ru.payload["attachments"][0]["ref"] == "tg-file-1"
        assert ru.payload["buttons"] == [[{"label": "🔕 Отписаться от рассылки",
                                           "payload": f"unsub:{b.id}"}]]
        assert en.payload["buttons"][0][0]["label"] == "🔕 Unsubscribe from news"
        assert len(f"unsub:{b.id}".encode()) <= 64

    async def test_run_due_twice_writes_each_recipient_once(self, db: Database,
                                                            town: dict[str, int]):
        clock = Clock()
        svc = service(db, clock, batch_size=2)
        b = await svc.create("Новость", created_by="test", send_at=T0 + timedelta(hours=1))
        assert await svc.run_due(T0) == 0  # not due yet
        assert (await svc.get(b.id)).state is BroadcastState.SCHEDULED
        assert await svc.run_due(T0 + timedelta(hours=1)) == 5
        assert await svc.run_due(T0 + timedelta(hours=2)) == 0
        # even a forced re-run from the start writes nothing twice
        await svc.materialize(b.id, T0 + timedelta(hours=3))
        rows = await outbox(db)
        assert len(rows) == len({m.citizen_id for m in rows}) == 5
        got = await svc.get(b.id)
        assert (got.state, got.recipients, got.materialized) == (BroadcastState.SENDING, 5,
                                                                 True)

    async def test_a_crash_between_batches_resumes_after_the_last_written(
            self, db: Database, town: dict[str, int]):
        svc = service(db, batch_size=2)
        b = await svc.create("Новость", created_by="test")
        await svc.schedule(b.id, T0)
        original = svc.db.uow
        commits = 0

        def crashing_uow():  # the second batch dies before committing
            unit = original()
            real_commit = unit.commit

            async def commit() -> None:
                nonlocal commits
                commits += 1
                if commits == 2:
                    raise RuntimeError("killed")
                await real_commit()
            unit.commit = commit  # type: ignore[method-assign]
            return unit
        svc.db.uow = crashing_uow  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            await svc.run_due(T0)
        svc.db.uow = original  # type: ignore[method-assign]
        assert len(await outbox(db)) == 2
        await svc.run_due(T0 + timedelta(minutes=1))
        rows = await outbox(db)
        assert len(rows) == len({m.citizen_id for m in rows}) == 5

    @pytest.mark.postgres
    async def test_two_processes_running_due_work_write_each_recipient_once(
            self, db: Database, town: dict[str, int]):
        if db.dialect != "postgresql":
            pytest.skip("concurrency of separate connections is what PostgreSQL adds")
        for i in range(40):
            await citizen(db, "telegram", key=f"extra{i}")
        other = Database.from_url(db.engine.url)
        try:
            first, second = service(db, batch_size=3), service(other, batch_size=3)
            b = await first.create("Новость", created_by="test", send_at=T0)
            written = await asyncio.gather(first.run_due(T0), second.run_due(T0),
                                           first.run_due(T0), second.run_due(T0))
        finally:
            await other.dispose()
        rows = await outbox(db)
        assert sum(written) == len(rows) == len({m.citizen_id for m in rows}) == 45
        assert (await first.get(b.id)).recipients == 45


def worker(db: Database, messenger: FakeMessenger, clock: FakeClock,
           channel: str = "telegram") -> DeliveryWorker:
    return DeliveryWorker(db.uow, channel, messenger, clock=clock.now, sleep=clock.sleep,
                          jitter=lambda: 0.0, batch_size=2)


async def drain(*workers: DeliveryWorker) -> None:
    while sum([await w.run_once() for w in workers]):
        pass


class TestDeliveryControl:
    async def test_pause_stops_pending_rows_resume_sends_the_rest_exactly_once(
            self, db: Database, town: dict[str, int]):
        for i in range(6):
            await citizen(db, "telegram", key=f"more{i}")
        clock = FakeClock(T0)
        svc = service(db, Clock(T0))
        b = await svc.create("Новость", created_by="test", audience=Audience(
            channels=("telegram",)))
        await svc.send_now(b.id)  # 9 telegram recipients
        messenger = FakeMessenger()
        w = worker(db, messenger, clock)
        await w.run_once()
        assert len(messenger.sent) == 2
        paused = await svc.pause(b.id)
        assert paused.state is BroadcastState.PAUSED
        await drain(w)
        assert len(messenger.sent) == 2  # nothing more while paused
        progress = await svc.progress(b.id)
        assert (progress.sent, progress.held, progress.remaining) == (2, 7, 7)
        await svc.resume(b.id)
        await drain(w)
        assert len(messenger.sent) == 9
        assert len({a.chat_id for a, _m in messenger.sent}) == 9
        await svc.run_due(T0)
        final = await svc.progress(b.id)
        assert final.broadcast.state is BroadcastState.DONE
        assert (final.sent, final.remaining, final.eta) == (9, 0, None)

    async def test_cancel_closes_pending_rows_and_nothing_more_is_sent(
            self, db: Database, town: dict[str, int]):
        svc = service(db)
        b = await svc.create("Новость", created_by="test")
        await svc.send_now(b.id)
        messenger = FakeMessenger()
        w = worker(db, messenger, FakeClock(T0))
        await w.run_once()
        await svc.cancel(b.id)
        await drain(w, worker(db, messenger, FakeClock(T0), "vk"))
        assert len(messenger.sent) == 2
        progress = await svc.progress(b.id)
        assert progress.broadcast.state is BroadcastState.CANCELLED
        assert (progress.sent, progress.cancelled, progress.failed,
                progress.remaining) == (2, 3, 0, 0)
        with pytest.raises(InvalidTransition):
            await svc.resume(b.id)
        assert await svc.run_due(T0 + timedelta(days=1)) == 0

    async def test_status_notices_overtake_a_running_broadcast(self, db: Database,
                                                               town: dict[str, int]):
        svc = service(db)
        b = await svc.create("Новость", created_by="test",
                             audience=Audience(channels=("telegram",)))
        await svc.send_now(b.id)
        async with db.uow() as uow:
            from dialogue.messages import Address, Channel, OutgoingMessage
            await uow.outbox.add(new_message(
                "status", Address(Channel.TELEGRAM, "tg-9"), OutgoingMessage("Статус"),
                dedup_key="status:x", now=T0 + timedelta(seconds=1),
                priority=Priority.STATUS))
            await uow.commit()
        messenger = FakeMessenger()
        await worker(db, messenger, FakeClock(T0 + timedelta(seconds=2))).run_once()
        assert messenger.texts()[0] == "Статус"

    async def test_unreachable_and_failed_recipients_are_counted(self, db: Database,
                                                                 town: dict[str, int]):
        svc = service(db)
        b = await svc.create("Новость", created_by="test",
                             audience=Audience(channels=("telegram",)))
        await svc.send_now(b.id)
        messenger = FakeMessenger()
        messenger.blocked_by("telegram-1")
        await drain(worker(db, messenger, FakeClock(T0)))
        progress = await svc.progress(b.id)
        assert (progress.sent, progress.unreachable, progress.remaining) == (2, 1, 0)
        assert await svc.audience(Audience(channels=("telegram",))) == 2


class TestProgress:
    async def test_eta_follows_the_channel_limits(self, db: Database, town: dict[str, int]):
        for i in range(60):
            await citizen(db, "telegram", key=f"t{i}")
        for i in range(17):
            await citizen(db, "vk", key=f"v{i}")
        limits = {"telegram": RateLimit(per_second=30), "vk": RateLimit(per_second=20)}
        svc = service(db, limits=limits)
        b = await svc.create("Новость", created_by="test")
        before = await svc.progress(b.id)  # a draft: counted from the audience
        assert before.remaining_by_channel == {"telegram": 63, "vk": 19}
        assert before.eta == timedelta(seconds=63 / 30)
        await svc.send_now(b.id)
        after = await svc.progress(b.id)
        assert (after.remaining, after.eta) == (82, timedelta(seconds=63 / 30))
        assert after.broadcast.recipients == 82

    async def test_transitions_are_checked_and_times_kept_in_utc(self, db: Database):
        svc = service(db)
        b = await svc.create("Новость", created_by="test")
        with pytest.raises(InvalidTransition):
            await svc.pause(b.id)
        with pytest.raises(ValueError, match="past"):
            await svc.schedule(b.id, T0 - timedelta(hours=1))
        moscow_ten = datetime(2026, 12, 1, 10, 0, tzinfo=UTC) - timedelta(hours=3)
        got = await svc.schedule(b.id, moscow_ten)
        assert (await svc.get(b.id)).send_at == got.send_at == moscow_ten
        with pytest.raises(LookupError):
            await svc.get(10_000)

