"""The scheduler only wakes ``run_due(now)``: jobs hold ids, the clock is injected, the
database decides what is due, and a new process picks up work that fell due while down."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from domain.calendar import WorkingCalendar
from domain.storage import Database
from notifications import scheduler as sched
from notifications.scheduler import Scheduler, build_scheduler, start_scheduler
from tests.fakes.dialogue import FixedClock
from tests.integration.test_surveys_sql import CLOSED_AT, closed_complaint, count, surveying

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


async def test_jobs_carry_ids_and_run_due_with_the_injected_clock():
    seen: list[tuple[str, datetime]] = []

    async def tick(now: datetime) -> None:
        seen.append(("a", now))

    scheduler = Scheduler(FixedClock(NOW), run_at_start=False)
    scheduler.every("a", timedelta(minutes=1), tick)
    scheduler.start()
    try:
        assert scheduler.aps is not None
        [job] = scheduler.aps.get_jobs()
        assert (job.id, job.func, job.args) == ("a", sched.wake, (scheduler.key, "a"))
        assert all(isinstance(arg, str) for arg in job.args)  # ids, not live objects
        assert job.trigger.interval == timedelta(minutes=1)
        await job.func(*job.args)  # exactly what APScheduler does at a tick
        assert seen == [("a", NOW)]
    finally:
        await scheduler.stop()
    await sched.wake(scheduler.key, "a")  # a stopped scheduler's stray tick does nothing
    assert seen == [("a", NOW)]


async def test_a_failing_run_is_logged_and_the_job_survives(caplog):
    calls = 0

    async def boom(now: datetime) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("database away")

    scheduler = Scheduler(FixedClock(NOW), run_at_start=False)
    scheduler.every("boom", timedelta(seconds=30), boom)
    scheduler.start()
    try:
        await sched.wake(scheduler.key, "boom")
        await sched.wake(scheduler.key, "boom")
    finally:
        await scheduler.stop()
    assert calls == 2 and "boom failed" in caplog.text


async def test_the_system_jobs_and_their_intervals(tmp_path):
    database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    scheduler = build_scheduler(database.uow, WorkingCalendar(), FixedClock(NOW),
                                deadline_every=timedelta(minutes=5),
                                survey_every=timedelta(minutes=1))
    assert {name: job.every for name, job in scheduler.jobs.items()} == {
        "deadlines": timedelta(minutes=5), "surveys": timedelta(minutes=1)}
    await database.dispose()


async def test_started_scheduler_resumes_due_work_at_once(db: Database):
    """A fresh process runs every job right at start: a reminder that fell due while no
    process ran goes out once, and a second process started alongside adds nothing."""
    db = surveying(db)
    await closed_complaint(db)
    clock = FixedClock(CLOSED_AT + timedelta(days=2))
    done = asyncio.Event()
    runs: list[int] = []
    schedulers = []
    for _ in range(2):
        scheduler = build_scheduler(db.uow, WorkingCalendar(), clock)
        original = scheduler.jobs["surveys"]

        async def counted(now: datetime, original: sched.Job = original) -> None:
            runs.append(await original.run_due(now))  # type: ignore[arg-type]
            if len(runs) == 2:
                done.set()

        scheduler.jobs["surveys"] = sched.Job("surveys", counted, original.every)
        scheduler.start()
        schedulers.append(scheduler)
    try:
        await asyncio.wait_for(done.wait(), timeout=30)  # an event, not a sleep
    finally:
        for scheduler in schedulers:
            await scheduler.stop()
    assert sorted(runs) == [0, 1]
    assert await count(db, "survey_reminder") == 1


async def test_start_scheduler_starts_and_stops(tmp_path):
    database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'y.db'}")
    scheduler = start_scheduler(database.uow, WorkingCalendar(), FixedClock(NOW),
                                run_at_start=False)
    assert scheduler.aps is not None and scheduler.aps.running
    assert {job.id for job in scheduler.aps.get_jobs()} == {"deadlines", "surveys"}
    await scheduler.stop()
    assert scheduler.aps is None
    await database.dispose()
