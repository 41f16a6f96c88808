"""The scheduler: APScheduler 3 wakes ``run_due(now)`` functions at intervals; nothing more.

The database is the source of truth for what is due (survey reminders and follow-ups,
deadlines), and every ``run_due`` claims its work atomically there. So the scheduler keeps
no state worth losing: a restart simply wakes everything again (each job also runs once
right at start, which picks up whatever fell due while the process was down), and two
processes running the same jobs split or skip work instead of doing it twice.

Jobs carry ids, never live objects: each job is the module-level :func:`wake` with two
strings, the scheduler's key and the job's name. ``wake`` looks the ``run_due`` up in
:data:`_RUNNING`, which holds only schedulers that were started (nothing is registered at
import). A job could therefore move to a persistent job store unchanged; the callables
themselves are closures over plain settings and the unit-of-work factory.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from domain.calendar import WorkingCalendar
from notifications.deadlines import NEAR_RATIO, DeadlineUnitOfWork, run_deadline_check
from notifications.surveys import run_due_surveys

log = logging.getLogger(__name__)

RunDue = Callable[[datetime], Awaitable[object]]
_RUNNING: dict[str, Scheduler] = {}


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    run_due: RunDue
    every: timedelta


async def wake(key: str, name: str) -> None:
    """The job function APScheduler calls: run job ``name`` of scheduler ``key`` once."""
    scheduler = _RUNNING.get(key)
    if scheduler is None:  # stopped meanwhile
        return
    await scheduler.run(name)


class Scheduler:
    """Interval jobs over an :class:`AsyncIOScheduler`; ``clock`` gives ``now`` to each run."""

    def __init__(self, clock: Callable[[], datetime], *, run_at_start: bool = True) -> None:
        self.clock = clock
        self.run_at_start = run_at_start
        self.key = uuid.uuid4().hex
        self.jobs: dict[str, Job] = {}
        self._aps: AsyncIOScheduler | None = None
        self._tasks: set[asyncio.Task[object]] = set()

    def every(self, name: str, interval: timedelta, run_due: RunDue) -> None:
        if self._aps is not None:
            raise RuntimeError("add jobs before start()")
        self.jobs[name] = Job(name, run_due, interval)

    async def run(self, name: str) -> None:
        """Run job ``name`` now (what each tick does); errors are logged, not raised, so
        one failed tick does not stop the job."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self.jobs[name].run_due(self.clock())
        except asyncio.CancelledError:
            # only at shutdown; the run's finished batches are committed, the rest is due
            log.info("scheduled job %s was cancelled; it resumes at the next start", name)
        except Exception:
            log.exception("scheduled job %s failed; it runs again at the next tick", name)
        finally:
            if task is not None:
                self._tasks.discard(task)

    def start(self) -> None:
        """Start ticking (inside the running event loop)."""
        if self._aps is not None:
            raise RuntimeError("scheduler already started")
        aps = AsyncIOScheduler(timezone="UTC")
        for job in self.jobs.values():
            first = {"next_run_time": datetime.now(aps.timezone)} if self.run_at_start else {}
            aps.add_job(wake, "interval", args=[self.key, job.name], id=job.name,
                        name=job.name, seconds=job.every.total_seconds(), max_instances=1,
                        coalesce=True, misfire_grace_time=int(job.every.total_seconds()),
                        replace_existing=True, **first)
        _RUNNING[self.key] = self
        self._aps = aps
        aps.start()

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop ticking and let a run in progress finish (each batch is a transaction, so
        a run cut short by the timeout loses nothing)."""
        _RUNNING.pop(self.key, None)  # a tick that fires from now on does nothing
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:  # a run stuck longer than that: cut it short
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._aps is not None:  # only now: shutting APScheduler down cancels its jobs
            self._aps.shutdown(wait=False)
            self._aps = None

    @property
    def aps(self) -> AsyncIOScheduler | None:
        return self._aps


def build_scheduler(uow_factory: Callable[[], DeadlineUnitOfWork], calendar: WorkingCalendar,
                    clock: Callable[[], datetime], *,
                    deadline_every: timedelta = timedelta(minutes=5),
                    survey_every: timedelta = timedelta(minutes=1),
                    near_ratio: float = NEAR_RATIO, backoffice_chat: str = "",
                    operator_language: str = "ru", run_at_start: bool = True) -> Scheduler:
    """The deadline check and the survey reminders/follow-ups, not yet started."""
    scheduler = Scheduler(clock, run_at_start=run_at_start)
    scheduler.every("deadlines", deadline_every, partial(
        _deadlines, uow_factory, calendar, near_ratio, backoffice_chat, operator_language))
    scheduler.every("surveys", survey_every, partial(run_due_surveys, uow_factory))
    return scheduler


def start_scheduler(uow_factory: Callable[[], DeadlineUnitOfWork], calendar: WorkingCalendar,
                    clock: Callable[[], datetime], **options: object) -> Scheduler:
    """:func:`build_scheduler` and start it; ``await scheduler.stop()`` on shutdown."""
    scheduler = build_scheduler(uow_factory, calendar, clock, **options)  # type: ignore[arg-type]
    scheduler.start()
    return scheduler


async def _deadlines(uow_factory: Callable[[], DeadlineUnitOfWork], calendar: WorkingCalendar,
                     near_ratio: float, chat_id: str, language: str, now: datetime) -> int:
    return await run_deadline_check(uow_factory, calendar, now, near_ratio=near_ratio,
                                    chat_id=chat_id, language=language)
