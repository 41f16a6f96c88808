"""Recomputing the ratings' aggregates for :mod:`domain.storage.report_refresh`: what a
refresh reads (the changed days, their complaints' rows and histograms, the stored rows they
replace) into a :class:`Plan`, and the writing of its differences (:func:`apply_plan`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession

from domain.storage.orm import ComplaintRow, HistoryRow
from domain.storage.report_daily import (
    bucket,
    day_start,
    hist_text,
    local_day,
    month_of,
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
CHUNK = 500
DayKey = tuple[int, str, str, str, str]  # day, agency, municipality ("" unknown), sector, …


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


async def _day_rows(session: AsyncSession, dialect: str, offset: timedelta,
                   days: tuple[int, int] | None, agencies: Iterable[str] | None = None
                   ) -> dict[DayKey, list[Any]]:
    """The ``report_daily`` rows (:data:`COUNTS` then ``rating_sum``) of the complaints of
    local ``days`` (None: all), only of ``agencies`` if given: summed in SQL, the survey
    answers in a second query by key."""
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
            func.sum(_count(reopened_ever(dialect, c.id)))]
    keys = (day, c.agency, municipality, c.sector, c.category)
    out: dict[DayKey, list[Any]] = {}
    for d, a, m, sector, category, *values in await session.execute(
            select(*keys, *sums).where(*where).group_by(*keys)):
        out[(int(d), a, m, sector, category)] = [int(v) for v in values] + [0, 0, 0, 0.0]
    surveys = (select(*keys, func.count(), func.coalesce(func.sum(_count(s.solved.is_(True))), 0),
                      func.count(s.rating), func.coalesce(func.sum(s.rating), 0))
               .select_from(s).join(c.id.table, c.id == s.complaint_id)
               .where(s.answered_at.is_not(None), *where).group_by(*keys))
    for d, a, m, sector, category, n, ok, rated, total in await session.execute(surveys):
        row = out.get((int(d), a, m, sector, category))
        if row is not None:
            row[6:] = [int(n), int(ok), int(rated), float(total)]
    return out


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


async def _answers_since(session: AsyncSession, newest: datetime | None) -> int:
    """Survey answers recorded within :data:`OVERLAP` before ``newest``: a new answer in
    that window changes the count even when it does not change the newest time."""
    if newest is None:
        return 0
    s = SurveyRow
    return int((await session.execute(select(func.count()).select_from(s).where(
        s.answered_at >= newest - OVERLAP))).scalar_one())


async def _rating_moves(session: AsyncSession, day: Any
                        ) -> tuple[set[int], list[int], list[dict[str, int]]]:
    """The days of the surveys that started or stopped waiting for a rating since the last
    refresh (a rating has no time of its own), and the ``report_rating_wait`` rows to
    delete and to insert."""
    s, c, w = SurveyRow, ComplaintRow, ReportRatingWaitRow
    waiting: dict[int, int] = dict((await session.execute(
        select(s.id, day).join(c, c.id == s.complaint_id).where(
            sql_text("surveys." + RATING_WAIT)))).all())
    before: dict[int, int] = dict(
        (await session.execute(select(w.survey_id, w.day))).all())
    gone, new = before.keys() - waiting.keys(), waiting.keys() - before.keys()
    return ({int(before[i]) for i in gone} | {int(waiting[i]) for i in new}, sorted(gone),
            [{"survey_id": i, "day": int(waiting[i])} for i in sorted(new)])

Seen = tuple[Any, ...]  # the state row as a plan read it (None: no row)


@dataclass(slots=True)
class _Changes:
    """The rows of one table that differ from the stored ones: deleted by primary key
    (gone or changed), then inserted (new or changed)."""

    table: Table
    keys: tuple[str, ...]
    gone: list[dict[str, Any]]
    rows: list[dict[str, Any]]


def _changes(model: Any, keys: tuple[str, ...], values: tuple[str, ...],
             old: dict[Any, Any], new: dict[Any, Any],
             render: Callable[[Any], Iterable[Any]] = lambda v: v) -> _Changes:
    names = (*keys, *values)
    return _Changes(_table(model), keys,
                    [dict(zip(keys, k, strict=True)) for k, v in old.items()
                     if new.get(k) != v],
                    [dict(zip(names, (*k, *render(v)), strict=True)) for k, v in new.items()
                     if old.get(k) != v])


def _hist_values(hists: dict[HistKey, Pair], span: str) -> dict[Any, Any]:
    """Histograms without their zero buckets, keyed by ``report_hist``'s primary key (the
    empty ones left out: no row)."""
    out: dict[Any, Any] = {}
    for (start, dim, key), (first, resolution) in hists.items():
        pair = ({b: n for b, n in first.items() if n}, {b: n for b, n in resolution.items() if n})
        if pair[0] or pair[1]:
            out[(span, start, dim, key)] = pair
    return out


@dataclass(slots=True)
class Plan:
    """What a refresh writes, computed from a read snapshot."""

    seen: Seen
    full: bool
    mark: int | None
    newest_answer: datetime | None
    survey_count: int
    days: int  # local days recomputed
    writes: list[_Changes]  # per table (full: its rows after clearing it)
    wait_gone: list[int]
    wait_new: list[dict[str, int]]


def _seen(state: ReportStateRow | None) -> Seen:
    if state is None:
        return (None,)
    return (state.offset_minutes, state.history_id, state.survey_at, state.survey_count,
            state.refreshed_at)


async def _old_rows(session: AsyncSession, scope: dict[int, set[str] | None]
                   ) -> dict[DayKey, list[Any]]:
    """The stored day rows of ``scope`` (about to be recomputed)."""
    d_ = ReportDayRow
    out: dict[DayKey, list[Any]] = {}
    days = sorted(scope)
    for i in range(0, len(days), CHUNK):
        query = select(d_.day, d_.agency, d_.municipality, d_.sector, d_.category,
                       *(getattr(d_, n) for n in (*COUNTS, "rating_sum"))
                       ).where(d_.day.in_(days[i:i + CHUNK]))
        for day, agency, place, sector, category, *values in await session.execute(query):
            agencies = scope[int(day)]
            if agencies is None or agency in agencies:
                out[(int(day), agency, place, sector, category)] = [
                    *(int(v) for v in values[:-1]), float(values[-1])]
    return out


def _add(into: list[Any], values: Iterable[Any], sign: int) -> None:
    for i, v in enumerate(values):
        into[i] += sign * (float(v) if i == 9 else int(v))


async def make_plan(session: AsyncSession, dialect: str, offset: timedelta, mark: int | None
                ) -> Plan:
    """Compute everything a refresh writes (see the module's docstring), reading only."""
    minutes = int(offset.total_seconds() // 60)
    c, h, s = ComplaintRow, HistoryRow, SurveyRow
    state = (await session.execute(select(ReportStateRow).where(ReportStateRow.id == 1))
             ).scalar_one_or_none()
    history_id = 0 if state is None else state.history_id
    if dialect != "postgresql":  # one writer at a time: every id up to the highest is final
        mark = int((await session.execute(select(func.coalesce(func.max(h.id), 0)))
                    ).scalar_one())
    newest_answer = (await session.execute(select(func.max(s.answered_at)))).scalar()
    full = state is None or state.offset_minutes != minutes
    day = local_day(c.created_at, dialect, offset)
    moved, wait_gone, wait_new = await _rating_moves(session, day)
    scope: dict[int, set[str] | None] = {}
    if full:
        day_rows = await _day_rows(session, dialect, offset, None)
        day_hists = await _day_hists(session, dialect, offset, None)
        scope = {d[0]: None for d in day_rows}
        old: dict[DayKey, list[Any]] = {}
        old_months: dict[tuple[int, str, str], list[Any]] = {}
        month_rows: dict[tuple[int, str, str], list[Any]] = {}
        month_hists: dict[HistKey, Pair] = {}
        replaced: dict[HistKey, Pair] = {}
    else:
        assert state is not None

        def widen(d: Any, agency: str | None = None) -> None:
            found = scope.setdefault(int(d), set())
            if agency is None:
                scope[int(d)] = None
            elif found is not None:
                found.add(agency)

        changed = select(day, c.agency, h.kind).distinct().select_from(h).join(
            c, c.id == h.complaint_id).where(h.id > history_id)
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
        for d in moved:
            widen(d)
        day_rows = {}
        for d, agencies in sorted(scope.items()):
            day_rows.update(await _day_rows(session, dialect, offset, (d, d + 1), agencies))
        day_hists = {}
        for start, end in _ranges(scope):
            day_hists.update(await _day_hists(session, dialect, offset, (start, end)))
        replaced = await _read_hists(session, "day", scope)
        old = await _old_rows(session, scope)
        months = sorted({month_of(d) for d in scope})
        month_hists = await _read_hists(session, "month", months)
        m = ReportMonthRow
        month_rows = {}
        for i in range(0, len(months), CHUNK):
            for month, agency, place, *values in await session.execute(
                    select(m.month, m.agency, m.municipality,
                           *(getattr(m, n) for n in (*COUNTS, "rating_sum")))
                    .where(m.month.in_(months[i:i + CHUNK]))):
                month_rows[(int(month), agency, place)] = [0] * 10
                _add(month_rows[(int(month), agency, place)], values, 1)
        old_months = {k: list(v) for k, v in month_rows.items()}
    old_month_hists = _hist_values(month_hists, "month")
    for (d, agency, place, _, _), values in old.items():
        _add(month_rows.setdefault((month_of(d), agency, place), [0] * 10), values, -1)
    for (d, agency, place, _, _), values in day_rows.items():
        _add(month_rows.setdefault((month_of(d), agency, place), [0] * 10), values, 1)
    for changes, sign in ((replaced.items(), -1), (day_hists.items(), 1)):
        for (d, dim, key), (first, resolution) in changes:
            pair = month_hists.setdefault((month_of(d), dim, key), ({}, {}))
            _shift(pair[0], first, sign)
            _shift(pair[1], resolution, sign)
    writes = [
        _changes(ReportDayRow, ("day", "agency", "municipality", "sector", "category"),
                 (*COUNTS, "rating_sum"), old,
                 {k: v for k, v in day_rows.items() if v[0]}),
        # (a group without complaints has no row, as SQL grouping makes none)
        _changes(ReportMonthRow, ("month", "agency", "municipality"), (*COUNTS, "rating_sum"),
                 old_months, {k: v for k, v in month_rows.items() if v[0]}),
        _changes(ReportHistRow, ("span", "start", "dim", "key"),
                 ("first_hist", "resolution_hist"),
                 _hist_values(replaced, "day") | old_month_hists,
                 _hist_values(day_hists, "day") | _hist_values(month_hists, "month"),
                 lambda pair: (hist_text(pair[0]), hist_text(pair[1])))]
    return Plan(_seen(state), full, mark, newest_answer,
                 await _answers_since(session, newest_answer), len(scope), writes,
                 wait_gone, wait_new)


async def apply_plan(session: AsyncSession, plan: Plan, minutes: int) -> bool:
    """Write ``plan`` in the current (write) transaction, unless another refresh committed
    since it was read (then False: nothing written)."""
    state = (await session.execute(select(ReportStateRow).where(ReportStateRow.id == 1)
                                   .with_for_update())).scalar_one_or_none()
    if _seen(state) != plan.seen:
        return False
    if state is None:
        state = ReportStateRow(id=1, offset_minutes=None, history_id=0)
        session.add(state)
    w = ReportRatingWaitRow
    for i in range(0, len(plan.wait_gone), CHUNK):
        await session.execute(delete(w).where(w.survey_id.in_(plan.wait_gone[i:i + CHUNK])))
    if plan.wait_new:
        await session.execute(insert(_table(w)), plan.wait_new)
    for change in plan.writes:
        if plan.full:
            await session.execute(delete(change.table))
        elif change.gone:
            t = change.table.c
            await session.execute(
                delete(change.table).where(*(t[k] == bindparam("k_" + k) for k in change.keys)),
                [{"k_" + k: v for k, v in row.items()} for row in change.gone])
        for i in range(0, len(change.rows), CHUNK * 10):
            await session.execute(insert(change.table), change.rows[i:i + CHUNK * 10])
    state.offset_minutes = minutes
    if plan.mark is not None:
        state.history_id = max(state.history_id, plan.mark)
    state.survey_at = plan.newest_answer
    state.survey_count = plan.survey_count
    state.refreshed_at = datetime.now().astimezone()
    return True

