"""The leader lease: exactly one process of a deployment runs the singleton duties.

The scheduler (and long polling, which Telegram and VK allow one consumer of) must run in
one process at a time, yet any number of ``tsur run --role scheduler`` processes may be
started: one holds the lease and leads, the others stand by, trying every
``TSUR_LEADER_CHECK_SECONDS``, and one of them takes over when the holder dies.

Leases (``TSUR_LEADER_LOCK``):

* ``postgres`` (``auto`` on PostgreSQL) — a session-level advisory lock,
  ``pg_try_advisory_lock``, held on a dedicated connection. The server releases it the
  moment that connection ends: a killed process's socket is closed by its kernel, so a
  standby takes over at its next try; a host that vanished is found by TCP keepalives
  (set on the connection: about 11 s). The holder checks its connection at every tick and
  steps down when it fails. The connection must reach PostgreSQL directly (or through a
  *session*-pooling proxy): a transaction-pooling PgBouncer would hand the lock to others.
* ``redis`` — ``SET key token NX PX ttl``, renewed at every tick by a script that checks
  the token; the TTL is five ticks, so a dead holder is replaced within about that.
* ``file`` (``auto`` on SQLite) — ``flock`` on ``<data dir>/scheduler.lock``. SQLite lives
  on one host, so every process that shares the database shares that file; the kernel
  drops the lock when the holder dies.
* ``none`` — always the leader (one process, or a deployment that runs exactly one).

No lease can stop a holder that is cut off but still running from finishing its current
tick while a new leader starts: that overlap is harmless, because every ``run_due`` claims
its rows atomically in the database (see :mod:`notifications.scheduler`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

LEASES = ("auto", "postgres", "redis", "file", "none")
StopDuties = Callable[[], Awaitable[None]]
KEEPALIVE = {"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2",
             "tcp_keepalives_count": "3"}


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name`` (locks are per database)."""
    return int.from_bytes(hashlib.sha256(f"tsur:{name}".encode()).digest()[:8], "big",
                          signed=True)


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """``postgresql+asyncpg://…`` as the ``postgresql://…`` DSN asyncpg takes."""
    from sqlalchemy.engine import make_url

    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(
        hide_password=False)


class Lease(Protocol):
    kind: str

    async def acquire(self) -> bool:
        """Try once, without waiting; ``True`` if this process holds the lease now."""
        ...

    async def held(self) -> bool:
        """Still ours? (Renews a lease that expires.) ``False`` means step down now."""
        ...

    async def release(self) -> None:
        """Give the lease up (if held) and free what it used; safe to call twice."""
        ...


class PostgresLease:
    kind = "postgres advisory lock"

    def __init__(self, url: str, name: str = "scheduler", *, timeout: float = 5.0) -> None:
        self.dsn = asyncpg_dsn(url)
        self.key = lock_key(name)
        self.timeout = timeout
        self._conn: Any = None
        self._held = False

    async def acquire(self) -> bool:
        import asyncpg

        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self.dsn, timeout=self.timeout,
                server_settings={"application_name": "tsur-leader", **KEEPALIVE})
        try:
            self._held = bool(await self._conn.fetchval(
                "SELECT pg_try_advisory_lock($1)", self.key, timeout=self.timeout))
        except BaseException:
            self._drop()
            raise
        return self._held

    async def held(self) -> bool:
        if not self._held or self._conn is None or self._conn.is_closed():
            return False
        try:
            await self._conn.fetchval("SELECT 1", timeout=self.timeout)
        except Exception as exc:  # the session, and with it the lock, is gone
            log.warning("leader: lost the PostgreSQL session holding the lease: %r", exc)
            self._drop()
            return False
        return True

    async def release(self) -> None:
        conn, held = self._conn, self._held
        self._conn, self._held = None, False
        if conn is None or conn.is_closed():
            return
        try:
            if held:
                await conn.execute("SELECT pg_advisory_unlock($1)", self.key,
                                   timeout=self.timeout)
            await conn.close(timeout=self.timeout)
        except Exception:
            conn.terminate()  # closing the session releases the lock anyway

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
        self._conn, self._held = None, False


RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLease:
    kind = "Redis lock"

    def __init__(self, client: Any, name: str = "scheduler", *, ttl: float = 10.0,
                 prefix: str = "tsur") -> None:
        self.client = client
        self.key = f"{prefix}:leader:{name}"
        self.ttl_ms = max(1, round(ttl * 1000))
        self.token = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex}"
        self._renew = client.register_script(RENEW)
        self._release = client.register_script(RELEASE)

    async def acquire(self) -> bool:
        if await self.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return True
        return await self.held()  # still ours from before a blip: renewed

    async def held(self) -> bool:
        try:
            return bool(await self._renew(keys=[self.key], args=[self.token, self.ttl_ms]))
        except Exception as exc:
            log.warning("leader: cannot renew the Redis lease: %r", exc)
            return False

    async def release(self) -> None:
        with contextlib.suppress(Exception):  # it expires by itself anyway
            await self._release(keys=[self.key], args=[self.token])


class FileLease:
    kind = "file lock"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    async def acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # who leads, for a curious operator
        self._fd = fd
        return True

    async def held(self) -> bool:
        return self._fd is not None  # an flock is never taken away from a live holder

    async def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the last descriptor drops the lock


class NoLease:
    kind = "no lease"

    async def acquire(self) -> bool:
        return True

    async def held(self) -> bool:
        return True

    async def release(self) -> None:
        return None


def lease_for(kind: str, *, database_url: str, data_dir: Path, redis: Any = None,
              check_seconds: float = 2.0, name: str = "scheduler") -> Lease:
    """The lease ``TSUR_LEADER_LOCK`` names (``auto``: PostgreSQL's or the file's)."""
    postgres = database_url.startswith("postgresql")
    if kind == "auto":
        kind = "postgres" if postgres else "file"
    if kind == "postgres":
        if not postgres:
            raise ValueError("TSUR_LEADER_LOCK=postgres needs a PostgreSQL database")
        return PostgresLease(database_url, name)
    if kind == "redis":
        if redis is None:
            raise ValueError("TSUR_LEADER_LOCK=redis needs TSUR_REDIS_URL")
        return RedisLease(redis, name, ttl=5 * check_seconds)
    if kind == "file":
        return FileLease(data_dir / f"{name}.lock")
    if kind == "none":
        return NoLease()
    raise ValueError(f"TSUR_LEADER_LOCK must be one of {', '.join(LEASES)}")


class Leader:
    """Runs the duties while holding ``lease``; stands by otherwise.

    ``start_duties`` starts them and returns the coroutine function that stops them. Every
    ``check_seconds`` the leader checks (renews) its lease and a standby tries to take it.
    """

    def __init__(self, lease: Lease, start_duties: Callable[[], Awaitable[StopDuties]], *,
                 check_seconds: float = 2.0, name: str = "scheduler") -> None:
        self.lease = lease
        self.start_duties = start_duties
        self.check_seconds = check_seconds
        self.name = name
        self.terms = 0  # how many times this process took the lead
        self._stop_duties: StopDuties | None = None
        self._complained_at = -float("inf")

    @property
    def leading(self) -> bool:
        return self._stop_duties is not None

    async def try_lead(self) -> bool:
        """One attempt to take the lease and start the duties; ``True`` if leading."""
        if self.leading:
            return True
        try:
            got = await self.lease.acquire()
        except Exception as exc:  # the database or Redis is away: try again next tick
            self._complain(exc)
            return False
        if not got:
            return False
        try:
            self._stop_duties = await self.start_duties()
        except Exception:
            log.exception("%s: could not start; giving the lease back", self.name)
            await self.lease.release()
            return False
        self.terms += 1
        log.warning("%s: active in process %s (holds the %s)", self.name, os.getpid(),
                    self.lease.kind)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Lead or stand by until ``stop`` is set; then stop the duties, release."""
        try:
            while not stop.is_set():
                if not self.leading:
                    await self.try_lead()
                elif not await self.lease.held():
                    log.warning("%s: lost the %s; stopping and standing by", self.name,
                                self.lease.kind)
                    await self._step_down()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.check_seconds)
        finally:
            await self._step_down()

    async def _step_down(self) -> None:
        stop_duties, self._stop_duties = self._stop_duties, None
        try:
            if stop_duties is not None:
                await stop_duties()
        finally:
            await self.lease.release()

    def _complain(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._complained_at >= 60:
            self._complained_at = now
            log.warning("%s: cannot reach the %s (%r); standing by", self.name,
                        self.lease.kind, exc)


@contextlib.asynccontextmanager
async def exclusive(database_url: str, data_dir: Path, name: str) -> AsyncIterator[None]:
    """Hold a blocking lock named ``name`` across every process of the deployment (a
    PostgreSQL advisory lock, or an ``flock`` next to the SQLite file) for the block:
    migrations at start-up, so processes started together never upgrade at once."""
    if database_url.startswith("postgresql"):
        import asyncpg

        key = lock_key(name)
        conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=30,
                                     server_settings={"application_name": f"tsur-{name}"})
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", key)
            yield
        finally:
            try:
                await conn.close(timeout=5)  # ends the session, which releases the lock
            except Exception:
                conn.terminate()
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
