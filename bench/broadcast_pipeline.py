"""Broadcast pipeline benchmark: audience counting, materialization, delivery overhead.

    .venv/bin/python bench/broadcast_pipeline.py       # 100,000 citizens, SQLite + PG
    .venv/bin/python bench/broadcast_pipeline.py --citizens 20000 --deliver 5000 --no-postgres

For each database (SQLite; PostgreSQL when its binaries are installed, via
tests/fakes/postgres.py) it generates citizens (70 % Telegram, 30 % VK, some on both,
some unreachable or opted out, random subscriptions and complaints), then times:

- ``audience()`` COUNTs for several filters;
- materialization (``send_now``: one outbox row per recipient, 1000 per transaction),
  against a baseline of writing as many plain outbox rows in the same batches;
- delivery of ``--deliver`` of those rows through the real ``DeliveryWorker`` (one per
  channel, no rate limiter) with a messenger that does nothing — the pipeline's own
  ceiling, printed as a multiple of Telegram's 30 msg/s default and 1000 msg/s paid limit.

It prints numbers only; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from dialogue.messages import Address, OutgoingMessage  # noqa: E402
from domain.broadcast import Audience  # noqa: E402
from domain.ports import OutboxMessage  # noqa: E402
from domain.storage import Database, sqlite_url, upgrade_async  # noqa: E402
from domain.storage.broadcasts import SqlBroadcastRepository  # noqa: E402
from domain.storage.orm import CitizenRow, ComplaintRow, IdentityRow  # noqa: E402
from notifications.broadcast_message import broadcast_payload  # noqa: E402
from notifications.broadcasts import BroadcastService  # noqa: E402
from notifications.delivery import DeliveryWorker  # noqa: E402
from notifications.messenger import SendResult  # noqa: E402

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
MUNIS = ["makhachkala", "derbent", "kaspiysk", "buynaksk", "khasavyurt", "izberbash"]
SECTORS = ["housing", "waste", "energy", "education", "health", "roads", "transport"]
BATCH = 1000


class NullMessenger:
    """Sends nothing, instantly: what is left is the outbox pipeline's own cost."""

    def __init__(self) -> None:
        self.count = 0

    async def send(self, to: Address, msg: OutgoingMessage, *,
                   key: str | None = None) -> SendResult:
        self.count += 1
        return SendResult.OK


async def populate(db: Database, n: int, rng: random.Random) -> None:
    async with db.engine.begin() as conn:
        for start in range(1, n + 1, 5000):
            ids = range(start, min(n, start + 4999) + 1)
            await conn.execute(insert(CitizenRow), [{
                "id": i, "language": "en" if rng.random() < 0.1 else "ru", "name": "",
                "phone": "", "subscribed_municipality": rng.choice(MUNIS),
                "subscribed_sectors": rng.sample(SECTORS, rng.randint(0, 3)),
                "reachable": rng.random() > 0.03, "broadcast_opt_out": rng.random() < 0.02,
                "created_at": T0} for i in ids])
            identities = []
            for i in ids:
                first = "telegram" if rng.random() < 0.7 else "vk"
                identities.append({"citizen_id": i, "channel": first, "external_id": str(i),
                                   "chat_id": str(i)})
                if rng.random() < 0.05:
                    other = "vk" if first == "telegram" else "telegram"
                    identities.append({"citizen_id": i, "channel": other,
                                       "external_id": str(i), "chat_id": str(i)})
            await conn.execute(insert(IdentityRow), identities)
            await conn.execute(insert(ComplaintRow), [{
                "number": f"2026-{i:07d}", "citizen_id": i, "channel": "telegram",
                "text": "…", "sector": rng.choice(SECTORS), "category": "x", "agency": "tsur",
                "municipality": rng.choice(MUNIS),
                "created_at": T0 - timedelta(days=rng.randint(0, 120)),
                "first_answer_due": T0, "resolution_due": T0, "classified_by": "citizen",
                "status": "registered"} for i in ids if i % 10 == 0])


async def timed(label: str, coro: object) -> tuple[float, object]:
    start = time.perf_counter()
    result = await coro  # type: ignore[misc]
    elapsed = time.perf_counter() - start
    print(f"  {label:<48} {elapsed * 1000:9.1f} ms  → {result}")
    return elapsed, result


async def baseline(db: Database, n: int, payload: dict[str, object]) -> float:
    """Write ``n`` plain outbox rows in transactions of ``BATCH``, as materialization does
    (on a channel no worker serves, so they do not slow the delivery runs' claims)."""
    start = time.perf_counter()
    for first in range(0, n, BATCH):
        async with db.uow() as uow:
            repo = SqlBroadcastRepository(uow.session)
            await repo.write_messages([OutboxMessage(
                kind="plain", channel="baseline", chat_id=str(i), payload=payload,
                dedup_key=f"plain:{i}", created_at=T0, not_before=T0 + timedelta(days=1))
                for i in range(first, min(n, first + BATCH))])
            await uow.commit()
    return time.perf_counter() - start


async def deliver(db: Database, limit: int, per_channel: int) -> tuple[float, int]:
    messenger = NullMessenger()
    workers = [DeliveryWorker(db.uow, ch, messenger, clock=lambda: T0 + timedelta(hours=1))
               for ch in ("telegram", "vk") for _ in range(per_channel)]

    async def drain(worker: DeliveryWorker) -> None:
        while messenger.count < limit and await worker.run_once():
            pass

    start = time.perf_counter()
    await asyncio.gather(*(drain(w) for w in workers))
    return time.perf_counter() - start, messenger.count


async def bench(name: str, url: str, n: int, to_deliver: int,
                workers: list[int]) -> None:
    print(f"\n== {name}: {n:,} citizens ==")
    await upgrade_async(url)
    db = Database.from_url(url)
    try:
        start = time.perf_counter()
        await populate(db, n, random.Random(1))
        if db.dialect == "postgresql":  # what autovacuum would have done by now
            async with db.engine.connect() as conn:
                await conn.exec_driver_sql("ANALYZE")
        print(f"  generated in {time.perf_counter() - start:.1f} s")
        svc = BroadcastService(db, clock=lambda: T0)
        for label, audience in (
                ("audience: everyone eligible", Audience()),
                ("audience: municipality", Audience(municipalities=("derbent",))),
                ("audience: subscribed sectors", Audience(sectors=("roads", "waste"))),
                ("audience: VK, English", Audience(channels=("vk",), languages=("en",))),
                ("audience: complained roads, last 30 days",
                 Audience(complained_sectors=("roads",), complained_days=30))):
            await timed(label, svc.audience(audience))
        b = await svc.create("Плановое отключение электроэнергии 2 декабря с 10:00 до "
                             "14:00 в связи с ремонтом подстанции.", created_by="bench")
        print(f"  audience counted at creation: {b.audience_size:,}")
        start = time.perf_counter()
        rows = (await svc.send_now(b.id)).recipients
        t_mat = time.perf_counter() - start
        print(f"  {'materialize (send_now)':<48} {t_mat * 1000:9.1f} ms  → {rows:,} rows")
        t_base = await baseline(db, rows, broadcast_payload(b, "ru"))
        print(f"  baseline: {rows:,} plain rows in {t_base * 1000:.1f} ms")
        print(f"  materialization: {rows / t_mat:,.0f} rows/s; "
              f"{t_mat / t_base:.2f}× the plain-row baseline")
        for per_channel in workers:
            elapsed, sent = await deliver(db, to_deliver, per_channel)
            rate = sent / elapsed
            print(f"  delivery, {per_channel} worker(s) per channel, no limiter, null "
                  f"messenger: {sent:,} messages in {elapsed:.1f} s = {rate:,.0f} msg/s")
            print(f"    = {rate / 30:.1f}× Telegram's 30 msg/s, {rate / 1000:.2f}× the paid "
                  f"1000 msg/s, {rate / 20:.1f}× VK's 20 req/s (one message per request)")
        progress = await svc.progress(b.id)
        print(f"  progress: sent {progress.sent:,}, remaining {progress.remaining:,}, "
              f"ETA at the default limits {progress.eta}")
    finally:
        await db.dispose()


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--citizens", type=int, default=100_000)
    parser.add_argument("--deliver", type=int, default=10_000,
                        help="messages to push through the delivery workers")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4],
                        help="delivery workers per channel, one run each")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        await bench("SQLite", sqlite_url(Path(tmp) / "bench.sqlite3"), args.citizens,
                    args.deliver, args.workers)
    if args.no_postgres:
        return 0
    from tests.fakes.postgres import PostgresServer, find_bindir

    if find_bindir() is None:
        print("\n(PostgreSQL binaries not found: skipped)")
        return 0
    server = PostgresServer.start()
    try:
        await bench("PostgreSQL", server.create_database(), args.citizens, args.deliver,
                    args.workers)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
