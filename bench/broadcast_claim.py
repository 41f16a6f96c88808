"""Outbox claim benchmark: one claim's cost with a big broadcast pending.

    .venv/bin/python bench/broadcast_claim.py          # 100,000 pending rows, SQLite + PG
    .venv/bin/python bench/broadcast_claim.py --pending 60000 --no-postgres

For each database (SQLite; PostgreSQL when its binaries are installed, via
tests/fakes/postgres.py) it writes ``--pending`` broadcast rows to distinct Telegram chats,
of which the first ``--in-flight`` are claimed (tried, leased), plus a later message to
each of 100 of those chats (held back by the per-chat order check). Then, alternating
``--rounds`` times, it times:

- the baseline: the claim's due query as it was before migration 0011 (per chat, the
  oldest tried pending row by a GROUP BY over the channel's pending rows, joined in), in
  a rolled-back transaction that drops ``ix_outbox_tried`` first;
- the claim's due query now (a NOT EXISTS probe of the partial index ``ix_outbox_tried``);
- a whole ``SqlOutbox.claim()`` (rolled back, so every round sees the same rows).

It prints milliseconds per call and the baseline's time ÷ the new query's; it asserts that
both queries pick the same rows, and nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Select, func, insert, or_, select  # noqa: E402
from sqlalchemy.orm import aliased  # noqa: E402

from domain.storage import Database, sqlite_url, upgrade_async  # noqa: E402
from domain.storage.orm import OutboxRow  # noqa: E402
from domain.storage.outbox import TRIED_SQL, SqlOutbox  # noqa: E402

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=5)
CHANNEL = "telegram"
PRIORITY = 0
HELD_CHATS = 100


def old_due(limit: int) -> Select:
    """The due query before migration 0011: the baseline."""
    tried = (select(OutboxRow.chat_id, func.min(OutboxRow.id).label("first"))
             .where(OutboxRow.channel == CHANNEL, OutboxRow.status == "pending",
                    OutboxRow.attempts > 0)
             .group_by(OutboxRow.chat_id).subquery())
    return (select(OutboxRow.id)
            .outerjoin(tried, tried.c.chat_id == OutboxRow.chat_id)
            .where(OutboxRow.channel == CHANNEL, OutboxRow.status == "pending",
                   OutboxRow.priority == PRIORITY, OutboxRow.not_before <= NOW,
                   or_(OutboxRow.locked_until.is_(None), OutboxRow.locked_until <= NOW),
                   or_(tried.c.first.is_(None), OutboxRow.id <= tried.c.first))
            .order_by(OutboxRow.not_before, OutboxRow.id).limit(limit))


def new_due(limit: int) -> Select:
    """The due query of ``SqlOutbox.claim`` (without its reachability join and lock)."""
    from sqlalchemy import text

    tried = aliased(OutboxRow, name="tried")
    overtakes = (select(tried.id)
                 .where(tried.channel == CHANNEL, tried.chat_id == OutboxRow.chat_id,
                        tried.id < OutboxRow.id, text(TRIED_SQL)).exists())
    return (select(OutboxRow.id)
            .where(OutboxRow.channel == CHANNEL, OutboxRow.status == "pending",
                   OutboxRow.priority == PRIORITY, OutboxRow.not_before <= NOW,
                   or_(OutboxRow.locked_until.is_(None), OutboxRow.locked_until <= NOW),
                   ~overtakes)
            .order_by(OutboxRow.not_before, OutboxRow.id).limit(limit))


async def populate(db: Database, pending: int, in_flight: int) -> None:
    rows = [{"kind": "broadcast", "channel": CHANNEL, "chat_id": str(i),
             "dedup_key": f"broadcast:1:{i}", "payload": {"text": "news"},
             "priority": PRIORITY, "status": "pending", "created_at": T0,
             "not_before": T0 + timedelta(microseconds=i), "attempts": 0, "last_error": "",
             "locked_until": None, "claim_token": None}
            for i in range(pending)]
    for row in rows[:in_flight]:
        row.update(attempts=1, locked_until=NOW + timedelta(minutes=1), claim_token="w")
    rows += [{**rows[i], "dedup_key": f"later:{i}", "attempts": 0, "locked_until": None,
              "claim_token": None, "not_before": T0}
             for i in range(0, in_flight, max(1, in_flight // HELD_CHATS))]
    async with db.engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            await conn.execute(insert(OutboxRow), rows[start:start + 5000])
        if conn.dialect.name == "postgresql":
            # autovacuum would analyze after such an insert; without statistics the planner
            # took a nested loop over the GROUP BY for the baseline (13.7 s at 20,000 rows)
            await conn.exec_driver_sql("ANALYZE outbox")


async def plan(db: Database, query: Select, *, before: bool = False) -> str:
    async with db.engine.connect() as conn, conn.begin() as transaction:
        if before:
            await conn.exec_driver_sql("DROP INDEX ix_outbox_tried")
        compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
        explain = ("EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN ")
        rows = (await conn.exec_driver_sql(explain + str(compiled))).all()
        await transaction.rollback()
        return "\n".join("    " + " ".join(str(v) for v in row) for row in rows)


async def run(db: Database, query: Select, *, before: bool = False) -> tuple[float, list[int]]:
    """Time ``query``; ``before``: in a transaction that drops ``ix_outbox_tried`` and is
    rolled back, as the schema was before migration 0011 (both databases' DDL is
    transactional)."""
    async with db.engine.connect() as conn, conn.begin() as transaction:
        if before:
            await conn.exec_driver_sql("DROP INDEX ix_outbox_tried")
        start = time.perf_counter()
        ids = list((await conn.execute(query)).scalars())
        elapsed = time.perf_counter() - start
        await transaction.rollback()
        return elapsed, ids


async def claim(db: Database, limit: int) -> tuple[float, int]:
    async with db.uow() as uow:  # never committed: every round claims the same rows
        start = time.perf_counter()
        got = await SqlOutbox(uow.session).claim(CHANNEL, NOW, limit=limit,
                                                 lease=timedelta(minutes=1), token="b")
        return time.perf_counter() - start, len(got)


async def bench(name: str, url: str, args: argparse.Namespace) -> None:
    await upgrade_async(url)
    db = Database.from_url(url)
    try:
        await populate(db, args.pending, args.in_flight)
        print(f"\n{name}: {args.pending:,} pending rows, {args.in_flight:,} in flight, "
              f"claims of {args.limit}")
        old_t: list[float] = []
        new_t: list[float] = []
        claim_t: list[float] = []
        for _ in range(args.rounds):
            t_old, old_ids = await run(db, old_due(args.limit), before=True)
            t_new, new_ids = await run(db, new_due(args.limit))
            assert old_ids == new_ids, "the two queries pick different rows"
            t_claim, count = await claim(db, args.limit)
            old_t.append(t_old)
            new_t.append(t_new)
            claim_t.append(t_claim)
        old_ms, new_ms = statistics.median(old_t) * 1000, statistics.median(new_t) * 1000
        print(f"  due query before 0011 (baseline)  {old_ms:9.2f} ms (median)")
        print(f"  due query now                     {new_ms:9.2f} ms (median)"
              f"   baseline ÷ now = {old_ms / new_ms:.1f}")
        if args.plans:
            print("  plan before:\n" + await plan(db, old_due(args.limit), before=True))
            print("  plan now:\n" + await plan(db, new_due(args.limit)))
        print(f"  SqlOutbox.claim() now             {statistics.median(claim_t) * 1000:9.2f}"
              f" ms (median, {count} rows)")
    finally:
        await db.dispose()


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--in-flight", type=int, default=2_000)
    parser.add_argument("--limit", type=int, default=100, help="rows per claim")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--plans", action="store_true", help="print both query plans")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        await bench("SQLite", sqlite_url(Path(tmp) / "bench.sqlite3"), args)
    if args.no_postgres:
        return 0
    from tests.fakes.postgres import PostgresServer, find_bindir

    if find_bindir() is None:
        print("\n(PostgreSQL binaries not found: skipped)")
        return 0
    server = PostgresServer.start()
    try:
        await bench("PostgreSQL", server.create_database(), args)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
