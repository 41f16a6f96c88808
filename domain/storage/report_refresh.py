"""Keeping ``report_daily``, ``report_monthly`` and ``report_hist`` in step with the
complaints.

A refresh recomputes, from the complaints, the rows of every local day that holds a
complaint changed since the last refresh — only the changed complaints' agencies, or the
whole day after a reclassification (the old agency is not recorded) or a rating — and the
day's histograms; then the months of those days: their counts summed in SQL from the days,
their histograms shifted by the replaced and the new day histograms. Changes are found by
two indexed markers, without any hook in the write path:

* ``complaint_history.id``: every change the ratings count (filing, status, answer,
  reclassification) appends a history row. The watermark is the highest id whose
  transaction is known finished: on SQLite the refresh is the only writer (``BEGIN
  IMMEDIATE``), so every lower id is committed; on PostgreSQL ids are drawn before commit,
  so the refresh first waits (up to ``wait`` seconds) for the transactions in flight when
  it read the highest id — if they are still running it processes what it sees but keeps
  the old watermark, and the next refresh looks again.
* ``surveys.answered_at`` (indexed by migration 0008): answers at or after the watermark
  minus :data:`OVERLAP` are read again (skipped when their count and the newest time are
  unchanged). A rating has no time of its own: the surveys waiting for one (state
  "rating", a partial index) are listed in ``report_rating_wait``, and a survey that
  enters or leaves that list marks its day. An answer that commits more than
  :data:`OVERLAP` after the time it records, and is rated before the next refresh, would
  be missed until a full rebuild (set ``report_state.offset_minutes`` to NULL).

The work is done from a read snapshot (SQLite: a deferred read transaction in WAL mode,
which takes no write lock; PostgreSQL: repeatable read): the recomputed rows are compared
with the stored ones and only the differences are written, in one short transaction that
first checks the state row is as the snapshot saw it (another refresh committed meanwhile:
the work is planned again). A change committed after the snapshot is past the watermarks it
saw, so the next refresh takes it.

Rows written behind the application's back (bulk loads, hand edits) have no history row:
rebuild after them. A refresh with a new day offset rebuilds everything. The ratings page
refreshes before it reads (so it is never stale) and the scheduler every
:data:`REFRESH_EVERY` (so the page usually finds little to do); the cost of a refresh
grows with the number of days touched since the last one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from sqlalchemy import select
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.storage.orm import ComplaintRow, HistoryRow
from domain.storage.report_daily import local_day
from domain.storage.report_daily_orm import ReportStateRow
from domain.storage.report_plan import OVERLAP, apply_plan, make_plan
from domain.storage.surveys_orm import SurveyRow

REFRESH_EVERY = timedelta(minutes=1)  # the scheduler's job; the ratings page refreshes too


@dataclass(frozen=True, slots=True)
class Refreshed:
    days: int  # local days recomputed
    full: bool  # rebuilt from scratch


async def _safe_history_mark(factory: async_sessionmaker[AsyncSession], wait: float
                             ) -> int | None:
    """PostgreSQL: the highest history id below which no transaction is still running,
    or None if those in flight did not finish within ``wait`` seconds."""
    async with factory() as session:
        snapshot, mark = (await session.execute(sql_text(
            "SELECT pg_current_snapshot()::text,"
            " (SELECT coalesce(max(id), 0) FROM complaint_history)"))).one()
    running = [x for x in snapshot.split(":")[2].split(",") if x]
    deadline = time.monotonic() + wait
    while running:
        async with factory() as session:
            states = await session.execute(sql_text(
                "SELECT x, pg_xact_status(CAST(x AS xid8)) FROM unnest(CAST(:xs AS text[]))"
                " AS x"), {"xs": running})
            running = [x for x, state in states if state == "in progress"]
        if running and time.monotonic() > deadline:
            return None
        if running:
            await asyncio.sleep(0.01)
    return int(mark)

@asynccontextmanager
async def _snapshot(factory: async_sessionmaker[AsyncSession], dialect: str
                    ) -> AsyncIterator[AsyncSession]:
    """A session reading one consistent snapshot without taking SQLite's write lock: the
    engine begins every transaction with ``BEGIN IMMEDIATE`` (domain.storage.uow), so that
    one is ended at once and a deferred one (a WAL read snapshot) begun in its place."""
    async with factory() as session:
        if dialect == "postgresql":
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        else:
            connection = await session.connection()
            await connection.exec_driver_sql("COMMIT")
            await connection.exec_driver_sql("BEGIN")
        try:
            yield session
        finally:
            await session.rollback()


ATTEMPTS = 3  # snapshot plans beaten by a concurrent refresh before one under the lock


async def refresh(factory: async_sessionmaker[AsyncSession], offset: timedelta, *,
                  wait: float = 2.0) -> Refreshed:
    """Bring the aggregates up to date (see the module's docstring). The work is computed
    from a read snapshot; only the writing of its result holds SQLite's write lock (a
    short transaction that first checks no other refresh committed meanwhile, else the
    plan is made again; changes committed after the snapshot are past its watermarks and
    wait for the next refresh)."""
    async with factory() as probe:
        dialect = probe.get_bind().dialect.name
    mark = await _safe_history_mark(factory, wait) if dialect == "postgresql" else None
    minutes = int(offset.total_seconds() // 60)
    for _ in range(ATTEMPTS):
        async with _snapshot(factory, dialect) as reading:
            plan = await make_plan(reading, dialect, offset, mark)
        async with factory() as session, session.begin():
            if await apply_plan(session, plan, minutes):
                return Refreshed(plan.days, plan.full)
    async with factory() as session, session.begin():  # under the lock from the start
        plan = await make_plan(session, dialect, offset, mark)
        await apply_plan(session, plan, minutes)
    return Refreshed(plan.days, plan.full)



@dataclass(frozen=True, slots=True)
class Pending:
    """What a refresh would do now: ``days`` local days to recompute (at least; None: a
    full rebuild), and when the aggregates were last refreshed."""

    days: int | None
    refreshed_at: datetime | None


async def pending(factory: async_sessionmaker[AsyncSession], offset: timedelta) -> Pending:
    """A cheap look at the work waiting for :func:`refresh` (the history rows past the
    watermark and the survey answers since the last refresh, by local day; indexed
    lookups of the changes only), so the ratings page can leave a long catch-up to the
    scheduler instead of making its reader wait."""
    c, h, s = ComplaintRow, HistoryRow, SurveyRow
    async with factory() as session:
        dialect = session.get_bind().dialect.name
        state = (await session.execute(select(ReportStateRow.offset_minutes,
                                              ReportStateRow.history_id,
                                              ReportStateRow.survey_at,
                                              ReportStateRow.refreshed_at)
                                       .where(ReportStateRow.id == 1))).one_or_none()
        if state is None or state[0] != int(offset.total_seconds() // 60):
            return Pending(None, None if state is None else state[3])
        _, mark, survey_at, refreshed_at = state
        day = local_day(c.created_at, dialect, offset)
        days = set((await session.execute(select(day).distinct().select_from(h).join(
            c, c.id == h.complaint_id).where(h.id > mark))).scalars())
        answered = s.answered_at >= survey_at - OVERLAP if survey_at else s.answered_at.is_not(
            None)
        days.update((await session.execute(select(day).distinct().select_from(s).join(
            c, c.id == s.complaint_id).where(answered))).scalars())
    return Pending(len(days), refreshed_at)


async def refresh_reports(factory: async_sessionmaker[AsyncSession], tz: tzinfo,
                          now: datetime) -> Refreshed:
    """The scheduler's job: :func:`refresh` at the offset of ``tz`` at ``now`` (so that the
    ratings page, which refreshes too, usually finds little to do)."""
    return await refresh(factory, now.astimezone(tz).utcoffset() or timedelta())
