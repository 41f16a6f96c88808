"""Ratings from pre-aggregated tables, for any period up to two years at a million complaints.

:func:`domain.storage.reports.ratings` reads every complaint of the period; this module
sums ``report_monthly`` for the whole calendar months of the period and ``report_daily``
for the days around them (in SQL), and merges the ``report_hist`` histograms of the same
months and days, all kept by :mod:`domain.storage.report_refresh`. Local days are counted
at the fixed UTC offset the tables were built with; the parts of a period that are not
whole days at that offset are read from the complaints directly.

What depends on the time of the report stays live: a complaint counts towards "answered on
time" once it was answered or its deadline passed, so the aggregates keep the complaints and
the on-time answers, and the complaints still within an unmet deadline are counted at report
time over two covering partial indexes (only recent complaints can have such a deadline).

Medians come from duration histograms with :data:`OCTAVE` buckets per doubling of
``1 + minutes``; a bucket is represented by its midpoint, so a median is within
:func:`tolerance` of the exact one: 2.2 % of (the median + 1 minute).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.storage.orm import ComplaintRow
from domain.storage.report_daily_orm import (
    COUNTS,
    ReportDayRow,
    ReportHistRow,
    ReportMonthRow,
    ReportStateRow,
)
from domain.storage.reports import (
    MIN_COMPLAINTS,
    CategoryTrend,
    Key,
    Period,
    Ratings,
    Tally,
    ranked,
    rating_line,
    roll_up,
)
from domain.storage.reports import (
    daily_counts as direct_daily_counts,
)
from domain.storage.reports import (
    ratings as direct_ratings,
)
from domain.storage.reports import (
    tallies as direct_tallies,
)
from domain.storage.reports import (
    top_categories as direct_top_categories,
)

OCTAVE = 16  # histogram buckets per doubling of (1 + minutes)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DATE = date(1970, 1, 1)


def local_day(column: Any, dialect: str, offset: timedelta) -> Any:
    """The local day number of a timestamp column, in SQL, exactly (no float rounding at
    midnight: SQLite's text is cut to whole seconds, PostgreSQL's epoch is numeric)."""
    minutes = int(offset.total_seconds() // 60)
    if dialect == "postgresql":
        return cast(func.floor((func.extract("epoch", column) + minutes * 60) / 86400),
                    Integer)
    return cast(func.julianday(func.substr(column, 1, 19), f"{minutes:+d} minutes")
                - 2440587.5, Integer)


def bucket(hours: float) -> int:
    """The histogram bucket of a duration (negative durations count as zero)."""
    return int(OCTAVE * math.log2(1 + max(0.0, hours) * 60))


def bucket_hours(index: int) -> float:
    """The midpoint of a bucket, in hours."""
    low, high = 2 ** (index / OCTAVE) - 1, 2 ** ((index + 1) / OCTAVE) - 1
    return (low + high) / 120


def tolerance(hours: float) -> float:
    """How far a histogram median may be from the exact median ``hours``."""
    return (2 ** (1 / OCTAVE) - 1) / 2 * (abs(hours) + 1 / 60)


def hist_text(hist: Mapping[int, int]) -> str:
    """Dense: the first bucket, then the counts of it and the following ones."""
    used = [b for b, n in hist.items() if n]
    if not used:
        return ""
    low, high = min(used), max(used)
    return " ".join(map(str, (low, *(hist.get(b, 0) for b in range(low, high + 1)))))


def add_hist(into: list[int], text: str) -> None:
    """Add a :func:`hist_text` into a dense list of counts indexed by bucket."""
    if not text:
        return
    base, *counts = map(int, text.split())
    if len(into) < base + len(counts):
        into.extend([0] * (base + len(counts) - len(into)))
    for i, n in enumerate(counts, base):
        into[i] += n


def parse_hist(text: str) -> dict[int, int]:
    """A :func:`hist_text` as ``{bucket: count}`` without the zeros."""
    if not text:
        return {}
    base, *counts = map(int, text.split())
    return {base + i: n for i, n in enumerate(counts) if n}


def dense_counter(counts: list[int]) -> Counter[int]:
    return Counter({b: n for b, n in enumerate(counts) if n})


def hist_median(hist: Counter[int]) -> float | None:
    """The median the way :func:`statistics.median` takes it, over bucket midpoints."""
    n = sum(hist.values())
    if not n:
        return None
    wanted, seen = ((n - 1) // 2, n // 2), 0
    found: list[float] = []
    for index, count in sorted(hist.items()):
        seen += count
        while len(found) < 2 and wanted[len(found)] < seen:
            found.append(bucket_hours(index))
        if len(found) == 2:
            break
    return (found[0] + found[1]) / 2


@dataclass(slots=True)
class Agg:
    """Summable aggregates of one group: counts that do not depend on the report's time,
    and the two duration histograms."""

    complaints: int = 0
    first_on_time: int = 0
    resolution_on_time: int = 0
    finished: int = 0
    substantive: int = 0
    reopened: int = 0
    surveyed: int = 0
    solved: int = 0
    rated: int = 0
    rating_sum: float = 0.0
    first_hist: Counter[int] = field(default_factory=Counter)
    resolution_hist: Counter[int] = field(default_factory=Counter)
    # not stored: complaints still within an unmet deadline at the report's time
    pending_first: int = 0
    pending_resolution: int = 0

    def add_counts(self, values: Iterable[Any], rating_sum: float) -> None:
        for name, value in zip(COUNTS, values, strict=True):
            setattr(self, name, getattr(self, name) + int(value))
        self.rating_sum += float(rating_sum)

    def add(self, other: Agg) -> None:
        self.add_counts((getattr(other, n) for n in COUNTS), other.rating_sum)
        self.first_hist.update(other.first_hist)
        self.resolution_hist.update(other.resolution_hist)
        self.pending_first += other.pending_first
        self.pending_resolution += other.pending_resolution

    def add_row(self, row: Any) -> None:
        """A ``report_daily``/``report_monthly`` row (its count columns)."""
        self.add_counts((getattr(row, n) for n in COUNTS), row.rating_sum)


def day_of(moment: datetime, offset: timedelta) -> int:
    """The local day number (days since 1970-01-01) of an aware datetime."""
    return math.floor((moment - EPOCH + offset).total_seconds() / 86400)


def day_start(day: int, offset: timedelta) -> datetime:
    return EPOCH + timedelta(days=day) - offset


def month_of(day: int) -> int:
    d = EPOCH_DATE + timedelta(days=day)
    return (d.replace(day=1) - EPOCH_DATE).days


def next_month(month: int) -> int:
    d = EPOCH_DATE + timedelta(days=month)
    first = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return (first - EPOCH_DATE).days


def municipality_key(value: str | None) -> str:
    return value or ""


def _from_tally(t: Tally) -> Agg:
    """A live (direct) tally as an aggregate; its exact durations go into the histograms."""
    agg = Agg(t.complaints, t.first_on_time, t.resolution_on_time, t.finished, t.substantive,
              t.reopened, t.surveyed, t.solved, t.rated, t.rating_sum,
              pending_first=t.complaints - t.first_due,
              pending_resolution=t.complaints - t.resolution_due)
    agg.first_hist.update(bucket(h) for h in t.first_hours)
    agg.resolution_hist.update(bucket(h) for h in t.resolution_hours)
    return agg


async def _add_pending(session: AsyncSession, groups: dict[Key, Agg], now: datetime,
                      offset: timedelta, first: int, last: int) -> None:
    """Complaints filed on days ``first`` ≤ day < ``last`` still within an unmet deadline
    at ``now``: ``(first answer, resolution)`` per group. Only the deadline indexes are
    usable, and only recent complaints have such a deadline."""
    c = ComplaintRow
    day = local_day(c.created_at, session.get_bind().dialect.name, offset)
    for name, done, due in (("pending_first", c.first_answered_at, c.first_answer_due),
                            ("pending_resolution", c.resolved_at, c.resolution_due)):
        # no condition on the filing day: the planners would leave the deadline index
        query = (select(day, c.agency, c.municipality, func.count())
                 .where(done.is_(None), due >= now)
                 .group_by(day, c.agency, c.municipality))
        for d, agency, municipality, n in await session.execute(query):
            if first <= d < last:
                agg = groups[(agency, municipality)]
                setattr(agg, name, getattr(agg, name) + int(n))


def _months(first: int, last: int) -> tuple[list[int], list[tuple[int, int]]]:
    """Days ``first`` ≤ day < ``last`` as whole calendar months and day ranges."""
    month = month_of(first)
    if month < first:
        month = next_month(month)
    months: list[int] = []
    while next_month(month) <= last:
        months.append(month)
        month = next_month(month)
    if not months:
        return [], [(first, last)]
    return months, [(a, b) for a, b in ((first, months[0]), (next_month(months[-1]), last))
                    if a < b]


Hists = dict[tuple[str, str], tuple[list[int], list[int]]]


async def _stored(session: AsyncSession, first: int, last: int
                  ) -> tuple[dict[Key, Agg], Hists]:
    """Counts per group (summed in SQL) and histograms per dimension of the days ``first``
    ≤ day < ``last``: whole months from the monthly rows, the rest from the daily ones."""
    months, day_ranges = _months(first, last)
    counts: dict[Key, Agg] = defaultdict(Agg)
    spans: list[tuple[int, int]]
    for table, column, spans in ((ReportMonthRow, "month", [(months[0], months[-1] + 1)]
                                  if months else []),
                                 (ReportDayRow, "day", day_ranges)):
        if not spans:
            continue
        at = getattr(table, column)
        query = (select(table.agency, table.municipality,
                        *(func.sum(getattr(table, n)) for n in (*COUNTS, "rating_sum")))
                 .where(or_(*(and_(at >= a, at < b) for a, b in spans)))
                 .group_by(table.agency, table.municipality))
        for agency, municipality, *values in await session.execute(query):
            counts[(agency, municipality or None)].add_counts(values[:-1], values[-1])
    h = ReportHistRow
    parts = [and_(h.span == "day", h.start >= a, h.start < b) for a, b in day_ranges]
    if months:
        parts.append(and_(h.span == "month", h.start >= months[0], h.start <= months[-1]))
    hists: Hists = defaultdict(lambda: ([], []))
    query = select(h.dim, h.key, h.first_hist, h.resolution_hist).where(or_(*parts))
    for dim, key, first_hist, resolution_hist in await session.execute(query):
        into = hists[(dim, key)]
        add_hist(into[0], first_hist)
        add_hist(into[1], resolution_hist)
    return counts, hists


def _line(key: str | None, agg: Agg, minimum: int) -> Any:
    tally = Tally(agg.complaints, agg.complaints - agg.pending_first, agg.first_on_time,
                  agg.complaints - agg.pending_resolution, agg.resolution_on_time, agg.finished,
                  agg.substantive, agg.reopened, agg.surveyed, agg.solved, agg.rated,
                  agg.rating_sum)
    return replace(rating_line(key, tally, minimum),
                   median_first_hours=hist_median(agg.first_hist),
                   median_resolution_hours=hist_median(agg.resolution_hist))


async def state_offset(session: AsyncSession) -> timedelta | None:
    """The day offset of the aggregates, None when they were never built."""
    state = await session.get(ReportStateRow, 1)
    if state is None or state.offset_minutes is None:
        return None
    return timedelta(minutes=state.offset_minutes)


async def ratings(session: AsyncSession, period: Period, now: datetime, *,
                  min_complaints: int = MIN_COMPLAINTS) -> Ratings:
    """:func:`domain.storage.reports.ratings` from the aggregates (refresh them first with
    :func:`domain.storage.report_refresh.refresh`); medians within :func:`tolerance`.
    Without built aggregates, or for a period shorter than a day, the direct computation."""
    offset = await state_offset(session)
    if offset is None:
        return await direct_ratings(session, period, now, min_complaints=min_complaints)
    first = day_of(period.start, offset)
    if day_start(first, offset) < period.start:
        first += 1
    last = day_of(period.end, offset)
    if first >= last:
        return await direct_ratings(session, period, now, min_complaints=min_complaints)
    groups, hists = await _stored(session, first, last)
    await _add_pending(session, groups, now, offset, first, last)
    live: dict[Key, Agg] = defaultdict(Agg)
    for part in (Period(period.start, day_start(first, offset)),
                 Period(day_start(last, offset), period.end)):
        if part.start < part.end:
            for key, agg in (await live_parts(session, part, now)).items():
                live[key].add(agg)
    for key, agg in live.items():
        groups[key].add(agg)
    by_agency, by_municipality, total = roll_up(groups, Agg)
    dims: list[tuple[str, dict[str | None, Agg]]] = [
        ("agency", by_agency), ("municipality", by_municipality), ("total", {None: total})]
    for dim, aggs in dims:
        for name, agg in aggs.items():
            first_counts, resolution_counts = hists.get((dim, name or ""), ([], []))
            agg.first_hist.update(dense_counter(first_counts))
            agg.resolution_hist.update(dense_counter(resolution_counts))
    return Ratings(period,
                   ranked(_line(k, a, min_complaints) for k, a in by_agency.items()),
                   ranked(_line(k, a, min_complaints) for k, a in by_municipality.items()),
                   _line(None, total, 1), True, min_complaints)


async def live_parts(session: AsyncSession, period: Period, now: datetime
                               ) -> dict[Key, Agg]:
    """A part of a period read from the complaints (its deadlines judged at ``now``: the
    pending counts of :func:`ratings` cover only the aggregated days)."""
    from domain.storage.reports import SurveyTableSatisfaction

    out: dict[Key, Agg] = {}
    tallies = await direct_tallies(session, period, now)
    found = await SurveyTableSatisfaction().tallies(session, period) or {}
    for key, (surveyed, solved, rated, rating_sum) in found.items():
        t = tallies.setdefault(key, Tally())
        t.surveyed, t.solved, t.rated, t.rating_sum = surveyed, solved, rated, rating_sum
    for key, t in tallies.items():
        out[key] = _from_tally(t)
    return out


async def _whole_days(session: AsyncSession, *moments: datetime) -> list[int] | None:
    """The local day numbers starting at ``moments`` at the aggregates' offset, or None
    when the aggregates were never built or a moment is not a local midnight there."""
    offset = await state_offset(session)
    if offset is None:
        return None
    days = [day_of(m, offset) for m in moments]
    if any(day_start(d, offset) != m for d, m in zip(days, moments, strict=True)):
        return None
    return days


async def top_categories(session: AsyncSession, period: Period, limit: int = 15
                         ) -> list[CategoryTrend]:
    """:func:`domain.storage.reports.top_categories` summed from ``report_daily`` (as of
    its last refresh) when the period and the previous one are whole local days of the
    aggregates; otherwise counted from the complaints."""
    prev = period.previous()
    days = await _whole_days(session, prev.start, period.start, period.end)
    if days is None:
        return await direct_top_categories(session, period, limit)
    first, middle, last = days
    d = ReportDayRow
    current = func.sum(case((d.day >= middle, d.complaints), else_=0)).label("current")
    query = (select(d.sector, d.category, current,
                    func.sum(case((d.day < middle, d.complaints), else_=0)))
             .where(d.day >= first, d.day < last)
             .group_by(d.sector, d.category)
             .order_by(current.desc(), d.sector, d.category).limit(limit))
    return [CategoryTrend(s, k, int(n), int(p)) for s, k, n, p in await session.execute(query)
            if n]


async def daily_counts(session: AsyncSession, period: Period, utc_offset: timedelta
                       ) -> dict[datetime, int]:
    """:func:`domain.storage.reports.daily_counts` summed from ``report_daily`` (as of its
    last refresh) when the period is whole local days of the aggregates at ``utc_offset``;
    otherwise counted from the complaints."""
    days = await _whole_days(session, period.start, period.end)
    if days is None or await state_offset(session) != utc_offset:
        return await direct_daily_counts(session, period, utc_offset)
    d = ReportDayRow
    query = (select(d.day, func.sum(d.complaints)).where(d.day >= days[0], d.day < days[1])
             .group_by(d.day))
    epoch0 = datetime(1970, 1, 1)
    return {epoch0 + timedelta(days=int(day)): int(n)
            for day, n in await session.execute(query)}
