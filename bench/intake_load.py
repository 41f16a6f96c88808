"""The harness side of ``bench/intake.py``: bot deployments on a fake Bot API, simulated
citizens, pacing and latency recording.

Latency is measured from the moment an update is handed to the bot (queued for its
``getUpdates`` long poll, or just before it is POSTed to a webhook worker) to the moment
the fake Bot API records the bot's reply message (``sendMessage``/``sendPhoto``): the
fake's ``world.sent`` list is replaced by :class:`Recorder`, which timestamps each append
and wakes the citizen waiting for it. "full" latency waits for every message the step
produces (a step may answer with two), "first" for the first one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector

from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_state import SentMessage

ROOT = Path(__file__).resolve().parents[1]
PROBLEM = "В Каспийске на улице Ленина 5 третий день нет воды в доме, срочно"
STEP_TIMEOUT = 30.0


class Recorder(list):
    """``world.sent`` of a fake: also timestamps every message per chat and wakes waiters.

    The fake scans ``world.sent`` on every button press and edit, so :meth:`forget` drops
    the messages of citizens who are done (kept short, the harness stays O(1) per step).
    """

    def __init__(self) -> None:
        super().__init__()
        self.by_chat: dict[int, list[tuple[SentMessage, float]]] = defaultdict(list)
        self.waiters: dict[int, tuple[int, asyncio.Future[None]]] = {}

    def append(self, message: SentMessage) -> None:  # type: ignore[override]
        super().append(message)
        got = self.by_chat[message.chat_id]
        got.append((message, time.monotonic()))
        waiter = self.waiters.get(message.chat_id)
        if waiter and len(got) >= waiter[0] and not waiter[1].done():
            waiter[1].set_result(None)

    async def wait_count(self, chat_id: int, count: int, timeout: float) -> None:
        if len(self.by_chat[chat_id]) >= count:
            return
        future = asyncio.get_running_loop().create_future()
        self.waiters[chat_id] = (count, future)
        try:
            await asyncio.wait_for(future, timeout)
        finally:
            self.waiters.pop(chat_id, None)

    def forget(self, chat_ids: set[int]) -> None:
        self[:] = [m for m in self if m.chat_id not in chat_ids]
        for chat_id in chat_ids:
            self.by_chat.pop(chat_id, None)


@dataclass
class Deployment:
    """A fake Bot API and the bot process(es) talking to it."""

    name: str
    kind: str  # tsur | echo
    delivery: str  # polling | webhook
    workers: int
    tg: FakeTelegram
    recorder: Recorder
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    webhook_urls: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # sent with every webhook POST
    session: ClientSession | None = None
    per_step: list[int] = field(default_factory=list)  # replies per dialogue step
    pg_pid: int = 0  # its PostgreSQL server's postmaster, to count the server's CPU
    label: str = ""  # how the bench names it: tsur, echo-aiogram, echo-tsur

    def __post_init__(self) -> None:
        self.label = self.label or self.kind

    async def inject(self, user_id: int, make: Callable[[], dict[str, Any]]) -> float:
        """Create the update with the fake's helper and hand it to the bot; returns when."""
        update = make()
        if self.delivery == "polling":
            return time.monotonic()  # queued: the bot's pending long poll is woken now
        self.tg.world.updates.clear()  # nobody polls: delivered by POST below
        assert self.session is not None
        url = self.webhook_urls[user_id % len(self.webhook_urls)]  # sticky per citizen
        sent_at = time.monotonic()
        async with self.session.post(url, data=json.dumps(update), headers={
                "Content-Type": "application/json", **self.headers}) as r:
            if r.status != 200:
                raise RuntimeError(f"webhook answered {r.status}")
            # a Bot API call in the answer (tsur's answer to a button press) is made by
            # Telegram: by the fake here, as if requested
            self.tg.webhook_answered(r.status, await r.text(), r.content_type)
        return sent_at

    async def counts(self) -> Counter[str]:
        """The tsur processes' SQL statements, commits and thread round trips so far
        (``COUNTS`` lines they print on SIGUSR1); empty for the echo bot."""
        total: Counter[str] = Counter()
        if self.kind != "tsur":
            return total
        for proc in self.procs:
            assert proc.stdout is not None
            proc.send_signal(signal.SIGUSR1)
            line = await asyncio.to_thread(proc.stdout.readline)
            if line.startswith("COUNTS "):
                total.update(json.loads(line[len("COUNTS "):]))
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU seconds used so far by the bot processes (from /proc)."""
        return proc_cpu(proc.pid for proc in self.procs)

    def sys_seconds(self) -> float:
        """The system (kernel) part of :meth:`cpu_seconds`: sockets, wake-ups."""
        return proc_cpu((proc.pid for proc in self.procs), user=False)


def proc_cpu(pids: Any, *, user: bool = True) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) if user else 0) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def postgres_cpu(postmaster: int) -> float:
    """CPU seconds of a whole PostgreSQL server so far: the postmaster, its live children
    (backends, checkpointer, …) and the children it has reaped (``cutime``/``cstime``), so
    backends of connections opened and closed during a run count too."""
    total = 0
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(f) for f in fields[11:15])
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == postmaster:
                    total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def start(name: str, kind: str, delivery: str, workers: int, *, db: str = "",
                data_dir: str = "var", nlu: str = "keyword",
                profile_dir: str = "", pool_size: int = 0, max_overflow: int = -1,
                recheck: float = 0.0, echo_session: str = "aiogram",
                tsur_webhook: str = "product") -> Deployment:
    tg = FakeTelegram()
    await tg.__aenter__()
    recorder = Recorder()
    tg.world.sent = recorder
    dep = Deployment(name, kind, delivery, workers, tg, recorder,
                     label=f"echo-{echo_session}" if kind == "echo" else kind)
    if kind == "tsur" and tsur_webhook == "product":
        from bots.telegram.webhook import SECRET_HEADER, webhook_secret

        dep.headers[SECRET_HEADER] = webhook_secret(tg.token)  # as Telegram sends it
    for i in range(workers):
        cmd = [sys.executable, str(ROOT / "bench" / "intake_bot.py"), "--kind", kind,
               "--delivery", delivery, "--api", tg.base_url, "--token", tg.token,
               "--db", db, "--data-dir", data_dir, "--nlu", nlu,
               "--echo-session", echo_session, "--tsur-webhook", tsur_webhook]
        if pool_size:
            cmd += ["--db-pool-size", str(pool_size)]
        if max_overflow >= 0:
            cmd += ["--db-max-overflow", str(max_overflow)]
        if recheck:
            cmd += ["--what-if-recheck", str(recheck)]
        if profile_dir:
            cmd += ["--profile", str(Path(profile_dir) / f"{name}-{i}.prof")]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        dep.procs.append(proc)
    for proc in dep.procs:
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        if not line.startswith("READY"):
            await stop(dep)
            raise RuntimeError(f"{name}: a bot process failed to start ({line!r})")
        dep.webhook_urls.append(f"http://127.0.0.1:{int(line.split()[1])}/webhook")
    if delivery == "polling":
        await tg.wait_for(lambda: tg.calls_of("getUpdates"), timeout=60)
    else:
        dep.session = ClientSession(connector=TCPConnector(limit=0),
                                    timeout=ClientTimeout(total=STEP_TIMEOUT))
    return dep


async def stop(dep: Deployment) -> None:
    for proc in dep.procs:
        proc.terminate()
    for proc in dep.procs:
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
    if dep.session is not None:
        await dep.session.close()
    await dep.tg.__aexit__(None, None, None)


# --- what a citizen does ------------------------------------------------------------------

Step = Callable[[FakeTelegram, int, list[SentMessage]], Callable[[], dict[str, Any]]]


def _text(text: str) -> Step:
    return lambda tg, uid, last: lambda: tg.send_text(uid, text)


def _press(data: str) -> Step:
    def step(tg: FakeTelegram, uid: int, last: list[SentMessage]) -> Callable[[], dict]:
        for message in reversed(last):
            if any(b.get("callback_data") == data for row in message.buttons for b in row):
                return lambda: tg.press(uid, message, data)
        raise RuntimeError(f"citizen {uid}: no button {data!r} in {[m.text for m in last]}")
    return step


# The complaint dialogue of tests/e2e/test_telegram.py: 9 updates per complaint.
COMPLAINT: list[Step] = [
    _text("/start"),
    _text(PROBLEM),
    _press("cls:yes"),
    lambda tg, uid, last: lambda: tg.send_photo(uid),
    _press("photo:done"),
    lambda tg, uid, last: lambda: tg.send_location(uid, 42.8816, 47.6389),
    _press("mun:yes"),
    _press("consent:yes"),
    _press("cmp:submit"),
]
ECHO: list[Step] = [_text(f"Сообщение {i}: {PROBLEM}") for i in range(len(COMPLAINT))]


def script(dep: Deployment) -> list[Step]:
    return COMPLAINT if dep.kind == "tsur" else ECHO


async def calibrate(dep: Deployment, user_id: int, settle: float = 0.5) -> None:
    """Walk one citizen through the script slowly; learn how many messages each step gets."""
    if dep.kind == "echo":
        dep.per_step = [1] * len(ECHO)
        return
    rec, counts = dep.recorder, []
    dep.tg.add_user(user_id, language_code="ru")
    for step in COMPLAINT:
        before = len(rec.by_chat[user_id])
        last = [m for m, _ in rec.by_chat[user_id]]
        await dep.inject(user_id, step(dep.tg, user_id, last))
        await rec.wait_count(user_id, before + 1, STEP_TIMEOUT)
        while True:  # until the bot falls quiet
            n = len(rec.by_chat[user_id])
            await asyncio.sleep(settle)
            if n == len(rec.by_chat[user_id]):
                break
        counts.append(len(rec.by_chat[user_id]) - before)
    texts = [m.text or "" for m, _ in rec.by_chat[user_id]]
    if not any("зарегистрировано" in t for t in texts[-counts[-1]:]):
        raise RuntimeError(f"{dep.name}: calibration citizen got no registration: {texts}")
    dep.per_step = counts
    rec.forget({user_id})


@dataclass
class Result:
    messages: int = 0
    errors: int = 0
    elapsed: float = 0.0
    first: list[float] = field(default_factory=list)
    full: list[float] = field(default_factory=list)
    by_step: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    bot_cpu: float = 0.0
    bot_sys: float = 0.0  # the kernel's part of bot_cpu
    db_cpu: float = 0.0
    harness_cpu: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)  # Bot API calls the fake got
    sql: Counter[str] = field(default_factory=Counter)  # statements, commits, hops

    @property
    def rate(self) -> float:
        return self.messages / self.elapsed if self.elapsed else 0.0


class Pacer:
    """Hands out injection slots at ``rate`` per second (None: as fast as asked)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.t0 = time.monotonic()
        self.count = itertools.count()

    async def slot(self) -> None:
        if self.rate:
            due = self.t0 + next(self.count) / self.rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))


async def citizen(dep: Deployment, uid: int, pacer: Pacer, result: Result) -> None:
    rec, tg = dep.recorder, dep.tg
    tg.add_user(uid, language_code="ru")
    for index, (step, expected) in enumerate(zip(script(dep), dep.per_step, strict=True)):
        before = len(rec.by_chat[uid])
        last = [m for m, _ in rec.by_chat[uid][-4:]]
        make = step(tg, uid, last)
        await pacer.slot()
        t = await dep.inject(uid, make)
        try:
            await rec.wait_count(uid, before + expected, STEP_TIMEOUT)
        except TimeoutError:
            result.errors += 1
            return
        got = rec.by_chat[uid]
        result.first.append(got[before][1] - t)
        result.full.append(got[before + expected - 1][1] - t)
        result.by_step[index].append(result.full[-1])
        result.messages += 1


async def run(dep: Deployment, *, citizens: int, concurrency: int, rate: float | None,
              first_uid: int) -> Result:
    """``citizens`` citizens, ``concurrency`` of them at a time, each walking the script."""
    result = Result()
    pacer = Pacer(rate)
    uids = iter(range(first_uid, first_uid + citizens))
    done: set[int] = set()

    async def lane() -> None:
        for uid in uids:
            await citizen(dep, uid, pacer, result)
            done.add(uid)
            if len(done) >= 50:
                dep.recorder.forget(set(done))
                done.clear()

    sql0, calls0 = await dep.counts(), len(dep.tg.calls)
    cpu0, sys0 = dep.cpu_seconds(), dep.sys_seconds()
    hcpu0, t0 = time.process_time(), time.monotonic()
    db0 = postgres_cpu(dep.pg_pid) if dep.pg_pid else 0.0
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    result.elapsed = time.monotonic() - t0
    result.bot_cpu = dep.cpu_seconds() - cpu0
    result.bot_sys = dep.sys_seconds() - sys0
    result.harness_cpu = time.process_time() - hcpu0
    if dep.pg_pid:
        result.db_cpu = postgres_cpu(dep.pg_pid) - db0
    # a call carried by a webhook's answer is no request of its own: named apart
    result.calls = Counter(call.method + (" in webhook answers" if call.via_webhook else "")
                           for call in dep.tg.calls[calls0:])
    result.sql = await dep.counts() - sql0
    dep.recorder.forget(set(done))
    return result
