"""``GET /portal/reports``: top categories with trends, complaints per day, repeat
complaints and the frequent themes inside "other" (to extend the catalogue), with charts and
CSV/XLSX downloads.

Repeats: a complaint of the period is a repeat when, within ``repeat_days`` before it, the
same citizen filed one, or one of the same category came from the same place — the same
municipality and address (compared case- and punctuation-insensitively), or coordinates
within :data:`NEAR_METRES`. Duplicates already linked by operators are left out. At most
:data:`REPEAT_ROWS` complaints (the period's and the window before it) are read for them:
past that, the newest are read and repeats are listed from the time their window is
whole, which the page says. Themes read the newest complaints under "other"
(``other_texts``'s limit), which the page says too. Top categories and complaints per day
are summed from the ratings' daily aggregates after catching them up (when few days wait;
else counted from the complaints).
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache, partial

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.storage import report_daily as aggregated
from domain.storage.report_refresh import pending, refresh
from domain.storage.reports import (
    CategoryTrend,
    Period,
    PlaceRow,
    daily_counts,
    other_texts,
    place_rows,
    top_categories,
)
from portal.access import Permission
from portal.app import Portal
from portal.charts import line_chart, paired_chart
from portal.i18n import translations
from portal.labels import Names
from portal.sessions import LoggedIn
from portal.views.export import Table, respond
from portal.views.filters import link
from portal.views.ratings import parse_period

DEFAULT_REPEAT_DAYS = 30
NEAR_METRES = 100.0
SHOWN_REPEATS = 100
THEMES = 25
#: Complaints read for repeat detection at most (~1 s of work on the bench's machine).
REPEAT_ROWS = 120_000
# Function words, greetings and the generic words of any complaint: never a theme.
STOPWORDS = frozenset("""
и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее
мне было вот от меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни быть
был него до вас нибыть опять уж вам ведь там потом себя ничто ей может они тут где есть
надо ней для мы тебя их чем была сам чтоб без будто чего раз тоже себе под будет ж тогда
кто этот того потому этого какой совсем ним здесь этом один почти мой тем чтобы нее сейчас
были куда зачем всех никогда можно при наконец два об другой хоть после над больше тот
через эти нас про всего них какая много разве три эту моя впрочем хорошо свой этой перед
иногда лучше чуть том нельзя такой им более всегда конечно всю между это весь который
наш ваш свой очень также здравствуйте пожалуйста спасибо добрый день просить просьба
помочь прошу уважаемый вопрос проблема жалоба обращение год месяц
""".split())  # noqa: SIM905


@dataclass(frozen=True, slots=True)
class Repeat:
    number: str
    earlier: str
    reason: str  # "citizen", "address" or "nearby"
    sector: str
    category: str
    municipality: str | None
    days: float


@lru_cache(maxsize=65_536)
def normalize_address(address: str | None) -> str:
    """Lowercase, "ё" → "е", punctuation and runs of spaces folded: "ул. Ленина, 5" and
    "Ул Ленина 5" compare equal."""
    if not address:
        return ""
    return " ".join(re.findall(r"\w+", address.lower().replace("ё", "е")))


def metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, Earth radius 6,371 km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


def find_repeats(rows: Sequence[PlaceRow], start: float, window: timedelta) -> list[Repeat]:
    """Repeats among ``rows`` (oldest first) filed at or after ``start`` (epoch seconds).

    One pass in time order: the newest complaint per citizen and per (category, place), and
    for coordinates a grid of ~110 m cells, so only the 3×3 neighbouring cells are compared.
    Rows before ``start`` are only remembered. Rows are unpacked into locals and the state
    holds plain tuples: a period may hold 100,000 rows.
    """
    span = window.total_seconds()
    Seen = tuple[float, str]  # noqa: N806  (filing time, number)
    by_citizen: dict[int, Seen] = {}
    by_address: dict[tuple[str, str, str | None, str], Seen] = {}
    cells: dict[tuple[str, str, int, int], list[tuple[float, str, float, float]]] = {}
    out: list[Repeat] = []
    for _, number, citizen, sector, category, town, raw_address, lat, lon, at in rows:
        address = normalize_address(raw_address)
        place = (sector, category, town, address)
        located = lat is not None and lon is not None
        if located:
            cy, cx = int(lat // 0.001), int(lon // 0.0014)
        if at >= start:
            found: tuple[Seen, str] | None = None
            prev = by_citizen.get(citizen)
            if prev is not None and at - prev[0] <= span:
                found = (prev, "citizen")
            elif address and (prev := by_address.get(place)) is not None and (
                    at - prev[0] <= span):
                found = (prev, "address")
            elif located:
                found = _nearby(cells, sector, category, cy, cx, lat, lon, at, span)
            if found is not None:
                (then, earlier), reason = found
                out.append(Repeat(number, earlier, reason, sector, category, town,
                                  (at - then) / 86400))
        by_citizen[citizen] = (at, number)
        if address:
            by_address[place] = (at, number)
        if located:
            cells.setdefault((sector, category, cy, cx), []).append((at, number, lat, lon))
    return out


def _nearby(cells: dict[tuple[str, str, int, int], list[tuple[float, str, float, float]]],
            sector: str, category: str, cy: int, cx: int, lat: float, lon: float, at: float,
            span: float) -> tuple[tuple[float, str], str] | None:
    """The newest complaint within :data:`NEAR_METRES` and ``span`` in the 3×3 cells around
    (``cy``, ``cx``), the first cell in row order that has one; cells are pruned of
    complaints older than ``span`` as they are visited (rows come in time order)."""
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            bucket = cells.get((sector, category, cy + dy, cx + dx))
            if not bucket:
                continue
            if at - bucket[0][0] > span:
                bucket[:] = [p for p in bucket if at - p[0] <= span]
            for then, earlier, plat, plon in reversed(bucket):
                if metres(lat, lon, plat, plon) <= NEAR_METRES:
                    return (then, earlier), "nearby"
    return None


def themes(texts: Iterable[str], lemmas: Callable[[str], list[str]], top: int = THEMES
           ) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """The most frequent lemmas and bigrams (adjacent lemmas, stopwords removed), each
    counted once per complaint: ``(word, complaints)``, most frequent first."""
    words: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    for text in texts:
        kept = [w for w in lemmas(text) if len(w) > 2 and w not in STOPWORDS]
        words.update(set(kept))
        pairs.update({f"{a} {b}" for a, b in zip(kept, kept[1:], strict=False) if a != b})
    order = lambda c: sorted(c.items(), key=lambda x: (-x[1], x[0]))[:top]  # noqa: E731
    return order(words), [p for p in order(pairs) if p[1] > 1]


@dataclass(frozen=True, slots=True)
class ReportData:
    trends: list[CategoryTrend]
    daily: dict[datetime, int]
    repeats: list[Repeat]
    repeats_from: datetime | None  # None: the whole period was searched for repeats
    other_count: int
    words: list[tuple[str, int]]
    pairs: list[tuple[str, int]]


async def report_data(factory: async_sessionmaker[AsyncSession], period: Period, days: int,
                      lemmas: Callable[[str], list[str]]) -> ReportData:
    """Everything the page shows for ``period`` with repeats within ``days``."""
    from portal.views.ratings import PAGE_REFRESH_DAYS

    offset = period.start.utcoffset() or timedelta()
    window = timedelta(days=days)
    # categories and days come from the ratings' aggregates once they are caught up (as
    # the ratings page does); with many days waiting, from the complaints
    waiting = await pending(factory, offset)
    caught_up = waiting.days is not None and waiting.days <= PAGE_REFRESH_DAYS
    if caught_up:
        await refresh(factory, offset)
    async with factory() as session:
        if caught_up:
            trends = await aggregated.top_categories(session, period)
            daily = await aggregated.daily_counts(session, period, offset)
        else:
            trends = await top_categories(session, period)
            daily = await daily_counts(session, period, offset)
        rows, since = await place_rows(session, period, window, REPEAT_ROWS)
        texts = await other_texts(session, period)
    start = period.start if since is None else max(period.start, since + window)
    repeats = await asyncio.to_thread(find_repeats, rows, start.timestamp(), window)
    words, pairs = await asyncio.to_thread(themes, texts, lemmas)
    return ReportData(trends, daily, repeats, None if since is None else start, len(texts),
                      words, pairs)


def parse_days(raw: str | None) -> int:
    try:
        return min(365, max(1, int(raw or DEFAULT_REPEAT_DAYS)))
    except ValueError:
        return DEFAULT_REPEAT_DAYS


def add_routes(router: web.UrlDispatcher, portal: Portal) -> None:
    async def page(request: web.Request, user: LoggedIn) -> web.StreamResponse:
        from dialogue.classifiers.text import lemmas  # pymorphy3 loads on first use

        tz = portal.calendar.tz
        now = portal.clock()
        choice = parse_period(request.query, now.astimezone(tz).date(), tz)
        days = parse_days(request.query.get("repeat_days"))
        period = choice.period
        data = await report_data(portal.database.session_factory, period, days, lemmas)
        trends, daily, repeats = data.trends, data.daily, data.repeats
        words, pairs = data.words, data.pairs
        lang = portal.language(request)
        _ = translations(lang).gettext
        names = Names(portal.catalogue, lang, _)
        reasons = {"citizen": _("same citizen"), "address": _("same address"),
                   "nearby": _("within 100 m")}
        repeats.sort(key=lambda r: r.number, reverse=True)
        by_reason = Counter(r.reason for r in repeats)
        first_day = period.start.replace(tzinfo=None)
        series = [(first_day + timedelta(days=i)) for i in range((choice.last - choice.first)
                                                                 .days + 1)]
        tables = [
            Table("categories", _("Top categories"), [
                _("Sector"), _("Category"), _("This period"), _("Previous period"),
                _("Change, %")],
                [[names.sector(t.sector), names.category(t.sector, t.category), t.current,
                  t.previous, None if t.change is None else round(100 * t.change, 1)]
                 for t in trends]),
            Table("daily", _("Complaints per day"), [_("Date"), _("Complaints")],
                  [[d.date().isoformat(), daily.get(d, 0)] for d in series]),
            Table("repeats", _("Repeat complaints"), [
                _("Complaint"), _("Earlier complaint"), _("Why"), _("Sector"), _("Category"),
                _("Municipality"), _("Days apart")],
                [[r.number, r.earlier, reasons[r.reason], names.sector(r.sector),
                  names.category(r.sector, r.category), names.municipality(r.municipality),
                  round(r.days, 1)] for r in repeats]),
            Table("other-words", _("Frequent words in “Other”"), [_("Word"), _("Complaints")],
                  [list(x) for x in words]),
            Table("other-pairs", _("Frequent word pairs in “Other”"),
                  [_("Word pair"), _("Complaints")], [list(x) for x in pairs]),
        ]
        download = respond(request, tables, f"reports-{choice.first}-{choice.last}")
        if download is not None:
            return download
        shown = [tables[0], tables[1], Table(tables[2].id, tables[2].title, tables[2].headers,
                                             tables[2].rows[:SHOWN_REPEATS]), *tables[3:]]
        charts = {
            "categories": paired_chart(
                [(f"{names.category(t.sector, t.category)}", t.previous, t.current)
                 for t in trends[:10]], _("Top categories"),
                (_("Previous period"), _("This period"))) if trends else None,
            "daily": line_chart([(d.strftime("%d.%m"), daily.get(d, 0)) for d in series],
                                _("Complaints per day")),
        }
        return portal.render(request, "reports.html", user, choice=choice, tables=shown,
                             charts=charts, days=days, repeats_total=len(repeats),
                             by_reason=by_reason, reasons=reasons, other_count=data.other_count,
                             repeats_from=data.repeats_from and data.repeats_from.astimezone(tz),
                             repeat_rows=REPEAT_ROWS,
                             link=partial(link, "/portal/reports", request.query))

    router.add_get("/portal/reports", portal.guard(Permission.VIEW_RATINGS, page))
