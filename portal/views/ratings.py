"""``GET /portal/ratings``: agencies and municipalities rated for a period, with charts and
CSV/XLSX downloads (``?format=csv&table=by-agency``, ``?format=xlsx``).

The ratings come from the pre-aggregated tables (:mod:`domain.storage.report_daily`),
refreshed first; medians are within 2.2 % of the exact ones (the page says so)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial

from aiohttp import web
from multidict import MultiMapping

from domain.storage.report_daily import ratings
from domain.storage.report_refresh import pending, refresh
from domain.storage.reports import MIN_COMPLAINTS, WEIGHTS, Period, RatingLine
from portal.access import Permission
from portal.app import Portal
from portal.charts import Bar, bar_chart
from portal.i18n import translations
from portal.labels import Names
from portal.sessions import LoggedIn
from portal.views.export import Table, respond
from portal.views.filters import link

DEFAULT_DAYS = 30
MAX_DAYS = 731
#: The page refreshes the aggregates itself only when at most this many local days wait to
#: be recomputed (~50 ms a day at 1,000,000 complaints on SQLite); else it shows them as of
#: the last refresh and says so, and the scheduler's job catches up.
PAGE_REFRESH_DAYS = 8


@dataclass(frozen=True, slots=True)
class PeriodChoice:
    """The period in local dates (both inclusive) and as UTC-comparable datetimes."""

    first: date
    last: date
    period: Period


def _date(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def parse_period(query: MultiMapping[str], today: date, tz: object) -> PeriodChoice:
    """``from``/``to`` (ISO dates, inclusive); default the last 30 days up to ``today``.
    Reversed dates are swapped; a period is at most two years long."""
    last = _date(query.get("to")) or today
    first = _date(query.get("from")) or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        first, last = last, first
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    start = datetime.combine(first, time(), tzinfo=tz)  # type: ignore[arg-type]
    end = datetime.combine(last + timedelta(days=1), time(), tzinfo=tz)  # type: ignore[arg-type]
    return PeriodChoice(first, last, Period(start, end))


def parse_min(raw: str | None) -> int:
    try:
        return min(10_000, max(1, int(raw or MIN_COMPLAINTS)))
    except ValueError:
        return MIN_COMPLAINTS


def pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def num(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def rating_table(table_id: str, title: str, first_header: str, lines: list[RatingLine],
                 name: Callable[[str | None], str], gettext: Callable[[str], str]) -> Table:
    _ = gettext
    headers = [_("Rank"), first_header, _("Complaints"), _("First answer on time, %"),
               _("Resolved on time, %"), _("Median to first answer, h"),
               _("Median to resolution, days"), _("Solved, %"), _("Mean rating"),
               _("Reopened, %"), _("Completeness, %"), _("Score")]
    rows = [[x.rank, name(x.key), x.complaints, pct(x.first_on_time),
             pct(x.resolution_on_time), num(x.median_first_hours),
             num(None if x.median_resolution_hours is None else x.median_resolution_hours / 24),
             pct(x.solved), num(x.mean_rating, 2), pct(x.reopen_rate), pct(x.completeness),
             num(x.score)] for x in lines]
    return Table(table_id, title, headers, rows)


def score_chart(lines: list[RatingLine], name: Callable[[str | None], str], title: str):
    bars = [Bar(name(x.key), x.score or 0, f"{x.score:.1f}") for x in lines
            if x.score is not None][:25]
    return bar_chart(bars, title, maximum=100) if bars else None


def add_routes(router: web.UrlDispatcher, portal: Portal) -> None:
    async def page(request: web.Request, user: LoggedIn) -> web.StreamResponse:
        now = portal.clock()
        choice = parse_period(request.query, now.astimezone(portal.calendar.tz).date(),
                              portal.calendar.tz)
        minimum = parse_min(request.query.get("min"))
        # the aggregates catch up with the complaints changed since the last refresh, unless
        # that means many days to recompute: then the scheduler's job (every minute) does it
        # and the page says how old the figures are
        offset = now.astimezone(portal.calendar.tz).utcoffset() or timedelta()
        waiting = await pending(portal.database.session_factory, offset)
        behind = None
        if waiting.days is not None and waiting.days <= PAGE_REFRESH_DAYS:
            await refresh(portal.database.session_factory, offset)
        elif waiting.refreshed_at is not None:
            behind = waiting.refreshed_at.astimezone(portal.calendar.tz)
        else:  # never built: nothing to show without it
            await refresh(portal.database.session_factory, offset)
        async with portal.database.session_factory() as session:
            result = await ratings(session, choice.period, now, min_complaints=minimum)
        lang = portal.language(request)
        _ = translations(lang).gettext
        names = Names(portal.catalogue, lang, _)
        tables = [
            rating_table("by-agency", _("Ratings by agency"), _("Agency"), result.by_agency,
                         names.agency, _),
            rating_table("by-municipality", _("Ratings by municipality"), _("Municipality"),
                         result.by_municipality, names.municipality, _),
        ]
        download = respond(request, tables, f"ratings-{choice.first}-{choice.last}")
        if download is not None:
            return download
        charts = {
            "by-agency": score_chart(result.by_agency, names.agency,
                                     _("Score by agency")),
            "by-municipality": score_chart(result.by_municipality, names.municipality,
                                           _("Score by municipality")),
        }
        return portal.render(request, "ratings.html", user, choice=choice, result=result,
                             tables=tables, charts=charts, minimum=minimum, weights=WEIGHTS,
                             behind=behind,
                             link=partial(link, "/portal/ratings", request.query))

    router.add_get("/portal/ratings", portal.guard(Permission.VIEW_RATINGS, page))
