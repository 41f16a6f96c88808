"""The leader lease on a real PostgreSQL, a real redis-server and real files: of any number
of contenders exactly one leads, and when it dies (kill -9) another takes over."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from config.leader import (
    FileLease,
    Leader,
    NoLease,
    PostgresLease,
    RedisLease,
    asyncpg_dsn,
    exclusive,
    lease_for,
    lock_key,
)
from notifications.ratelimit_redis import connect

ROOT = Path(__file__).resolve().parents[2]
TAKEOVER = 20.0  # seconds; with ticks of 0.2-0.5 s a takeover takes a few at most


# --- the leases themselves ----------------------------------------------------------------

async def test_postgres_lease_is_exclusive_and_passed_on(postgres_url: str):
    a, b = PostgresLease(postgres_url), PostgresLease(postgres_url)
    try:
        assert await a.acquire() is True
        assert await b.acquire() is False
        assert await a.acquire() is True  # re-entrant for its holder: still one holder
        assert await a.held() and not await b.held()
        await a.release()
        assert await b.acquire() is True
        assert await b.held()
    finally:
        await a.release()
        await b.release()


async def test_postgres_leases_are_per_database_and_per_name(postgres_server):
    one, two = postgres_server.create_database(), postgres_server.create_database()
    leases = [PostgresLease(one), PostgresLease(two), PostgresLease(one, "other")]
    try:
        assert [await lease.acquire() for lease in leases] == [True, True, True]
    finally:
        for lease in leases:
            await lease.release()
    assert lock_key("scheduler") == lock_key("scheduler") != lock_key("other")


async def test_the_server_releases_the_lock_when_the_holders_session_ends(postgres_url):
    """What kill -9 or a lost network does to the holder: its session ends. The holder
    notices at its next check, and a standby gets the lock at its next try."""
    a, b = PostgresLease(postgres_url), PostgresLease(postgres_url)
    admin = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        assert await a.acquire() and not await b.acquire()
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()")
        assert killed == 1
        assert await a.held() is False
        assert await b.acquire() is True
        assert await a.acquire() is False  # reconnects, and finds b leading
    finally:
        await admin.close()
        await a.release()
        await b.release()


async def test_redis_lease_expires_unless_renewed(redis_url: str):
    client = connect(redis_url)
    a = RedisLease(client, ttl=1.0)
    b = RedisLease(client, ttl=1.0)
    try:
        assert await a.acquire() and not await b.acquire()
        for _ in range(6):  # renewed in time: kept past its TTL
            await asyncio.sleep(0.2)
            assert await a.held()
        assert not await b.acquire()
        await b.release()  # not b's to release
        assert await a.held()
        await asyncio.sleep(1.3)  # a stopped renewing (a dead process)
        assert await b.acquire()
        assert not await a.held()  # and a cannot take it back by renewing
        await b.release()
        assert await a.acquire()
    finally:
        await a.release()
        await client.aclose()


async def test_file_lease_is_exclusive_between_descriptors(tmp_path: Path):
    a, b = FileLease(tmp_path / "scheduler.lock"), FileLease(tmp_path / "scheduler.lock")
    assert await a.acquire() and not await b.acquire()
    assert (tmp_path / "scheduler.lock").read_text() == f"{os.getpid()}\n"
    await a.release()
    assert await b.acquire() and not await a.acquire()
    await b.release()
    await b.release()  # twice is fine


def test_auto_picks_postgres_or_the_file(tmp_path: Path):
    pg = "postgresql+asyncpg://u:p@db:5432/tsur"
    sqlite = f"sqlite+aiosqlite:///{tmp_path}/tsur.db"
    assert isinstance(lease_for("auto", database_url=pg, data_dir=tmp_path), PostgresLease)
    lease = lease_for("auto", database_url=sqlite, data_dir=tmp_path)
    assert isinstance(lease, FileLease) and lease.path == tmp_path / "scheduler.lock"
    assert isinstance(lease_for("none", database_url=pg, data_dir=tmp_path), NoLease)
    with pytest.raises(ValueError, match="PostgreSQL"):
        lease_for("postgres", database_url=sqlite, data_dir=tmp_path)
    with pytest.raises(ValueError, match="TSUR_REDIS_URL"):
        lease_for("redis", database_url=pg, data_dir=tmp_path)
    with pytest.raises(ValueError, match="TSUR_LEADER_LOCK"):
        lease_for("zookeeper", database_url=pg, data_dir=tmp_path)
    assert asyncpg_dsn(pg) == "postgresql://u:p@db:5432/tsur"


# --- the leader loop ------------------------------------------------------------------------

@dataclass
class Duties:
    """Records which contender runs its duties; fails if two ever overlap."""

    running: set[str] = field(default_factory=set)
    starts: list[str] = field(default_factory=list)
    overlap: bool = False

    def of(self, name: str):
        async def start():
            self.overlap |= bool(self.running)
            self.running.add(name)
            self.starts.append(name)

            async def stop() -> None:
                self.running.discard(name)

            return stop

        return start


async def wait_until(predicate, timeout: float = TAKEOVER) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture
async def run() -> AsyncIterator:
    """Runs leaders until the test ends; ``await run(leader)`` returns its stop event."""
    started: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(leader: Leader) -> asyncio.Event:
        stop = asyncio.Event()
        started.append((stop, asyncio.create_task(leader.run(stop))))
        return stop

    yield start
    for stop, _ in started:
        stop.set()
    await asyncio.gather(*(task for _, task in started))


@pytest.mark.parametrize("kind", ["postgres", "redis", "file"])
async def test_one_of_three_leads_and_a_standby_takes_over(kind, run, request, tmp_path):
    where = {"postgres": lambda: request.getfixturevalue("postgres_url"),
             "redis": lambda: request.getfixturevalue("redis_url"),
             "file": lambda: str(tmp_path)}[kind]()
    redis = connect(where) if kind == "redis" else None
    duties = Duties()
    leaders = {name: Leader(lease_for(kind, database_url=where if kind == "postgres" else "",
                                      data_dir=tmp_path, redis=redis, check_seconds=0.2),
                            duties.of(name), check_seconds=0.2)
               for name in ("a", "b", "c")}
    stops = {name: await run(leader) for name, leader in leaders.items()}
    await wait_until(lambda: len(duties.running) == 1)
    await asyncio.sleep(0.5)  # several ticks: nobody else starts
    [first] = duties.running
    assert duties.starts == [first]
    stops[first].set()  # the leader shuts down (gives the lease back)
    await wait_until(lambda: len(duties.running) == 1 and first not in duties.running)
    assert not duties.overlap and len(duties.starts) == 2
    assert sum(leader.leading for leader in leaders.values()) == 1
    if redis is not None:
        for stop in stops.values():
            stop.set()
        await asyncio.sleep(0.3)
        await redis.aclose()


async def test_a_leader_that_loses_its_session_stops_its_duties(postgres_url, run):
    duties = Duties()
    a = Leader(PostgresLease(postgres_url), duties.of("a"), check_seconds=0.1)
    await run(a)
    await wait_until(lambda: duties.running == {"a"})
    admin = await asyncpg.connect(asyncpg_dsn(postgres_url))
    try:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE application_name = 'tsur-leader'")
    finally:
        await admin.close()
    await wait_until(lambda: a.terms == 2)  # stepped down, reconnected, leads again
    assert duties.starts == ["a", "a"] and not duties.overlap


async def test_duties_that_fail_to_start_give_the_lease_back(tmp_path, run):
    async def broken():
        raise RuntimeError("no scheduler today")

    duties = Duties()
    a = Leader(FileLease(tmp_path / "x.lock"), broken, check_seconds=0.1)
    b = Leader(FileLease(tmp_path / "x.lock"), duties.of("b"), check_seconds=0.1)
    await run(a)
    await asyncio.sleep(0.05)
    await run(b)
    await wait_until(lambda: duties.running == {"b"})


async def test_without_the_database_a_contender_stands_by(run, caplog):
    duties = Duties()
    lease = PostgresLease("postgresql+asyncpg://nobody@127.0.0.1:9/none", timeout=0.5)
    leader = Leader(lease, duties.of("a"), check_seconds=0.1)
    stop = await run(leader)
    await asyncio.sleep(0.5)
    stop.set()
    assert not duties.starts and "standing by" in caplog.text


# --- processes killed with SIGKILL ----------------------------------------------------------

class Contenders:
    """Contender processes and every line they printed, in order."""

    def __init__(self) -> None:
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.lines: list[str] = []
        self._taken = 0  # lines before this index were matched by expect() already
        self._new = asyncio.Event()
        self._readers: list[asyncio.Task[None]] = []

    async def start(self, kind: str, where: str) -> int:
        check = "0.5" if kind == "redis" else "0.2"  # Redis: a TTL of 5 ticks, 2.5 s
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.deploy.contender", kind, where, check, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        self.procs[proc.pid] = proc
        self._readers.append(asyncio.create_task(self._read(proc)))
        deadline = time.monotonic() + 60
        while f"standby {proc.pid}" not in self.lines:
            await self._wait(deadline)
        return proc.pid

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            self.lines.append(line.decode().strip())
            self._new.set()

    async def _wait(self, deadline: float) -> None:
        self._new.clear()
        await asyncio.wait_for(self._new.wait(), max(0.0, deadline - time.monotonic()))

    async def expect(self, prefix: str, within: float = TAKEOVER) -> str:
        """The next line starting with ``prefix`` after the last one expected."""
        deadline = time.monotonic() + within
        while True:
            for index in range(self._taken, len(self.lines)):
                if self.lines[index].startswith(prefix):
                    self._taken = index + 1
                    return self.lines[index]
            await self._wait(deadline)

    def leaders_since_last_expected(self) -> list[str]:
        return [line for line in self.lines[self._taken:] if line.startswith("leading")]

    async def close(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        for reader in self._readers:
            reader.cancel()


@pytest.mark.parametrize("kind", ["postgres", "redis", "file"])
async def test_kill_9_the_leader_and_another_process_takes_over(kind, request, tmp_path):
    where = {"postgres": lambda: request.getfixturevalue("postgres_url"),
             "redis": lambda: request.getfixturevalue("redis_url"),
             "file": lambda: str(tmp_path)}[kind]()
    contenders = Contenders()
    try:
        for _ in range(3):
            await contenders.start(kind, where)
        first = int((await contenders.expect("leading")).split()[1])
        await asyncio.sleep(1.0)  # five ticks: no second leader
        assert contenders.leaders_since_last_expected() == []
        contenders.procs[first].send_signal(signal.SIGKILL)
        await contenders.procs[first].wait()
        killed_at = time.monotonic()
        second = int((await contenders.expect("leading")).split()[1])
        took = time.monotonic() - killed_at
        assert second != first and second in contenders.procs
        await asyncio.sleep(1.0)
        assert contenders.leaders_since_last_expected() == []  # exactly one successor
        print(f"{kind}: took over {took:.2f} s after kill -9")
        contenders.procs[second].send_signal(signal.SIGTERM)  # a clean stop hands over
        assert await contenders.expect(f"stopped {second}") == f"stopped {second}"
        assert int((await contenders.expect("leading")).split()[1]) not in (first, second)
    finally:
        await contenders.close()


# --- migrations under one lock ------------------------------------------------------------

@pytest.mark.parametrize("kind", ["postgres", "file"])
async def test_exclusive_blocks_serialise_across_connections(kind, request, tmp_path):
    url = (request.getfixturevalue("postgres_url") if kind == "postgres"
           else f"sqlite+aiosqlite:///{tmp_path}/tsur.db")
    inside: list[int] = []
    most = 0

    async def one(n: int) -> None:
        nonlocal most
        async with exclusive(url, tmp_path, "migrate"):
            inside.append(n)
            most = max(most, len(inside))
            await asyncio.sleep(0.05)
            inside.remove(n)

    await asyncio.gather(*(one(n) for n in range(4)))
    assert most == 1
