"""Crash trials: start ``tsur run``, let the workload run a random while, ``kill -9``, again.

The workload (citizens, operators, a broadcast) runs in the test process all along and
only makes progress while ``tsur run`` is up; :class:`Trials` says when it is. Every
start is a *life*; a message sent twice in two lives was in flight when the first life
was killed, which is the one duplicate per worker and kill the outbox allows.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.crash.launcher import Launcher, Tsur

TRIALS = int(os.environ.get("TSUR_CRASH_TRIALS", "20"))


def seed_from_env() -> int:
    """``TSUR_CRASH_SEED`` or a fresh one (printed, so a failing run can be repeated)."""
    raw = os.environ.get("TSUR_CRASH_SEED")
    return int(raw) if raw else random.SystemRandom().randrange(1, 10**9)


@dataclass
class Trials:
    """Runs ``tsur run`` through ``n`` lives killed at random, then one life left running."""

    launcher: Launcher
    rng: random.Random
    ready: Callable[[Tsur], Awaitable[None]]
    min_up: float = 0.2
    max_up: float = 2.0
    up: asyncio.Event = field(default_factory=asyncio.Event)
    starts: list[float] = field(default_factory=list)  # monotonic start of each life
    ready_at: list[float] = field(default_factory=list)  # when each life was ready
    kills: list[float] = field(default_factory=list)
    current: Tsur | None = None
    after_kill: Callable[[int], None] | None = None

    async def start(self) -> Tsur:
        self.starts.append(time.monotonic())
        tsur = await self.launcher.start()
        await self.ready(tsur)
        self.ready_at.append(time.monotonic())
        self.current = tsur
        self.up.set()
        return tsur

    async def kill(self) -> None:
        assert self.current is not None
        self.up.clear()
        await self.current.kill()
        self.kills.append(time.monotonic())
        self.current = None

    async def run(self, n: int = TRIALS) -> Tsur:
        """``n`` lives killed after a random ``[min_up, max_up]`` seconds; returns the
        last, still running one."""
        for trial in range(n):
            await self.start()
            await asyncio.sleep(self.rng.uniform(self.min_up, self.max_up))
            await self.kill()
            if self.after_kill is not None:
                self.after_kill(trial)
        return await self.start()

    def life_of(self, at: float) -> int:
        """Which life (0-based) a moment belongs to: the last one started by then.
        A request the fake handles just after a kill still belongs to the killed life."""
        life = 0
        for index, started in enumerate(self.starts):
            if started <= at:
                life = index
        return life

    async def when_up(self) -> None:
        await self.up.wait()


@dataclass
class Duplicates:
    """Sends of one logical message beyond the first, attributed to the killed lives."""

    per_life: Counter[int] = field(default_factory=Counter)
    unexplained: list[tuple[Hashable, list[int]]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.per_life.values()) + len(self.unexplained)

    @property
    def worst(self) -> int:
        return max(self.per_life.values(), default=0)

    def per_kill(self, kills: int) -> str:
        """Duplicates charged to each kill, one digit per trial."""
        return "".join(str(min(self.per_life[life], 9)) for life in range(kills))


def duplicates(sends: Iterable[tuple[Hashable, float]], trials: Trials) -> Duplicates:
    """``sends`` are (message key, time the platform got it). A repeated send is allowed
    only in a later life than the send before it (the earlier life was killed with it in
    flight); it is charged to that killed life."""
    lives: dict[Hashable, list[int]] = defaultdict(list)
    for key, at in sorted(sends, key=lambda s: s[1]):
        lives[key].append(trials.life_of(at))
    result = Duplicates()
    for key, seen in lives.items():
        for before, after in zip(seen, seen[1:], strict=False):
            if after > before:
                result.per_life[before] += 1
            else:
                result.unexplained.append((key, seen))
    return result


async def wait_until(predicate: Callable[[], Awaitable[bool] | bool], timeout: float,
                     what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if not isinstance(value, bool):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(every)


# Known and reported: ``Scheduler.stop`` lets APScheduler cancel a job that is running
# when ``tsur run`` is stopped (tests/faults/test_fault_shutdown.py); its traceback is no
# failure of the suite under trial.
KNOWN = ("apscheduler.executors.default: Job", "asyncio.exceptions.CancelledError")


def tracebacks(text: str) -> list[str]:
    """The tracebacks in a log, each with the line before it (the logger's message) and
    the exception, leaving out the known one above."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        if not line.startswith("Traceback"):
            continue
        end = next((j for j in range(i + 1, len(lines)) if not lines[j].startswith(" ")),
                   len(lines) - 1)
        before = lines[i - 1] if i else ""
        if KNOWN[0] in before and lines[end].startswith(KNOWN[1]):
            continue
        found.append("\n".join([before, *lines[i:i + 3], "  ...", lines[end]]))
    return found


def summary_line(name: str, **counts: Any) -> str:
    return f"{name}: " + ", ".join(f"{k}={v}" for k, v in counts.items())
