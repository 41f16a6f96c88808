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

Rows written behind the application's back (bulk loads, hand edits) have no history row:
rebuild after them. A refresh with a new day offset rebuilds everything. The ratings page
refreshes before it reads (so it is never stale) and the scheduler every
:data:`REFRESH_EVERY` (so the page usually finds little to do); the cost of a refresh
grows with the number of days touched since the last one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, cast

from sqlalchemy import (
    Integer,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.storage.orm import ComplaintRow, HistoryRow
from domain.storage.report_daily import (
    bucket,
    day_start,
    hist_text,
    local_day,
    month_of,
    next_month,
    parse_hist,
)
from domain.storage.report_daily_orm import (
    COUNTS,
    RATING_WAIT,
    ReportDayRow,
    ReportHistRow,
    ReportMonthRow,
    ReportRatingWaitRow,
    ReportStateRow,
)
from domain.storage.reports import complaints_by, hours, reopened_ever
from domain.storage.surveys_orm import SurveyRow

OVERLAP = timedelta(minutes=10)
REFRESH_EVERY = timedelta(minutes=1)  # the scheduler's job; the ratings page refreshes too
CHUNK = 500
DayKey = tuple[int, str, str, str, str]  # day, agency, municipality ("" unknown), sector, …


@dataclass(frozen=True, slots=True)
class Refreshed:
    days: int  # local days recomputed
    full: bool  # rebuilt from scratch


def _table(model: Any) -> Table:
    """A mapped class's table, for Core statements (executemany without the ORM)."""
    return cast(Table, model.__table__)


def _ranges(days: Iterable[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for day in sorted(set(days)):
        if out and out[-1][1] == day:
            out[-1] = (out[-1][0], day + 1)
        else:
            out.append((day, day + 1))
    return out


def _count(condition: Any) -> Any:
    return case((condition, 1), else_=0)


Pair = tuple[dict[int, int], dict[int, int]]  # histograms: first answer, resolution
HistKey = tuple[int, str, str]  # start day, dim, key


def _indexed(dialect: str, days: tuple[int, int] | None, offset: timedelta,
             agencies: Iterable[str] | None = None) -> tuple[Any, list[Any]]:
    """The complaints read through ``ix_complaints_report`` on SQLite (its planner would
    read every row of a day to filter an agency) and the conditions selecting the local
    days ``[first, end)`` (None: all) and ``agencies`` on its columns."""
    c = complaints_by("ix_complaints_report", dialect).c
    where: list[Any] = []
    if days is not None:
        where += [c.created_at >= day_start(days[0], offset),
                  c.created_at < day_start(days[1], offset)]
    if agencies is not None:
        where.append(c.agency.in_(sorted(agencies)))
    return c, where


async def _write_counts(session: AsyncSession, dialect: str, offset: timedelta,
                        days: tuple[int, int] | None, agencies: Iterable[str] | None = None
                        ) -> None:
    """Insert the ``report_daily`` rows of the complaints of local ``days`` (None: all),
    only of ``agencies`` if given (summed in SQL; the survey answers in a second pass, by
    key)."""
    s = SurveyRow
    c, where = _indexed(dialect, days, offset, agencies)
    day = local_day(c.created_at, dialect, offset)
    municipality = func.coalesce(c.municipality, "")
    answered, resolved = c.first_answered_at.is_not(None), c.resolved_at.is_not(None)

    sums = [func.count(),
            func.sum(_count(and_(answered, c.first_answered_at <= c.first_answer_due))),
            func.sum(_count(and_(resolved, c.resolved_at <= c.resolution_due))),
            func.sum(_count(c.status.in_(("closed", "rejected")))),
            func.sum(_count(and_(c.status == "closed", answered))),
            func.sum(_count(reopened_ever(dialect, c.id))),
            *(literal(0, Integer) for _ in range(4))]  # surveys: below
    keys = (day, c.agency, municipality, c.sector, c.category)
    query = select(*keys, *sums).where(*where).group_by(*keys)
    await session.execute(insert(_table(ReportDayRow)).from_select(
        ["day", "agency", "municipality", "sector", "category", *COUNTS, "rating_sum"],
        query))
    surveys = (select(*keys, func.count(), func.coalesce(func.sum(_count(s.solved.is_(True))), 0),
                      func.count(s.rating), func.coalesce(func.sum(s.rating), 0))
               .select_from(s).join(c.id.table, c.id == s.complaint_id)
               .where(s.answered_at.is_not(None), *where).group_by(*keys))
    r = _table(ReportDayRow).c
    found = [{"d": int(d), "a": a, "m": m, "s": sector, "c": category, "n": int(n),
              "ok": int(ok), "r": int(rated), "rs": float(total)}
             for d, a, m, sector, category, n, ok, rated, total in await session.execute(
                 surveys)]
    if found:
        await session.execute(
            update(_table(ReportDayRow))
            .where(r.day == bindparam("d"), r.agency == bindparam("a"),
                   r.municipality == bindparam("m"), r.sector == bindparam("s"),
                   r.category == bindparam("c"))
            .values(surveyed=bindparam("n"), solved=bindparam("ok"), rated=bindparam("r"),
                    rating_sum=bindparam("rs")), found)


async def _day_hists(session: AsyncSession, dialect: str, offset: timedelta,
                     days: tuple[int, int] | None) -> dict[HistKey, Pair]:
    """The histograms of the complaints of local ``days`` (None: all), per day and
    dimension. Whole days: every column read is in ``ix_complaints_report``, so SQLite
    reads no table."""
    c, where = _indexed(dialect, days, offset)
    day = local_day(c.created_at, dialect, offset)
    municipality = func.coalesce(c.municipality, "")
    answered, resolved = c.first_answered_at.is_not(None), c.resolved_at.is_not(None)
    durations = (select(day, c.agency, municipality, hours(c.first_answered_at, c.created_at,
                                                            dialect),
                        hours(c.resolved_at, c.created_at, dialect))
                 .where(*where, or_(answered, resolved)))
    out: dict[HistKey, Pair] = {}
    for d, agency, place, first, resolution in await session.execute(durations):
        fb = None if first is None else bucket(float(first))
        rb = None if resolution is None else bucket(float(resolution))
        for key in ((d, "agency", agency), (d, "municipality", place), (d, "total", "")):
            pair = out.get(key)
            if pair is None:
                pair = out[key] = ({}, {})
            if fb is not None:
                pair[0][fb] = pair[0].get(fb, 0) + 1
            if rb is not None:
                pair[1][rb] = pair[1].get(rb, 0) + 1
    return out


async def _write_hists(session: AsyncSession, span: str, hists: dict[HistKey, Pair]) -> None:
    rows = [{"span": span, "start": start, "dim": dim, "key": key,
             "first_hist": hist_text(first), "resolution_hist": hist_text(resolution)}
            for (start, dim, key), (first, resolution) in hists.items()]
    for i in range(0, len(rows), CHUNK * 10):
        await session.execute(insert(_table(ReportHistRow)), rows[i:i + CHUNK * 10])


async def _read_hists(session: AsyncSession, span: str, starts: Iterable[int]
                      ) -> dict[HistKey, Pair]:
    h, out = ReportHistRow, {}
    wanted = sorted(set(starts))
    for i in range(0, len(wanted), CHUNK):
        rows = await session.execute(
            select(h.start, h.dim, h.key, h.first_hist, h.resolution_hist)
            .where(h.span == span, h.start.in_(wanted[i:i + CHUNK])))
        for start, dim, key, first_text, resolution_text in rows:
            out[(start, dim, key)] = (parse_hist(first_text), parse_hist(resolution_text))
    return out


def _shift(into: dict[int, int], other: dict[int, int], sign: int) -> None:
    for b, n in other.items():
        into[b] = into.get(b, 0) + sign * n


async def _write_months(session: AsyncSession, months: set[int],
                        day_hists: dict[HistKey, Pair], replaced: dict[HistKey, Pair] | None
                        ) -> None:
    """Sum ``months`` from their days in SQL. Their histograms: from ``day_hists`` when it
    holds all their days (``replaced`` None), else the stored month's, less the
    ``replaced`` day histograms, plus the new ``day_hists``."""
    d, m, h = ReportDayRow, ReportMonthRow, ReportHistRow
    held = {} if replaced is None else await _read_hists(session, "month", months)
    for changes, sign in (((replaced or {}).items(), -1), (day_hists.items(), 1)):
        for (day, dim, key), (first, resolution) in changes:
            pair = held.setdefault((month_of(day), dim, key), ({}, {}))
            _shift(pair[0], first, sign)
            _shift(pair[1], resolution, sign)
    for month in sorted(months):
        await session.execute(delete(m).where(m.month == month))
        await session.execute(delete(h).where(h.span == "month", h.start == month))
        sums = [func.sum(getattr(d, n)) for n in (*COUNTS, "rating_sum")]
        await session.execute(insert(_table(m)).from_select(
            ["month", "agency", "municipality", *COUNTS, "rating_sum"],
            select(literal(month, Integer), d.agency, d.municipality, *sums)
            .where(d.day >= month, d.day < next_month(month))
            .group_by(d.agency, d.municipality)))
    await _write_hists(session, "month", {
        k: v for k, v in held.items() if k[0] in months and (any(v[0].values()) or
                                                             any(v[1].values()))})


async def _answers_since(session: AsyncSession, newest: datetime | None) -> int:
    """Survey answers recorded within :data:`OVERLAP` before ``newest``: a new answer in
    that window changes the count even when it does not change the newest time."""
    if newest is None:
        return 0
    s = SurveyRow
    return int((await session.execute(select(func.count()).select_from(s).where(
        s.answered_at >= newest - OVERLAP))).scalar_one())


async def _rating_moves(session: AsyncSession, day: Any) -> set[int]:
    """Days of the surveys that started or stopped waiting for a rating since the last
    refresh (a rating has no time of its own); ``report_rating_wait`` is brought up to
    date."""
    s, c, w = SurveyRow, ComplaintRow, ReportRatingWaitRow
    waiting: dict[int, int] = dict((await session.execute(
        select(s.id, day).join(c, c.id == s.complaint_id).where(
            sql_text("surveys." + RATING_WAIT)))).all())
    before: dict[int, int] = dict(
        (await session.execute(select(w.survey_id, w.day))).all())
    gone, new = before.keys() - waiting.keys(), waiting.keys() - before.keys()
    for ids in (sorted(gone)[i:i + CHUNK] for i in range(0, len(gone), CHUNK)):
        await session.execute(delete(w).where(w.survey_id.in_(ids)))
    if new:
        await session.execute(insert(_table(w)), [{"survey_id": i, "day": int(waiting[i])}
                                                    for i in new])
    return {int(before[i]) for i in gone} | {int(waiting[i]) for i in new}


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


async def refresh(factory: async_sessionmaker[AsyncSession], offset: timedelta, *,
                  wait: float = 2.0) -> Refreshed:
    """Bring the aggregates up to date (see the module's docstring); concurrent refreshes
    queue on the state row."""
    async with factory() as probe:
        dialect = probe.get_bind().dialect.name
    mark = await _safe_history_mark(factory, wait) if dialect == "postgresql" else None
    minutes = int(offset.total_seconds() // 60)
    c, h, s = ComplaintRow, HistoryRow, SurveyRow
    async with factory() as session, session.begin():
        state = (await session.execute(select(ReportStateRow).where(ReportStateRow.id == 1)
                                       .with_for_update())).scalar_one_or_none()
        if state is None:
            state = ReportStateRow(id=1, offset_minutes=None, history_id=0)
            session.add(state)
        if dialect != "postgresql":
            mark = int((await session.execute(select(func.coalesce(func.max(h.id), 0)))
                        ).scalar_one())
        newest_answer = (await session.execute(select(func.max(s.answered_at)))).scalar()
        full = state.offset_minutes != minutes
        day = local_day(c.created_at, dialect, offset)
        if full:
            await _rating_moves(session, day)
            for table in (ReportDayRow, ReportMonthRow, ReportHistRow):
                await session.execute(delete(table))
            await _write_counts(session, dialect, offset, None)
            hists = await _day_hists(session, dialect, offset, None)
            replaced = None
            days = set(await session.scalars(select(ReportDayRow.day).distinct()))
        else:
            # the days to recompute: whole (None) or only some agencies' rows
            scope: dict[int, set[str] | None] = {}

            def widen(d: Any, agency: str | None = None) -> None:
                found = scope.setdefault(int(d), set())
                if agency is None:
                    scope[int(d)] = None
                elif found is not None:
                    found.add(agency)

            changed = select(day, c.agency, h.kind).distinct().select_from(h).join(
                c, c.id == h.complaint_id).where(h.id > state.history_id)
            for d, agency, kind in await session.execute(changed):
                widen(d, None if kind == "reclassified" else agency)  # old agency: unknown
            same = (newest_answer == state.survey_at and state.survey_count ==
                    await _answers_since(session, state.survey_at))
            if newest_answer is not None and not same:
                since = state.survey_at - OVERLAP if state.survey_at else None
                answered = select(day, c.agency).distinct().select_from(s).join(
                    c, c.id == s.complaint_id).where(
                    s.answered_at >= since if since else s.answered_at.is_not(None))
                for d, agency in await session.execute(answered):
                    widen(d, agency)
            for d in await _rating_moves(session, day):
                widen(d)
            days = set(scope)
            d_ = ReportDayRow
            for d, agencies in sorted(scope.items()):
                gone = delete(d_).where(d_.day == d)
                if agencies is not None:
                    gone = gone.where(d_.agency.in_(sorted(agencies)))
                await session.execute(gone)
                await _write_counts(session, dialect, offset, (d, d + 1), agencies)
            hists = {}
            replaced = await _read_hists(session, "day", days)
            for i in range(0, len(days), CHUNK):
                chunk = sorted(days)[i:i + CHUNK]
                await session.execute(delete(ReportHistRow).where(
                    ReportHistRow.span == "day", ReportHistRow.start.in_(chunk)))
            for start, end in _ranges(days):
                hists.update(await _day_hists(session, dialect, offset, (start, end)))
        await _write_hists(session, "day", hists)
        await _write_months(session, {month_of(d) for d in days}, hists,
                            None if full else replaced)
        state.offset_minutes = minutes
        if mark is not None:
            state.history_id = max(state.history_id, mark)
        state.survey_at = newest_answer
        state.survey_count = await _answers_since(session, newest_answer)
        state.refreshed_at = datetime.now().astimezone()
    return Refreshed(len(days), full)



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
