"""Ctrl-C while a scheduled job is running: ``tsur run`` stops its scheduler first, and the
scheduler promises to let a run in progress finish (each batch is a transaction)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from notifications.scheduler import Scheduler
from tests.fakes.messenger import FakeClock


async def test_stopping_the_scheduler_lets_the_running_job_finish(
        caplog: pytest.LogCaptureFixture) -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow_run_due(now: object) -> None:
        started.set()
        await asyncio.sleep(0.3)  # a batch of broadcast recipients being written, say
        finished.set()

    scheduler = Scheduler(FakeClock().now)
    scheduler.every("broadcasts", timedelta(seconds=30), slow_run_due)
    scheduler.start()  # runs the job at once
    await asyncio.wait_for(started.wait(), 5)
    await scheduler.stop()
    assert finished.is_set()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
