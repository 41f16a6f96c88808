"""Broadcast delivery benchmark: the real sender process against fakes that enforce the limits.

    .venv/bin/python bench/broadcast.py                                  # 100,000 + 1,500
    .venv/bin/python bench/broadcast.py --recipients 20000 --free 600    # a short run
    .venv/bin/python bench/broadcast.py --only free                      # 30 msg/s only

The bench process runs the fake Telegram Bot API and the fake VK API on 127.0.0.1 with
flood control on (``tests/fakes/flood.py``: a sliding second; a message over the limit
gets 429 / error 6), writes the citizens and a broadcast to a fresh SQLite database (or
PostgreSQL with ``--postgres``), and starts the sender as ``tsur run --role worker`` — real
processes, one per channel unless ``--one-sender``. Two scenarios:

- **free**: ``--free`` Telegram recipients at the free 30 msg/s (1/s per chat);
- **paid**: ``--recipients`` split over Telegram at 1000 msg/s and VK at 20 requests/s of
  up to 100 ``peer_ids`` (``--telegram-share`` of them on Telegram; 1 % of the VK peers
  deny messages, so part of every VK request answers error 901 for some peers).

Each scenario sends until ``--kill-at`` of the audience has arrived, kills the sender with
SIGKILL, starts a new one, and lets it finish. For each part it prints the achieved rate at
the fake ÷ the allowed rate, the 429s / errors 6 drawn, and how long after the sender
process started its first request arrived (start-up, which the rate leaves out). The rate
runs from the first arrival to the last; after the restart, the rows the killed sender had
claimed come due only when its lease runs out, and if everything else was sent before
that, the wait in between (nothing due: the lease, not the sender) is cut out and printed
on its own line — the rows themselves count. At the
end the duplicates (a chat that got the broadcast twice), the losses (a recipient neither
reached nor marked unreachable), and the in-flight window at the kill (rows claimed and
not yet marked: the most that may be sent twice). It prints numbers; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from domain.broadcast import Audience  # noqa: E402
from domain.storage import Database, sqlite_url, upgrade_async  # noqa: E402
from domain.storage.orm import CitizenRow, IdentityRow, OutboxRow  # noqa: E402
from notifications.broadcasts import BroadcastService  # noqa: E402
from tests.fakes.flood import FloodGate, repeats  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.fakes.vk import FakeVK  # noqa: E402

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
LEASE = 10  # seconds: how long the killed sender's claimed rows wait for the new one
VK_PEERS = 100


@dataclass
class Population:
    telegram: list[int]
    vk: list[int]
    free: list[int]


async def populate(db: Database, args: argparse.Namespace) -> Population:
    """Citizens ``1..n`` on Telegram or VK (municipality ``paid``), then ``--free`` more on
    Telegram (municipality ``free``)."""
    rng = random.Random(1)
    pop = Population([], [], [])
    n, total = args.recipients, args.recipients + args.free
    async with db.engine.begin() as conn:
        for start in range(1, total + 1, 5000):
            ids = range(start, min(total, start + 4999) + 1)
            await conn.execute(insert(CitizenRow), [{
                "id": i, "language": "ru", "name": "", "phone": "",
                "subscribed_municipality": "paid" if i <= n else "free",
                "subscribed_sectors": [], "reachable": True, "broadcast_opt_out": False,
                "created_at": T0} for i in ids])
            identities = []
            for i in ids:
                channel = ("telegram" if i > n or rng.random() < args.telegram_share
                           else "vk")
                (pop.free if i > n else getattr(pop, channel)).append(i)
                identities.append({"citizen_id": i, "channel": channel,
                                   "external_id": str(i), "chat_id": str(i)})
            await conn.execute(insert(IdentityRow), identities)
    return pop


class Sender:
    """``tsur run --role worker`` processes: one per channel (each with only that channel's
    token, as a deployment with a worker per channel runs), or one for both
    (``--one-sender``). Under cProfile (written when a process stops, not when it is
    killed) if ``BENCH_PROFILE`` names a file."""

    def __init__(self, env: dict[str, str], log: Path, one: bool) -> None:
        vk = {k: v for k, v in env.items() if not k.startswith("TSUR_TELEGRAM_")}
        telegram = {k: v for k, v in env.items() if not k.startswith("TSUR_VK_")}
        self.envs = [env] if one else [telegram, vk]
        self.log = log
        self.procs = [self._start(e, i) for i, e in enumerate(self.envs)]

    def _start(self, env: dict[str, str], index: int) -> subprocess.Popen[bytes]:
        profile = (["-m", "cProfile", "-o", f"{env['BENCH_PROFILE']}.{index}"]
                   if env.get("BENCH_PROFILE") else [])
        with self.log.open("ab") as out:
            return subprocess.Popen([sys.executable, *profile, "-m", "config.cli", "run",
                                     "--role", "worker"], cwd=ROOT, env=env, stdout=out,
                                    stderr=subprocess.STDOUT)

    def cpu(self) -> list[float | None]:
        """CPU seconds each process has used so far (Linux ``/proc``; ``None`` elsewhere)."""
        found: list[float | None] = []
        for proc in self.procs:
            try:
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                found.append((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
            except (OSError, ValueError, IndexError):
                found.append(None)
        return found

    def poll(self) -> int | None:
        """``None`` while every process runs, else the exit code of one that stopped."""
        codes = [p.poll() for p in self.procs]
        return next((c for c in codes if c is not None), None)

    def kill(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGKILL)
        for proc in self.procs:
            proc.wait()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=30)


class Watch:
    """What the fakes saw of one broadcast, from a given moment on."""

    def __init__(self, tg: FakeTelegram, vk: FakeVK) -> None:
        self.tg, self.vk = tg, vk
        self.tg_sent0, self.vk_sent0 = len(tg.world.sent), len(vk.world.sent)
        self.mark()

    def mark(self) -> None:
        self.tg_calls0, self.vk_calls0 = len(self.tg.calls), len(self.vk.calls)
        self.tg_refused0 = self.tg.flood.refused if self.tg.flood else 0
        self.vk_refused0 = self.vk.flood.refused if self.vk.flood else 0

    def delivered(self) -> int:
        return (len(self.tg.world.sent) - self.tg_sent0
                + len(self.vk.world.sent) - self.vk_sent0)

    def part(self, label: str, tg_rate: float, vk_rate: float, started: float,
             held: frozenset[tuple[str, str]] = frozenset(), killed: float = 0.0,
             cpu: CpuUse | None = None) -> None:
        """Print the arrivals since :meth:`mark`. ``started``: when the sender processes
        started; ``held``: (channel, chat) of the rows the killed sender had claimed, which
        become due only when its lease runs out (``killed`` + the lease)."""
        tg_calls = [c for c in self.tg.calls[self.tg_calls0:]
                    if c.method.lower() == "sendmessage" and c.status == 200]
        vk_calls = [c for c in self.vk.calls[self.vk_calls0:]
                    if c.method == "messages.send" and not c.error_code and c.status == 200]
        tg_refused = (self.tg.flood.refused if self.tg.flood else 0) - self.tg_refused0
        vk_refused = (self.vk.flood.refused if self.vk.flood else 0) - self.vk_refused0
        tg_times, tg_wait, tg_held = sending(
            tg_calls, [("telegram", str(c.params.get("chat_id"))) in held for c in tg_calls])
        vk_times, vk_wait, vk_held = sending(
            vk_calls, [any(("vk", p) in held for p in peers_of(c.params)) for c in vk_calls])
        print(f"  {label}")
        if tg_times:
            print(f"    Telegram: {len(tg_times):,} messages, {rate(tg_times):,.1f} msg/s = "
                  f"{rate(tg_times) / tg_rate:.3f} of the allowed {tg_rate:g}/s (middle 80 %: "
                  f"{steady(tg_times) / tg_rate:.3f}); first arrival "
                  f"{tg_times[0] - started:.1f} s after the sender started; "
                  f"429s drawn: {tg_refused}")
        if vk_times:
            per_request = sum(len(peers_of(c.params)) for c in vk_calls) / len(vk_calls)
            print(f"    VK: {len(vk_times):,} requests ({per_request:.1f} peers each), "
                  f"{rate(vk_times):,.2f} req/s = {rate(vk_times) / vk_rate:.3f} of the "
                  f"allowed {vk_rate:g} req/s (middle 80 %: "
                  f"{steady(vk_times) / vk_rate:.3f}); "
                  f"{rate(vk_times) * per_request:,.0f} msg/s = "
                  f"{rate(vk_times) * per_request / (vk_rate * VK_PEERS):.3f} of "
                  f"{vk_rate * VK_PEERS:,.0f} msg/s; first arrival "
                  f"{vk_times[0] - started:.1f} s after the sender started; "
                  f"errors 6 drawn: {vk_refused}")
        for name, late, wait in (("Telegram", tg_held, tg_wait), ("VK", vk_held, vk_wait)):
            if late:
                cut = (f"{wait:.1f} s with nothing else due before them, cut out of the "
                       "rate" if wait else "other rows were due meanwhile, nothing cut out")
                print(f"    {name}: {len(late):,} of them for rows the killed sender had "
                      f"claimed, {late[0] - killed:.1f}–{late[-1] - killed:.1f} s after the "
                      f"kill (lease {LEASE} s); {cut}")
        if cpu is not None and (tg_times or vk_times):
            print(f"    sender CPU per message that arrived: Telegram {cpu.per_message(0)}, "
                  f"VK {cpu.per_message(1)}")
        self.mark()


def sending(calls: list[Any], held: list[bool]) -> tuple[list[float], float, list[float]]:
    """The arrival times of ``calls`` over the time the sender had something due, the
    time it had not, and the arrival times of the ``held`` ones (rows the killed sender
    had claimed). The held rows come due only when the killed sender's lease runs out;
    if the others were all sent before that, the sender waited in between with nothing
    due, and that wait — the lease, not the sender — is cut out of the times."""
    times = [c.time for c in calls]
    late = [t for t, h in zip(times, held, strict=True) if h]
    others = [t for t, h in zip(times, held, strict=True) if not h]
    wait = late[0] - others[-1] if late and others and late[0] > others[-1] else 0.0
    if wait:
        times = others + [t - wait for t in late]
    return times, wait, late


def peers_of(params: dict[str, Any]) -> list[str]:
    return str(params.get("peer_ids") or params.get("peer_id") or "").split(",")


class CpuUse:
    """The sender processes' CPU time per message that arrived on their channel, from the
    first arrival on (start-up, imports above all, is left out): a cost of the sender's
    own, whatever else the machine runs. One process per channel only."""

    def __init__(self, proc: Sender, counters: list[Any]) -> None:
        self.proc, self.counters = proc, counters
        self.first: list[tuple[float, int] | None] = [None] * len(counters)
        self.last: list[tuple[float, int] | None] = [None] * len(counters)

    def sample(self) -> None:
        if len(self.proc.procs) != len(self.counters):
            return
        for i, (cpu, count) in enumerate(zip(self.proc.cpu(), self.counters, strict=True)):
            arrived = count()
            if cpu is None or arrived == 0:
                continue
            if self.first[i] is None:
                self.first[i] = (cpu, arrived)
            self.last[i] = (cpu, arrived)

    def per_message(self, i: int) -> str:
        first, last = self.first[i], self.last[i]
        if first is None or last is None or last[1] - first[1] < 100:
            return "n/a"
        return f"{(last[0] - first[0]) / (last[1] - first[1]) * 1000:.3f} ms"


def arrivals(tg: FakeTelegram, vk: FakeVK) -> list[Any]:
    """Counters of the messages that arrive on Telegram and on VK from now on."""
    tg0, vk0 = len(tg.world.sent), len(vk.world.sent)
    return [lambda: len(tg.world.sent) - tg0, lambda: len(vk.world.sent) - vk0]


def rate(times: list[float]) -> float:
    """Arrivals per second from the first arrival to the last."""
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and \
        times[-1] > times[0] else 0.0


def steady(times: list[float]) -> float:
    """:func:`rate` of the middle 80 % of the arrivals (no start-up, no tail)."""
    cut = len(times) // 10
    return rate(times[cut:len(times) - cut])


async def outbox_counts(db: Database, broadcast_id: int) -> dict[str, int]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            select(OutboxRow.status, OutboxRow.claim_token.is_not(None), func.count())
            .where(OutboxRow.dedup_key.like(f"bc:{broadcast_id}:%"))
            .group_by(OutboxRow.status, OutboxRow.claim_token.is_not(None)))
        counts: dict[str, int] = {}
        for status, claimed, count in rows:
            key = f"{status}, claimed" if status == "pending" and claimed else status
            counts[key] = counts.get(key, 0) + count
        return counts


async def wait_until(progress: Any, target: int, proc: Sender, stall: float,
                     cpu: CpuUse | None = None) -> bool:
    """Poll until ``progress() >= target``; ``False`` if the sender died or nothing
    arrived for ``stall`` seconds."""
    last, moved = -1, time.monotonic()
    while (value := progress()) < target:
        # the fakes keep every request they received; a full collection of the bench
        # process walked them all (0.3 s pauses, 0.75 s in a 16,000-message run) and the
        # fakes stopped answering meanwhile. What is kept so far is kept to the end anyway.
        gc.freeze()
        if cpu is not None:
            cpu.sample()
        if value != last:
            last, moved = value, time.monotonic()
        if proc.poll() is not None or time.monotonic() - moved > stall:
            return False
        await asyncio.sleep(0.2)
    return True


async def scenario(name: str, db: Database, tg: FakeTelegram, vk: FakeVK,
                   env: dict[str, str], audience: Audience, tg_rate: float, vk_rate: float,
                   args: argparse.Namespace, log: Path) -> None:
    print(f"\n== {name} ==")
    tg.flood, vk.flood = FloodGate(tg_rate, 1), FloodGate(vk_rate)
    svc = BroadcastService(db, clock=lambda: datetime.now(UTC))
    b = await svc.create(f"Bench {name}: плановое отключение электроэнергии 2 декабря "
                         "с 10:00 до 14:00.", created_by="bench", audience=audience)
    assert b.id is not None
    started = time.perf_counter()
    b = await svc.send_now(b.id)
    assert b.id is not None
    rows = await expected(db, b.id)
    reachable = sum(1 for channel, chat in rows
                    if not (channel == "vk" and int(chat) in vk.world.denied))
    print(f"  broadcast {b.id}: {len(rows):,} outbox rows written in "
          f"{time.perf_counter() - started:.1f} s; {reachable:,} can arrive (the rest deny "
          "messages on VK)")
    env = {**env, "TSUR_TELEGRAM_RATE": str(tg_rate), "TSUR_VK_RATE": str(vk_rate)}
    watch = Watch(tg, vk)
    started = time.monotonic()
    proc = Sender(env, log, args.one_sender)
    cpu = CpuUse(proc, arrivals(tg, vk))
    window = 0
    try:
        await wait_until(watch.delivered, int(reachable * args.kill_at), proc,
                         args.stall + 30, cpu)
        proc.kill()
        killed = time.monotonic()
        at_kill = await outbox_counts(db, b.id)
        held = await claimed(db, b.id)
        window = at_kill.get("pending, claimed", 0)
        print(f"  SIGKILL after {watch.delivered():,} of {reachable:,} arrived; rows at "
              f"the kill: {at_kill}")
        watch.part("before the kill:", tg_rate, vk_rate, started, cpu=cpu)
        started = time.monotonic()
        proc = Sender(env, log, args.one_sender)
        cpu = CpuUse(proc, arrivals(tg, vk))
        if not await wait_until(watch.delivered, reachable, proc, args.stall, cpu):
            print(f"  gave up: {watch.delivered():,} arrived; sender exit code "
                  f"{proc.poll()}")
        for _ in range(100):  # the last marks land within a flush or two
            if not any(k.startswith("pending") for k in await outbox_counts(db, b.id)):
                break
            await asyncio.sleep(0.2)
        watch.part("after the restart:", tg_rate, vk_rate, started, held, killed, cpu)
    finally:
        proc.stop()
    report(watch, await outbox_counts(db, b.id), window, await expected(db, b.id))


async def claimed(db: Database, broadcast_id: int) -> frozenset[tuple[str, str]]:
    """(channel, chat) of the broadcast's rows claimed and not yet marked."""
    async with db.engine.connect() as conn:
        rows = await conn.execute(select(OutboxRow.channel, OutboxRow.chat_id)
                                  .where(OutboxRow.dedup_key.like(f"bc:{broadcast_id}:%"),
                                         OutboxRow.status == "pending",
                                         OutboxRow.claim_token.is_not(None)))
        return frozenset((channel, chat) for channel, chat in rows)


async def expected(db: Database, broadcast_id: int) -> dict[tuple[str, str], str]:
    """(channel, chat) → the row's status, for every row of the broadcast."""
    async with db.engine.connect() as conn:
        rows = await conn.execute(select(OutboxRow.channel, OutboxRow.chat_id,
                                         OutboxRow.status)
                                  .where(OutboxRow.dedup_key.like(f"bc:{broadcast_id}:%")))
        return {(channel, chat): status for channel, chat, status in rows}


def report(watch: Watch, counts: dict[str, int], window: int,
           rows: dict[tuple[str, str], str]) -> None:
    tg_sent = [("telegram", str(m.chat_id)) for m in watch.tg.world.sent[watch.tg_sent0:]]
    vk_sent = [("vk", str(m.peer_id)) for m in watch.vk.world.sent[watch.vk_sent0:]]
    arrived = set(tg_sent) | set(vk_sent)
    lost = [key for key, status in rows.items()
            if key not in arrived and status != "unreachable"]
    marked_wrong = [key for key in arrived if rows.get(key) != "sent"]
    print(f"  outbox rows at the end: {counts}")
    print(f"  duplicates: {repeats(tg_sent)} Telegram, {repeats(vk_sent)} VK "
          f"(in-flight window at the kill: {window} rows claimed, not marked)")
    print(f"  lost: {len(lost)}; arrived but not marked sent: {len(marked_wrong)}")
    tg_new = watch.tg.world.sent[watch.tg_sent0:]
    paid = sum(m.paid_broadcast for m in tg_new)
    print(f"  Telegram messages sent with allow_paid_broadcast: {paid:,} of {len(tg_new):,}")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000,
                        help="the paid scenario's audience, over Telegram and VK")
    parser.add_argument("--telegram-share", type=float, default=1 / 3)
    parser.add_argument("--free", type=int, default=1_500,
                        help="the free scenario's audience (Telegram at 30 msg/s)")
    parser.add_argument("--paid-rate", type=float, default=1000.0)
    parser.add_argument("--kill-at", type=float, default=0.5)
    parser.add_argument("--stall", type=float, default=60.0,
                        help="give up when nothing arrives for this many seconds")
    parser.add_argument("--only", choices=("free", "paid"))
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--one-sender", action="store_true",
                        help="one sender process for both channels, not one per channel")
    parser.add_argument("--log", type=Path,
                        default=Path(tempfile.gettempdir()) / "tsur-bench-sender.log",
                        help="where the sender processes write their output")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        if args.postgres:
            from tests.fakes.postgres import PostgresServer

            server = PostgresServer.start()
            url = server.create_database()
        else:
            url = sqlite_url(Path(tmp) / "bench.sqlite3")
        try:
            await run(url, Path(tmp), args)
        finally:
            if server is not None:
                server.stop()
    return 0


async def run(url: str, tmp: Path, args: argparse.Namespace) -> None:
    await upgrade_async(url)
    db = Database.from_url(url)
    log = args.log
    log.write_bytes(b"")
    try:
        pop = await populate(db, args)
        print(f"{len(pop.telegram) + len(pop.free):,} Telegram and {len(pop.vk):,} VK "
              f"citizens on {db.dialect}; sender log: {log}")
        async with FakeTelegram() as tg, FakeVK(group_id=1) as vk:
            for chat in pop.telegram + pop.free:
                tg.world.user(chat)
            vk.world.allowed.update(pop.vk)
            vk.world.denied.update(pop.vk[::100])  # 1 % deny messages: error 901 per peer
            env = {**os.environ, "TSUR_DATABASE_URL": url, "TSUR_DATA_DIR": str(tmp),
                   "TSUR_NLU": "keyword", "TSUR_LOG_LEVEL": "WARNING",
                   "TSUR_TELEGRAM_TOKEN": tg.token, "TSUR_TELEGRAM_API_URL": tg.base_url,
                   "TSUR_VK_TOKEN": vk.token, "TSUR_VK_GROUP_ID": "1",
                   "TSUR_VK_API_URL": vk.api_url, "TSUR_OUTBOX_LEASE_SECONDS": str(LEASE),
                   "TSUR_REDIS_URL": "", "PYTHONPATH": str(ROOT)}
            if args.only in (None, "free") and pop.free:
                await scenario("free: Telegram at 30 msg/s", db, tg, vk, env,
                               Audience(municipalities=("free",)), 30, 20, args, log)
            if args.only in (None, "paid") and (pop.telegram or pop.vk):
                await scenario(f"paid: Telegram at {args.paid_rate:g} msg/s, VK at 20 "
                               "req/s × 100 peers", db, tg, vk, env,
                               Audience(municipalities=("paid",)), args.paid_rate, 20,
                               args, log)
    finally:
        await db.dispose()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
