"""The dialogue engine alone: the intake dialogue of ``bench/intake.py`` straight into
``Engine.handle``, with the product's SQL unit of work and event handlers, no aiogram.

    .venv/bin/python bench/intake_engine.py                    # SQLite, 100 citizens
    .venv/bin/python bench/intake_engine.py --postgres         # a throwaway PostgreSQL
    .venv/bin/python bench/intake_engine.py --citizens 300 --concurrency 32

One citizen at a time, it prints per dialogue step the CPU time of the engine (median and
p90 over the citizens) and what the step asks of the database: SQL statements (BEGIN and
COMMIT included), commits, and round trips to aiosqlite's thread. Those counts do not
depend on the machine's load, so they are the numbers to compare before and after a
change; CPU time is the engine's own (``time.process_time`` of this process). Then it runs
``--concurrency`` citizens at a time and prints messages/s, CPU per message and p50/p99
latency of ``Engine.handle`` — with the same process's CPU as the yardstick: the ratio of
CPU per message to one ``json.dumps``+``json.loads`` round of an 1 KiB update timed in
the same run, which cancels the machine's speed out.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.bootstrap import bootstrap  # noqa: E402
from config.settings import Settings  # noqa: E402
from dialogue.messages import (  # noqa: E402
    Address,
    Attachment,
    AttachmentKind,
    Channel,
    IncomingMessage,
    Location,
)
from domain.storage import sqlite_url, upgrade_async  # noqa: E402

PROBLEM = "В Каспийске на улице Ленина 5 третий день нет воды в доме, срочно"
STEPS = ["/start", "text", "cls:yes", "photo", "photo:done", "location", "mun:yes",
         "consent:yes", "cmp:submit"]


def message(step: str, uid: int, n: int) -> IncomingMessage:
    address = Address(Channel.TELEGRAM, str(uid))
    base: dict[str, Any] = {"address": address, "user_id": str(uid), "language_hint": "ru",
                            "display_name": "Гражданин"}
    at = datetime.fromtimestamp(1_790_000_000 + n, UTC)
    if step == "/start":
        return IncomingMessage(text="/start", received_at=at, **base)
    if step == "text":
        return IncomingMessage(text=PROBLEM, received_at=at, **base)
    if step == "photo":
        return IncomingMessage(attachments=(Attachment(AttachmentKind.PHOTO,
                                                       f"AgAC-photo-{uid}", "image/jpeg"),),
                               received_at=at, **base)
    if step == "location":
        return IncomingMessage(location=Location(42.8816, 47.6389), received_at=at, **base)
    if "callback_id" in IncomingMessage.__dataclass_fields__:  # a button press's own id
        base["callback_id"] = f"cb-{uid}-{n}"
    return IncomingMessage(payload=step, **base)


class Counts:
    """SQL statements, commits, thread round trips and connections opened, counted by
    hooks on the engine."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.c: Counter[str] = Counter()
        event.listen(engine.sync_engine, "before_cursor_execute", self._statement)
        event.listen(engine.sync_engine, "commit", lambda conn: self.c.update(["commits"]))
        # new DBAPI connections (a pool too small for the load opens and closes them)
        event.listen(engine.sync_engine, "connect", lambda *_: self.c.update(["connects"]))
        if engine.dialect.name == "sqlite":
            import aiosqlite

            original = aiosqlite.Connection._execute
            counts = self.c

            async def counted(conn: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
                counts["hops"] += 1
                return await original(conn, fn, *args, **kwargs)

            aiosqlite.Connection._execute = counted  # type: ignore[method-assign]

        import gc

        started = [0.0]

        def collecting(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                self.c[f"gc{info['generation']}"] += 1
                self.c["gc_us"] += int((time.perf_counter() - started[0]) * 1e6)

        gc.callbacks.append(collecting)

    def _statement(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        self.c["statements"] += 1

    def snapshot(self) -> Counter[str]:
        return Counter(self.c)


def yardstick(rounds: int = 2000) -> float:
    """CPU seconds of one JSON round trip of an update-sized object (see the module doc)."""
    update = {"update_id": 1, "message": {"message_id": 1, "date": 1_790_000_000,
              "chat": {"id": 1, "type": "private", "first_name": "Имя"},
              "from": {"id": 1, "is_bot": False, "first_name": "Имя", "language_code": "ru"},
              "text": PROBLEM * 8}}
    t0 = time.process_time()
    for _ in range(rounds):
        json.loads(json.dumps(update, ensure_ascii=False))
    return (time.process_time() - t0) / rounds


async def walk(engine: Any, uid: int, counter: Iterator[int], check: bool = False
               ) -> list[float]:
    cpu = []
    for step in STEPS:
        msg = message(step, uid, next(counter))
        t0 = time.process_time()
        replies = await engine.handle(msg)
        cpu.append(time.process_time() - t0)
        if check and step == "cmp:submit" and not any("№" in r.text for r in replies):
            raise RuntimeError(f"no registration: {[r.text for r in replies]}")
    return cpu


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="tsur-intake-engine-") as tmp:
        server = None
        if args.postgres:
            from tests.fakes.postgres import PostgresServer

            server = await asyncio.to_thread(PostgresServer.start)
            url = await asyncio.to_thread(server.create_database, "intake_engine")
        else:
            url = sqlite_url(Path(tmp) / "intake.db")
        try:
            await upgrade_async(url)
            await run(args, url, Path(tmp))
        finally:
            if server is not None:
                await asyncio.to_thread(server.stop)


async def run(args: argparse.Namespace, url: str, tmp: Path) -> None:
    from dialogue.nlu import KeywordClassifier
    from domain.catalogue import load_catalogue

    pool = {name: value for name, value in (("db_pool_size", args.db_pool_size),
                                            ("db_max_overflow", args.db_max_overflow))
            if value is not None}  # else the product's defaults
    settings = Settings(data_dir=tmp, database_url=url, nlu="keyword",
                        **pool)  # type: ignore[arg-type]
    system = bootstrap(settings, classifier=KeywordClassifier(load_catalogue(None)))
    counts = Counts(system.database.engine)
    counter = itertools.count(1)
    uid = 7_000_000
    try:
        for _ in range(5):  # warm-up: pool, statement caches, first imports
            uid += 1
            await walk(system.engine, uid, counter, check=True)
        by_step: list[list[float]] = [[] for _ in STEPS]
        per_step: list[Counter[str]] = [Counter() for _ in STEPS]
        for _ in range(args.citizens):
            uid += 1
            for i, step in enumerate(STEPS):
                before = counts.snapshot()
                msg = message(step, uid, next(counter))
                t0 = time.process_time()
                await system.engine.handle(msg)
                by_step[i].append(time.process_time() - t0)
                per_step[i].update(counts.snapshot() - before)
        n = args.citizens
        print(f"engine alone, {system.database.dialect}, {n} citizens one at a time")
        print(f"  {'step':<12} {'CPU p50':>8} {'p90':>7}  statements commits hops")
        total = Counter()
        for i, step in enumerate(STEPS):
            total.update(per_step[i])
            ordered = sorted(by_step[i])
            print(f"  {step:<12} {statistics.median(ordered) * 1000:6.2f}ms "
                  f"{ordered[int(.9 * len(ordered))] * 1000:5.2f}ms  "
                  f"{per_step[i]['statements'] / n:10.1f} {per_step[i]['commits'] / n:7.1f} "
                  f"{per_step[i]['hops'] / n:4.1f}")
        mean = sum(sum(col) for col in by_step) / (n * len(STEPS))
        print(f"  per message: CPU mean {mean * 1000:.2f} ms, statements "
              f"{total['statements'] / (n * len(STEPS)):.2f}, commits "
              f"{total['commits'] / (n * len(STEPS)):.2f}, hops "
              f"{total['hops'] / (n * len(STEPS)):.2f}")
        await concurrent(system, args, uid, counter, counts)
    finally:
        await system.close()


async def concurrent(system: Any, args: argparse.Namespace, uid: int,
                     counter: Iterator[int], counts: Counts) -> None:
    latencies: list[float] = []
    uids = iter(range(uid + 1, uid + 1 + args.citizens))

    async def lane() -> None:
        for citizen in uids:
            for step in STEPS:
                t0 = time.perf_counter()
                await system.engine.handle(message(step, citizen, next(counter)))
                latencies.append(time.perf_counter() - t0)

    connects0 = counts.c["connects"]
    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(args.concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    unit = yardstick()
    ordered = sorted(latencies)
    count = len(ordered)
    print(f"  {args.concurrency} at a time: {count / wall:.0f} msg/s, CPU "
          f"{cpu / count * 1000:.2f} ms/msg = {cpu / count / unit:.0f}× a JSON round of an "
          f"update ({unit * 1e6:.0f} µs), latency p50 {ordered[count // 2] * 1000:.1f} ms "
          f"p99 {ordered[int(.99 * count)] * 1000:.1f} ms, connections opened "
          f"{counts.c['connects'] - connects0}")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--citizens", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--postgres", action="store_true")
    p.add_argument("--db-pool-size", type=int, default=None,
                   help="TSUR_DB_POOL_SIZE (PostgreSQL); default the product's")
    p.add_argument("--db-max-overflow", type=int, default=None,
                   help="TSUR_DB_MAX_OVERFLOW (PostgreSQL); default the product's")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
