"""What pinning a VK broadcast request's key to its rows before the send costs a claim.

    .venv/bin/python bench/broadcast_pin.py                  # SQLite, claims of 500
    .venv/bin/python bench/broadcast_pin.py --postgres       # PostgreSQL too

A delivery worker writes each request's key to the rows of the request before it sends
it (``notifications.delivery_batch``), so a worker that dies between the send and the mark
leaves them pinned. This times one claim of ``--limit`` pending VK broadcast rows (one
payload, distinct chats; ``--pending`` of them in the table), committed, four ways,
alternating in each round (the rows are given back, untimed, after each):

- **baseline** — the claim without pins, then grouping (the worker before the pins);
- **now** — ``DeliveryWorker._claim``: the worker groups the rows inside the claim, and
  the claim's one ``UPDATE`` writes the keys with the lease;
- **UPDATE per request** — the claim, then one ``UPDATE`` per request in its transaction;
- **own commit per request** — the claim, then per request a transaction of its own
  (``UPDATE`` + commit), as pinning right before each send would do.

It prints the median milliseconds per claim and each way ÷ the baseline; it asserts that
every way pins the same keys, and nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Text, insert, literal, select, update  # noqa: E402

from dialogue.messages import Address, OutgoingMessage  # noqa: E402
from domain.storage import Database, sqlite_url, upgrade_async  # noqa: E402
from domain.storage.orm import OutboxRow  # noqa: E402
from domain.storage.outbox import ids_in  # noqa: E402
from notifications.delivery import DeliveryWorker  # noqa: E402
from notifications.delivery_batch import group_units, request_pins, round_robin  # noqa: E402
from notifications.messenger import SendResult  # noqa: E402

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
LEASE = timedelta(minutes=2)
KINDS = ("broadcast",)


class ManyMessenger:
    """Never called: it only makes the worker group broadcasts (it has ``send_many``)."""

    async def send(self, to: Address, msg: OutgoingMessage, *,
                   key: str | None = None) -> SendResult:
        raise AssertionError("not sending")

    async def send_many(self, to: Sequence[Address], msg: OutgoingMessage, *,
                        key: str) -> list[SendResult]:
        raise AssertionError("not sending")


async def populate(db: Database, pending: int) -> None:
    rows = [{"kind": "broadcast", "channel": "vk", "chat_id": str(1_000_000 + i),
             "dedup_key": f"broadcast:1:{i}", "payload": {"text": "Плановое отключение"},
             "priority": 0, "status": "pending", "created_at": T0,
             "not_before": T0 + timedelta(microseconds=i), "attempts": 0, "last_error": "",
             "locked_until": None, "claim_token": None} for i in range(pending)]
    async with db.engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            await conn.execute(insert(OutboxRow), rows[start:start + 5000])
        if conn.dialect.name == "postgresql":
            await conn.exec_driver_sql("ANALYZE outbox")


async def give_back(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(update(OutboxRow).where(OutboxRow.claim_token.is_not(None))
                           .values(locked_until=None, claim_token=None, attempts=0,
                                   last_error=""))


def pins_of(batch: Sequence) -> list[tuple[list[int], str]]:
    units = group_units(round_robin(list(batch)), KINDS, 100)
    return request_pins(units, KINDS, 100)


async def baseline(db: Database, limit: int) -> None:
    async with db.uow() as uow:
        batch = await uow.outbox.claim("vk", T0 + LEASE, limit=limit, lease=LEASE, token="b")
        group_units(round_robin(batch), KINDS, 100)
        await uow.commit()


async def now(db: Database, limit: int) -> None:
    worker = DeliveryWorker(db.uow, "vk", ManyMessenger(),  # type: ignore[arg-type]
                            clock=lambda: T0 + LEASE, batch_size=limit, lease=LEASE)
    await worker._claim()


async def _pin(session, ids: list[int], note: str) -> None:
    await session.execute(update(OutboxRow).where(ids_in(ids))
                          .values(last_error=literal(note, Text) + OutboxRow.last_error)
                          .execution_options(synchronize_session=False))


async def update_per_request(db: Database, limit: int) -> None:
    async with db.uow() as uow:
        batch = await uow.outbox.claim("vk", T0 + LEASE, limit=limit, lease=LEASE, token="b")
        for ids, note in pins_of(batch):
            await _pin(uow.session, ids, note)  # type: ignore[attr-defined]
        await uow.commit()


async def commit_per_request(db: Database, limit: int) -> None:
    async with db.uow() as uow:
        batch = await uow.outbox.claim("vk", T0 + LEASE, limit=limit, lease=LEASE, token="b")
        await uow.commit()
    for ids, note in pins_of(batch):
        async with db.uow() as uow:
            await _pin(uow.session, ids, note)  # type: ignore[attr-defined]
            await uow.commit()


WAYS: dict[str, Callable[[Database, int], Awaitable[None]]] = {
    "baseline (no pins)": baseline, "now (pins in the claim's UPDATE)": now,
    "UPDATE per request, claim's txn": update_per_request,
    "own commit per request": commit_per_request}


async def pinned_keys(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        return sorted((await conn.execute(select(OutboxRow.last_error).distinct())).scalars())


async def bench(name: str, url: str, args: argparse.Namespace) -> None:
    await upgrade_async(url)
    db = Database.from_url(url)
    try:
        await populate(db, args.pending)
        print(f"\n{name}: {args.pending:,} pending VK broadcast rows, claims of "
              f"{args.limit} ({args.limit // 100} requests of 100 peers)")
        times: dict[str, list[float]] = {way: [] for way in WAYS}
        keys: dict[str, list[str]] = {}
        ways = list(WAYS.items())
        for round_ in range(args.rounds):
            for way, run in ways[round_ % len(ways):] + ways[:round_ % len(ways)]:
                start = time.perf_counter()
                await run(db, args.limit)
                times[way].append(time.perf_counter() - start)
                keys[way] = await pinned_keys(db)
                await give_back(db)
        assert len({tuple(k) for w, k in keys.items() if w != ways[0][0]}) == 1, keys
        base = statistics.median(times[ways[0][0]])
        for way, spent in times.items():
            ms = statistics.median(spent)
            print(f"  {way:34} {ms * 1000:8.2f} ms per claim (median of {len(spent)})"
                  f"   ÷ baseline = {ms / base:.2f}")
    finally:
        await db.dispose()


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pending", type=int, default=20_000)
    parser.add_argument("--limit", type=int, default=500, help="rows per claim")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        await bench("SQLite", sqlite_url(Path(tmp) / "bench.sqlite3"), args)
    if args.postgres:
        from tests.fakes.postgres import PostgresServer

        server = PostgresServer.start()
        try:
            await bench("PostgreSQL", server.create_database(), args)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
