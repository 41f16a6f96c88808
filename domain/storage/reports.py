"""Read-side queries for ratings and reports: per agency and per municipality, per period.

Everything summable is counted in SQL, grouped by (agency, municipality), and rolled up in
Python both ways, so one scan of the period serves both tables. Medians are not summable:
the durations are computed in SQL (hours, as floats, so no timestamps are parsed) and the
medians taken in Python over that bounded fetch — one float pair per answered complaint of
the period. A complaint belongs to the period in which it was filed.

Satisfaction comes from a pluggable :class:`SatisfactionSource`; the default reads the
``surveys`` table if the database has one and reports "no data" otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from statistics import median
from typing import Any, NamedTuple, Protocol, TypeVar

from sqlalchemy import (
    Integer,
    String,
    and_,
    case,
    cast,
    column,
    exists,
    func,
    inspect,
    literal_column,
    or_,
    select,
    table,
    type_coerce,
)
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession

from domain.storage.orm import ComplaintRow, HistoryRow

MIN_COMPLAINTS = 10  # default: no combined rank below this many complaints in the period
#: Weights of the combined score (0..100). Timeliness is the mean of the two on-time shares;
#: satisfaction is the share of surveyed citizens who said "solved"; a component without
#: data has its weight shared out among the others in proportion.
WEIGHTS = {"timeliness": 0.40, "completeness": 0.25, "satisfaction": 0.20, "reopen": 0.15}
Key = tuple[str, str | None]  # (agency, municipality)


@dataclass(frozen=True, slots=True)
class Period:
    """``start`` ≤ created_at < ``end``."""

    start: datetime
    end: datetime

    def previous(self) -> Period:
        return Period(self.start - (self.end - self.start), self.start)


@dataclass(slots=True)
class Tally:
    """Summable counts of one group."""

    complaints: int = 0
    first_due: int = 0  # first answer given, or its deadline passed
    first_on_time: int = 0
    resolution_due: int = 0  # resolved, or its deadline passed
    resolution_on_time: int = 0
    finished: int = 0  # closed or rejected
    substantive: int = 0  # closed with an operator answer recorded
    reopened: int = 0  # complaints reopened at least once
    surveyed: int = 0
    solved: int = 0
    rated: int = 0
    rating_sum: float = 0.0
    first_hours: list[float] = field(default_factory=list)
    resolution_hours: list[float] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for f in fields(self):
            name, value = f.name, getattr(other, f.name)
            if isinstance(value, list):
                getattr(self, name).extend(value)
            else:
                setattr(self, name, getattr(self, name) + value)


def share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True, slots=True)
class RatingLine:
    key: str | None
    complaints: int
    first_on_time: float | None
    resolution_on_time: float | None
    median_first_hours: float | None
    median_resolution_hours: float | None
    solved: float | None
    mean_rating: float | None
    reopen_rate: float | None
    completeness: float | None
    score: float | None  # None: fewer than the minimum of complaints
    rank: int | None = None


def score(t: Tally) -> float | None:
    """The combined score 0..100 (see :data:`WEIGHTS`); None when no component has data."""
    ontime = [s for s in (share(t.first_on_time, t.first_due),
                          share(t.resolution_on_time, t.resolution_due)) if s is not None]
    parts = {"timeliness": sum(ontime) / len(ontime) if ontime else None,
             "completeness": share(t.substantive, t.finished),
             "satisfaction": share(t.solved, t.surveyed),
             "reopen": 1 - t.reopened / t.complaints if t.complaints else None}
    weight = sum(WEIGHTS[k] for k, v in parts.items() if v is not None)
    if not weight:
        return None
    return 100 * sum(WEIGHTS[k] * v for k, v in parts.items() if v is not None) / weight


def rating_line(key: str | None, t: Tally, min_complaints: int) -> RatingLine:
    return RatingLine(
        key, t.complaints, share(t.first_on_time, t.first_due),
        share(t.resolution_on_time, t.resolution_due),
        median(t.first_hours) if t.first_hours else None,
        median(t.resolution_hours) if t.resolution_hours else None,
        share(t.solved, t.surveyed), t.rating_sum / t.rated if t.rated else None,
        share(t.reopened, t.complaints), share(t.substantive, t.finished),
        score(t) if t.complaints >= min_complaints else None)


def ranked(lines: Iterable[RatingLine]) -> list[RatingLine]:
    """Lines with a score ranked 1.. (ties share a rank), best first; then the rest by size."""
    lines = list(lines)
    scored = sorted((x for x in lines if x.score is not None),
                    key=lambda x: (-(x.score or 0), -x.complaints, x.key or ""))
    out: list[RatingLine] = []
    for i, line in enumerate(scored):
        same = out and out[-1].score is not None and round(out[-1].score, 6) == round(
            line.score or 0, 6)
        rank = out[-1].rank if same and out[-1].rank else i + 1
        out.append(replace(line, rank=rank))
    rest = sorted((x for x in lines if x.score is None), key=lambda x: (-x.complaints,
                                                                         x.key or ""))
    return out + rest


@dataclass(frozen=True, slots=True)
class Ratings:
    period: Period
    by_agency: list[RatingLine]
    by_municipality: list[RatingLine]
    total: RatingLine
    satisfaction_known: bool
    min_complaints: int


class SatisfactionSource(Protocol):
    """Survey answers per (agency, municipality) of complaints filed in ``period``:
    ``(surveyed, solved, rated, rating_sum)``; None when the database has no survey data."""

    async def tallies(self, session: AsyncSession, period: Period
                      ) -> dict[Key, tuple[int, int, int, float]] | None: ...


class SurveyTableSatisfaction:
    """Reads ``surveys`` (complaint_id, solved, rating, answered_at) when the table exists."""

    surveys = table("surveys", column("complaint_id"), column("solved"), column("rating"),
                    column("answered_at"))

    async def tallies(self, session: AsyncSession, period: Period
                      ) -> dict[Key, tuple[int, int, int, float]] | None:
        conn = await session.connection()
        if not await conn.run_sync(lambda c: inspect(c).has_table("surveys")):
            return None
        s, c = self.surveys.c, ComplaintRow
        solved = case((s.solved.is_(True), 1), else_=0)
        query = (select(c.agency, c.municipality, func.count(), func.sum(solved),
                        func.count(s.rating), func.coalesce(func.sum(s.rating), 0))
                 .select_from(self.surveys).join(c, c.id == s.complaint_id)
                 .where(s.answered_at.is_not(None), *in_period(period))
                 .group_by(c.agency, c.municipality))
        return {(a, m): (int(n), int(ok or 0), int(r), float(total))
                for a, m, n, ok, r, total in await session.execute(query)}


def in_period(period: Period) -> list[Any]:
    return [ComplaintRow.created_at >= period.start, ComplaintRow.created_at < period.end]


def hours(later: Any, earlier: Any, dialect: str) -> Any:
    """``later - earlier`` in hours, as a float, in SQL."""
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier) / 3600.0
    return (func.julianday(later) - func.julianday(earlier)) * 24.0


def epoch(value: Any, dialect: str) -> Any:
    """Seconds since 1970 of a timestamp column, in SQL."""
    if dialect == "postgresql":
        return func.extract("epoch", value)
    return (func.julianday(value) - 2440587.5) * 86400.0


def reopened_ever(dialect: str, complaint_id: Any = None) -> Any:
    """The complaint was reopened at least once (a status entry "→ reopened"). Spelled out
    as the partial index ``ix_complaint_history_reopened`` (migration 0007) has it: the
    planners use a partial index only for a predicate they can match with its own."""
    h = HistoryRow
    new: Any = literal_column("(complaint_history.data ->> 'new')" if dialect == "postgresql"
                         else "JSON_EXTRACT(complaint_history.data, '$.\"new\"')")
    return exists().where(h.complaint_id == (ComplaintRow.id if complaint_id is None
                                             else complaint_id),
                          h.kind == literal_column("'status'"),
                          new == literal_column("'reopened'"))


def _count(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def tallies(session: AsyncSession, period: Period, now: datetime) -> dict[Key, Tally]:
    """Every count of ``period`` per (agency, municipality) but satisfaction; durations."""
    dialect = session.get_bind().dialect.name
    c = ComplaintRow
    answered, resolved = c.first_answered_at.is_not(None), c.resolved_at.is_not(None)
    counts = (select(c.agency, c.municipality, func.count(),
                     _count(or_(answered, c.first_answer_due < now)),
                     _count(and_(answered, c.first_answered_at <= c.first_answer_due)),
                     _count(or_(resolved, c.resolution_due < now)),
                     _count(and_(resolved, c.resolved_at <= c.resolution_due)),
                     _count(c.status.in_(("closed", "rejected"))),
                     _count(and_(c.status == "closed", answered)))
              .where(*in_period(period)).group_by(c.agency, c.municipality))
    out: dict[Key, Tally] = defaultdict(Tally)
    for agency, municipality, *numbers in await session.execute(counts):
        t = out[(agency, municipality)]
        (t.complaints, t.first_due, t.first_on_time, t.resolution_due, t.resolution_on_time,
         t.finished, t.substantive) = (int(n) for n in numbers)
    durations = (select(c.agency, c.municipality, hours(c.first_answered_at, c.created_at,
                                                        dialect),
                        hours(c.resolved_at, c.created_at, dialect))
                 .where(*in_period(period), or_(answered, resolved)))
    for agency, municipality, first, resolution in await session.execute(durations):
        t = out[(agency, municipality)]
        if first is not None:
            t.first_hours.append(float(first))
        if resolution is not None:
            t.resolution_hours.append(float(resolution))
    reopened = (select(c.agency, c.municipality, func.count())
                .where(*in_period(period), reopened_ever(dialect))
                .group_by(c.agency, c.municipality))
    for agency, municipality, n in await session.execute(reopened):
        out[(agency, municipality)].reopened = int(n)
    return out


async def ratings(session: AsyncSession, period: Period, now: datetime, *,
                  min_complaints: int = MIN_COMPLAINTS,
                  satisfaction: SatisfactionSource | None = None) -> Ratings:
    """The ratings of agencies and municipalities for ``period`` at ``now``."""
    groups = await tallies(session, period, now)
    found = await (satisfaction or SurveyTableSatisfaction()).tallies(session, period)
    for key, (surveyed, solved, rated, rating_sum) in (found or {}).items():
        t = groups.setdefault(key, Tally())
        t.surveyed, t.solved, t.rated, t.rating_sum = surveyed, solved, rated, rating_sum
    by_agency, by_municipality, total = roll_up(groups, Tally)
    return Ratings(period,
                   ranked(rating_line(k, t, min_complaints) for k, t in by_agency.items()),
                   ranked(rating_line(k, t, min_complaints) for k, t in by_municipality.items()),
                   rating_line(None, total, 1), found is not None, min_complaints)


@dataclass(frozen=True, slots=True)
class CategoryTrend:
    sector: str
    category: str
    current: int
    previous: int

    @property
    def change(self) -> float | None:
        """Relative change from the previous period (None when it had none)."""
        return (self.current - self.previous) / self.previous if self.previous else None


def complaints_by(index: str, dialect: str) -> Any:
    """``complaints`` for a FROM; on SQLite read through ``index`` (a subquery with
    ``INDEXED BY``, which SQLite flattens: SQLAlchemy renders no table hints for SQLite).
    Its columns are ``.c``, typed as the table's."""
    table = ComplaintRow.__table__
    if dialect != "sqlite":
        return table
    return sql_text(f"SELECT * FROM complaints INDEXED BY {index}").columns(
        *table.c).subquery("complaints")


async def top_categories(session: AsyncSession, period: Period, limit: int = 15
                         ) -> list[CategoryTrend]:
    """The categories with most complaints in ``period``, with the previous period's count
    (from the covering index ``ix_complaints_created_sector`` of migration 0009)."""
    prev = period.previous()
    c = complaints_by("ix_complaints_created_sector", session.get_bind().dialect.name).c
    current = _count(c.created_at >= period.start).label("current")
    query = (select(c.sector, c.category, current, _count(c.created_at < period.start))
             .where(c.created_at >= prev.start, c.created_at < period.end)
             .group_by(c.sector, c.category)
             .order_by(current.desc(), c.sector, c.category).limit(limit))
    return [CategoryTrend(s, k, int(n), int(p)) for s, k, n, p in await session.execute(query)
            if n]


async def daily_counts(session: AsyncSession, period: Period, utc_offset: timedelta
                       ) -> dict[datetime, int]:
    """Complaints per local day of ``period`` (keys: local midnights as naive datetimes)."""
    dialect = session.get_bind().dialect.name
    c = ComplaintRow
    # SQLite's CAST truncates, which is floor for dates after 1970 (SQLite may lack
    # floor()); PostgreSQL's rounds, so it floors first (else afternoons count as tomorrow)
    days = (epoch(c.created_at, dialect) + utc_offset.total_seconds()) / 86400
    day = cast(func.floor(days) if dialect == "postgresql" else days, Integer)
    query = select(day, func.count()).where(*in_period(period)).group_by(day)
    epoch0 = datetime(1970, 1, 1)
    return {epoch0 + timedelta(days=int(d)): int(n) for d, n in await session.execute(query)}


class PlaceRow(NamedTuple):
    """What repeat detection reads of one complaint (``at``: seconds since 1970). A named
    tuple: a period may hold 100,000 of them, and a frozen dataclass takes several times
    longer to make."""

    id: int
    number: str
    citizen_id: int
    sector: str
    category: str
    municipality: str | None
    address: str | None
    latitude: float | None
    longitude: float | None
    at: float


async def place_rows(session: AsyncSession, period: Period, lookback: timedelta,
                     limit: int | None = None) -> tuple[list[PlaceRow], datetime | None]:
    """Complaints of ``period`` and of ``lookback`` before it, oldest first; with
    ``limit``, only the newest ``limit`` of them, and the filing time of the oldest row
    read when older ones were left out (else None). Read from the covering index
    ``ix_complaints_places`` (migration 0009)."""
    dialect = session.get_bind().dialect.name
    c = complaints_by("ix_complaints_places", dialect).c
    span = [c.created_at >= period.start - lookback, c.created_at < period.end]
    since = None
    if limit is not None:
        since = (await session.execute(select(c.created_at).where(*span)
                                       .order_by(c.created_at.desc()).offset(limit - 1)
                                       .limit(1))).scalar_one_or_none()
        if since is not None:
            span.append(c.created_at >= since)
    sqlite = dialect == "sqlite"
    # SQLite stores naive UTC text: parsed here, it costs a fraction of the column type's
    # processing or of julianday() in SQL (a period may hold 100,000 rows)
    at = type_coerce(c.created_at, String) if sqlite else c.created_at
    query = (select(c.id, c.number, c.citizen_id, c.sector, c.category, c.municipality,
                    c.address, c.latitude, c.longitude, at)
             .where(*span, c.status != "duplicate")
             .order_by(c.created_at, c.id))
    parse, epoch0 = datetime.fromisoformat, datetime(1970, 1, 1)
    result: Any = await session.execute(query)  # the time column's type varies
    return [PlaceRow(i, number, citizen, sector, category, town, address, lat, lon,
                     (parse(t) - epoch0).total_seconds() if sqlite else t.timestamp())
            for i, number, citizen, sector, category, town, address, lat, lon, t
            in result], since


async def other_texts(session: AsyncSession, period: Period, limit: int = 3000) -> list[str]:
    """Texts of the newest ``limit`` complaints of the "other" sector in ``period``."""
    c = ComplaintRow
    query = (select(c.text).where(*in_period(period), c.sector == "other")
             .order_by(c.created_at.desc()).limit(limit))
    return list(await session.scalars(query))


class Summable(Protocol):
    def add(self, other: Any, /) -> None: ...


S = TypeVar("S", bound=Summable)


def roll_up(groups: Mapping[Key, S], make: Callable[[], S]
            ) -> tuple[dict[str | None, S], dict[str | None, S], S]:
    """Sums of ``(agency, municipality)`` groups per agency, per municipality, and in all."""
    by_agency: dict[str | None, S] = defaultdict(make)
    by_municipality: dict[str | None, S] = defaultdict(make)
    total = make()
    for (agency, municipality), value in groups.items():
        by_agency[agency].add(value)
        by_municipality[municipality].add(value)
        total.add(value)
    return by_agency, by_municipality, total
