"""Time the register's filtered page and the ratings report over 1,000,000 complaints.

    .venv/bin/python bench/reports.py                    # SQLite and PostgreSQL, 1,000,000
    .venv/bin/python bench/reports.py --n 200000 --backend sqlite --keep /tmp/tsur-bench.db

The data has realistic spreads: two years of filings with a weekly rhythm, sectors and
municipalities skewed (Makhachkala has about a third), repeat citizens, first answers and
resolutions log-normally distributed around the deadlines, ~5 % reopened, statuses by age,
3–6 history rows per complaint. Rows are loaded with the drivers' bulk paths (executemany,
COPY); the timed queries are the portal's own (``register_page``, ``ratings``), each the
median of several runs, printed with its ratio to ``SELECT count(*) FROM complaints`` timed
in the same script. Target: each under 1 s on SQLite.

The portal's pages are also timed end to end over HTTP (``pages``: the real aiohttp app on
127.0.0.1, a supervisor logged in): register, search, a complaint, the deadline board,
ratings, reports and Open311's request list. ``--only TEXT`` runs the cases whose label
holds TEXT (the baseline always runs). ``insert_cost`` times single-complaint inserts
with and without the search index's upkeep (SQLite triggers, PostgreSQL's GIN index),
alternated, on a fresh database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from domain.catalogue import load_catalogue  # noqa: E402
from domain.storage import Database, sqlite_url, upgrade_async  # noqa: E402
from domain.storage.queries import ComplaintFilter, Sort, register_page  # noqa: E402
from domain.storage.report_daily import ratings as aggregated_ratings  # noqa: E402
from domain.storage.report_refresh import refresh  # noqa: E402
from domain.storage.reports import Period, ratings  # noqa: E402

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
LOCAL = ZoneInfo("Europe/Moscow")  # the portal's calendar
OFFSET = timedelta(hours=3)
YEARS = 2
CHUNK = 50_000
SECTOR_WEIGHTS = {"housing": 30, "roads": 16, "waste": 10, "energy": 10, "transport": 8,
                  "health": 8, "education": 6, "social": 6, "other": 6}
COMPLAINT_COLUMNS = ("id", "number", "citizen_id", "channel", "text", "sector", "category",
                     "agency", "municipality", "created_at", "first_answer_due",
                     "resolution_due", "classified_by", "confidence", "address", "latitude",
                     "longitude", "status", "first_answered_at", "resolved_at", "updated_at")
HISTORY_COLUMNS = ("complaint_id", "kind", "at", "actor", "text", "data")
SURVEY_COLUMNS = ("complaint_id", "citizen_id", "channel", "state", "created_at",
                  "reopen_until", "solved", "rating", "answered_at")
WORDS = ("нет воды", "яма на дороге", "не вывозят мусор", "нет света", "не ходит автобус",
         "протекает крыша", "холодные батареи", "не работает фонарь", "очередь в поликлинике",
         "бродячие собаки", "шум ночью", "сломана детская площадка")


def generate(n: int, seed: int = 7
             ) -> Iterator[tuple[list[tuple], list[tuple], list[tuple], list[tuple]]]:
    """Chunks of (citizens, complaints, history, surveys) rows with timezone-aware
    datetimes."""
    rnd = random.Random(seed)
    cat = load_catalogue()
    sectors = [s for s in cat.sectors if s.slug in SECTOR_WEIGHTS]
    weights = [SECTOR_WEIGHTS[s.slug] for s in sectors]
    towns = cat.municipalities
    town_w = [1 / (i + 1) ** 1.1 for i in range(len(towns))]
    citizens = max(1, n // 3)
    span = timedelta(days=365 * YEARS).total_seconds()
    next_citizen = 1
    history_id = 0
    for base in range(0, n, CHUNK):
        people, rows, hist, surveys = [], [], [], []
        for i in range(base + 1, min(n, base + CHUNK) + 1):
            # filings grow over time (sqrt) and dip at weekends
            while True:
                at = NOW - timedelta(seconds=span * (1 - rnd.random() ** 0.8))
                if at.weekday() < 5 or rnd.random() < 0.6:
                    break
            if next_citizen <= citizens and (next_citizen == 1 or rnd.random() < 0.5):
                people.append((next_citizen, at))
                citizen = next_citizen
                next_citizen += 1
            else:
                citizen = rnd.randint(1, max(1, next_citizen - 1))
            sector = rnd.choices(sectors, weights)[0]
            category = rnd.choice(sector.categories)
            town = rnd.choices(towns, town_w)[0] if rnd.random() > 0.08 else None
            agency = cat.responsible_agency(sector.slug, category.slug,
                                            town.slug if town else None).slug
            first_due = at + timedelta(hours=category.first_answer_hours)
            res_due = at + timedelta(days=category.resolution_days)
            age = (NOW - at).total_seconds()
            first = at + timedelta(hours=rnd.lognormvariate(2.3, 1.0))
            first = first if first < NOW else None
            resolved = at + timedelta(days=rnd.lognormvariate(1.8, 0.8))
            resolved = resolved if resolved < NOW and first and resolved > first else None
            status = "new" if age < 3600 * 6 else "in_progress"
            h = [("registered", at, "citizen", "", {})]
            if first:
                status = "answered"
                h += [("status", first, "op", "", {"old": "new", "new": "in_progress"}),
                      ("operator_message", first, "op", "ответ", {}),
                      ("status", first, "op", "", {"old": "in_progress", "new": "answered"})]
            if resolved:
                status = rnd.choices(("closed", "rejected", "duplicate"), (90, 7, 3))[0]
                h.append(("status", resolved, "op", "", {"old": "answered", "new": status}))
                if status == "closed":  # one survey per closure; a third answer it
                    answered = rnd.random() < 0.35 and resolved + timedelta(hours=2) < NOW
                    rating = rnd.choice((2, 3, 4, 4, 5, 5)) if answered else None
                    surveys.append((i, citizen, "telegram", "answered" if answered else "asked",
                                    resolved, resolved + timedelta(days=30),
                                    rnd.random() < 0.7 if answered else None, rating,
                                    resolved + timedelta(hours=2) if answered else None))
                if rnd.random() < 0.05:
                    again = resolved + timedelta(days=rnd.uniform(0.5, 5))
                    if again < NOW:
                        h.append(("status", again, "survey", "",
                                  {"old": status, "new": "reopened"}))
                        status, resolved = "reopened", None
            if rnd.random() < 0.3 and town:
                lat, lon = 42.98 + rnd.gauss(0, 0.05), 47.5 + rnd.gauss(0, 0.05)
            else:
                lat = lon = None
            address = f"ул. Ленина, {rnd.randint(1, 300)}" if rnd.random() < 0.6 else None
            updated = max(x[1] for x in h)
            rows.append((i, f"{at.year}-{i:07d}", citizen, rnd.choice(("telegram", "vk", "web")),
                         f"{rnd.choice(WORDS)} {rnd.choice(WORDS)}", sector.slug,
                         category.slug, agency, town.slug if town else None, at, first_due,
                         res_due, "nlu", 0.8, address, lat, lon, status, first, resolved,
                         updated))
            for kind, when, actor, body, data in h:
                history_id += 1
                hist.append((i, kind, when, actor, body, data))
        yield people, rows, hist, surveys


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):  # as SQLAlchemy stores it: naive UTC text
        return v.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(v, dict):
        return json.dumps(v)
    return v


def load_sqlite(path: Path, n: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    c_cols, h_cols = ", ".join(COMPLAINT_COLUMNS), ", ".join(HISTORY_COLUMNS)
    for people, rows, hist, surveys in generate(n):
        conn.executemany("INSERT INTO citizens (id, language, name, phone, subscribed_sectors,"
                         " reachable, created_at) VALUES (?, 'ru', '', '', '[]', 1, ?)",
                         [(i, _sqlite_value(at)) for i, at in people])
        conn.executemany(f"INSERT INTO complaints ({c_cols}) VALUES "
                         f"({', '.join('?' * len(COMPLAINT_COLUMNS))})",
                         [tuple(map(_sqlite_value, r)) for r in rows])
        conn.executemany(f"INSERT INTO complaint_history ({h_cols}) VALUES "
                         f"({', '.join('?' * len(HISTORY_COLUMNS))})",
                         [tuple(map(_sqlite_value, r)) for r in hist])
        conn.executemany(f"INSERT INTO surveys ({', '.join(SURVEY_COLUMNS)}) VALUES "
                         f"({', '.join('?' * len(SURVEY_COLUMNS))})",
                         [tuple(map(_sqlite_value, r)) for r in surveys])
        conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()


async def load_postgres(url: str, n: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for people, rows, hist, surveys in generate(n):
            await conn.copy_records_to_table(
                "citizens", records=[(i, "ru", "", "", "[]", True, at) for i, at in people],
                columns=("id", "language", "name", "phone", "subscribed_sectors",
                         "reachable", "created_at"))
            await conn.copy_records_to_table("complaints", records=rows,
                                             columns=COMPLAINT_COLUMNS)
            await conn.copy_records_to_table(
                "complaint_history", columns=HISTORY_COLUMNS,
                records=[(*r[:5], json.dumps(r[5])) for r in hist])
            await conn.copy_records_to_table("surveys", records=surveys,
                                             columns=SURVEY_COLUMNS)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def timed(run: Callable[[], Awaitable[Any]], repeat: int = 5,
                before: Callable[[], Awaitable[Any]] | None = None) -> float:
    """The median of ``repeat`` runs after a warm-up; ``before`` runs untimed each time."""
    await run()  # warm the caches and the connection pool
    times = []
    for _ in range(repeat):
        if before is not None:
            await before()
        start = time.perf_counter()
        await run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def local_days(days: int) -> Period:
    """The last ``days`` local days up to today, as the portal's period form makes them."""
    today = NOW.astimezone(LOCAL).date()
    return Period(datetime.combine(today - timedelta(days=days - 1), dtime(), tzinfo=LOCAL),
                  datetime.combine(today + timedelta(days=1), dtime(), tzinfo=LOCAL))


async def measure(database: Database, name: str, repeat: int, only: str = ""
                  ) -> list[tuple[str, float]]:
    month, quarter, year = local_days(30), local_days(91), local_days(365)
    factory = database.session_factory
    changes = random.Random(11)

    async def count() -> None:
        async with factory() as s:
            await s.execute(text("SELECT count(*) FROM complaints"))

    def page(flt: ComplaintFilter, sort: Sort | None = None) -> Callable[[], Awaitable[Any]]:
        async def run() -> None:
            async with factory() as s:
                await register_page(s, flt, NOW, sort=sort)
        return run

    def direct(period: Period) -> Callable[[], Awaitable[Any]]:
        async def run() -> None:
            async with factory() as s:
                await ratings(s, period, NOW)
        return run

    def report(period: Period) -> Callable[[], Awaitable[Any]]:
        async def run() -> None:  # what the page does: refresh, then read the aggregates
            await refresh(factory, OFFSET)
            async with factory() as s:
                await aggregated_ratings(s, period, NOW)
        return run

    recent = []

    def touch(n: int, status: bool = False) -> Callable[[], Awaitable[Any]]:
        async def run() -> None:
            """``n`` complaints of the last 91 days change (a history row each, as the
            services write one), so the next refresh recomputes their days' rows; with
            ``status`` they also go from closed to in progress or back, so the recomputed
            rows differ and are written."""
            async with factory() as s, s.begin():
                if not recent:
                    recent.extend((await s.execute(text(
                        "SELECT id FROM complaints WHERE created_at >= :start ORDER BY id"),
                        {"start": _bind(quarter.start, name)})).scalars().all())
                chosen = [{"c": c, "at": _bind(NOW, name)} for c in changes.sample(recent, n)]
                kind = "status" if status else "citizen_message"
                await s.execute(text(
                    "INSERT INTO complaint_history (complaint_id, kind, at, actor, text, data)"
                    f" VALUES (:c, '{kind}', :at, 'citizen', 'ещё', '{{}}')"), chosen)
                if status:
                    await s.execute(text(
                        "UPDATE complaints SET status = CASE status WHEN 'closed'"
                        " THEN 'in_progress' ELSE 'closed' END WHERE id = :c"),
                        [{"c": x["c"]} for x in chosen])
        return run

    async with factory() as s, s.begin():  # build from scratch, also in a kept file
        await s.execute(text("UPDATE report_state SET offset_minutes = NULL"))
    start = time.perf_counter()
    built = await refresh(factory, OFFSET)
    build = time.perf_counter() - start
    cases: list[tuple[str, Callable[[], Awaitable[Any]], Callable[[], Awaitable[Any]] | None]]
    cases = [
        ("baseline: SELECT count(*) FROM complaints", count, None),
        ("register: no filter, page 1", page(ComplaintFilter()), None),
        ("register: sector+municipality, last 30 days",
         page(ComplaintFilter(sector="roads", municipality="makhachkala",
                              created_from=month.start)), None),
        ("register: open, one agency", page(ComplaintFilter(
            open_only=True, agency="minenergo", statuses=())), None),
        ("register: overdue (open, due before now)",
         page(ComplaintFilter(open_only=True, due_before=NOW)), None),
        ("register: overdue, sorted by deadline",
         page(ComplaintFilter(open_only=True, due_before=NOW),
              Sort("resolution_due", descending=False)), None),
        ("register: all, sorted by deadline", page(ComplaintFilter(),
                                                   Sort("resolution_due")), None),
        ("register: search \"фонарь\"", page(ComplaintFilter(search="фонарь")), None),
        ("register: search, a word in no complaint", page(ComplaintFilter(search="жираф")),
         None),
        ("register: search \"фонарь\", last 30 days",
         page(ComplaintFilter(search="фонарь", created_from=month.start)), None),
        ("ratings, direct (before): 30 days", direct(month), None),
        ("ratings, direct (before): 91 days", direct(quarter), None),
        ("ratings: 30 days (refresh + aggregates)", report(month), None),
        ("ratings: 91 days", report(quarter), None),
        ("ratings: 365 days", report(year), None),
        ("ratings: 91 days, ragged (now - 91 d … now)",
         report(Period(NOW - timedelta(days=91), NOW)), None),
        ("ratings: 365 days after 20 changes", report(year), touch(20)),
        ("ratings: 365 days after 200 changes", report(year), touch(200)),
    ]
    cases += [(label, run, before) for label, run, before in await page_cases(
        database, name, year, touch)]
    out = []
    for label, run, before in cases:
        if label == cases[0][0] or only in label:
            out.append((label, await timed(run, repeat, before)))
    held = []
    if not only or only in LOCK_LABEL:
        for _ in range(repeat):
            await touch(200, status=True)()
            held.append(await lock_probe(database, lambda: refresh(factory, OFFSET)))
    base = out[0][1]
    print(f"\n{name}")
    print(f"  full build of the aggregates: {build:.1f} s ({built.days} days)")
    for label, seconds in out:
        print(f"  {label:<56} {seconds * 1000:9.1f} ms  {seconds / base:7.1f}× baseline")
    for took, waits in held:
        print(f"  {LOCK_LABEL}: refresh {took * 1000:.0f} ms; {len(waits)} one-row inserts"
              f" meanwhile, slowest {max(waits) * 1000:.1f} ms, median"
              f" {statistics.median(waits) * 1000:.1f} ms  ({max(waits) / base:.1f}× baseline)")
    await close_pages()
    return out


LOCK_LABEL = "write lock: refresh after 200 status changes"
PROBE_PAUSE = 0.005  # between the probe's inserts


def _probe_sqlite(path: str, stop: Any, waits: list[float]) -> None:
    """One-row inserts in their own transactions, as intake makes them, until ``stop``: on
    SQLite each waits for whatever write lock a refresh holds."""
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_probe (id INTEGER PRIMARY KEY, at REAL)")
        while not stop.is_set():
            start = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO bench_probe (at) VALUES (?)", (start,))
            conn.execute("COMMIT")
            waits.append(time.perf_counter() - start)
            time.sleep(PROBE_PAUSE)
    finally:
        conn.close()


def _probe_postgres(url: str, stop: Any, waits: list[float]) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            await conn.execute("CREATE TABLE IF NOT EXISTS bench_probe"
                               " (id serial PRIMARY KEY, at double precision)")
            while not stop.is_set():
                start = time.perf_counter()
                await conn.execute("INSERT INTO bench_probe (at) VALUES ($1)", start)
                waits.append(time.perf_counter() - start)
                await asyncio.sleep(PROBE_PAUSE)
        finally:
            await conn.close()

    asyncio.run(run())


async def lock_probe(database: Database, run: Callable[[], Awaitable[Any]]
                     ) -> tuple[float, list[float]]:
    """Time ``run`` while another thread (its own connection, off this event loop) makes
    one-row inserts: how long the slowest waited is how long ``run`` held the write lock
    at a stretch (at least)."""
    import threading

    url = database.engine.url
    stop, waits = threading.Event(), []
    if url.get_backend_name() == "sqlite":
        target: Any = _probe_sqlite
        where = str(url.database)
    else:
        target, where = _probe_postgres, url.render_as_string(hide_password=False)
    thread = threading.Thread(target=target, args=(where, stop, waits))
    thread.start()
    await asyncio.sleep(0.05)
    start = time.perf_counter()
    await run()
    took = time.perf_counter() - start
    stop.set()
    await asyncio.to_thread(thread.join)
    return took, waits


_closers: list[Callable[[], Awaitable[Any]]] = []


async def close_pages() -> None:
    while _closers:
        await _closers.pop()()


async def page_cases(database: Database, name: str, year: Period,
                     touch: Callable[[int], Callable[[], Awaitable[Any]]]
                     ) -> list[tuple[str, Callable[[], Awaitable[Any]],
                                     Callable[[], Awaitable[Any]] | None]]:
    """The portal's pages over HTTP, as a logged-in supervisor sees them."""
    from aiohttp import ClientSession, CookieJar, web
    from aiohttp.test_utils import TestServer

    from portal import setup_portal
    from portal.users import add_user

    with contextlib.suppress(ValueError):  # a kept file has the user already
        await add_user(database, "bench", "bench password 1", "supervisor", now=NOW)
    app = web.Application()
    setup_portal(app, database=database, catalogue=load_catalogue(), clock=lambda: NOW)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    http = ClientSession(cookie_jar=CookieJar(unsafe=True))
    _closers.extend((server.close, http.close))
    base = str(server.make_url("")).rstrip("/")
    async with http.get(base + "/login") as resp:
        token = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert token is not None
    async with http.post(base + "/login", data={"login": "bench", "password":
                                                 "bench password 1", "csrf": token[1]}) as resp:
        assert resp.status == 200, resp.status
    async with database.session_factory() as s:
        number = (await s.execute(text("SELECT number FROM complaints ORDER BY id DESC"
                                       " LIMIT 1"))).scalar_one()

    def get(path: str) -> Callable[[], Awaitable[Any]]:
        async def run() -> None:
            async with http.get(base + path) as resp:
                body = await resp.read()
                assert resp.status == 200, (path, resp.status, body[:300])
        return run

    today = NOW.astimezone(LOCAL).date()
    last = lambda days: (f"from={today - timedelta(days=days - 1)}&to={today}")  # noqa: E731
    return [
        ("page: register", get("/portal/complaints"), None),
        ("page: register, search a word in no complaint", get("/portal/complaints?q=жираф"),
         None),
        ("page: register, search \"фонарь\"", get("/portal/complaints?q=фонарь"), None),
        ("page: complaint", get(f"/portal/complaints/{number}"), None),
        ("page: deadline board", get("/portal/deadlines"), None),
        ("page: ratings, 30 days", get("/portal/ratings"), None),
        ("page: ratings, 365 days", get(f"/portal/ratings?{last(365)}"), None),
        ("page: ratings, 365 days after 200 changes", get(f"/portal/ratings?{last(365)}"),
         touch(200)),
        ("page: reports, 30 days", get("/portal/reports"), None),
        ("page: reports, 91 days", get(f"/portal/reports?{last(91)}"), None),
        ("page: reports, 365 days", get(f"/portal/reports?{last(365)}"), None),
        ("page: Open311 requests", get("/open311/v2/requests.json"), None),
    ]


INSERT_ROUNDS, INSERT_BLOCK = 6, 200


def _complaint_rows(start: int, n: int) -> list[tuple]:
    """``n`` complaint rows as the bulk loaders take them, ids from ``start``."""
    rows = next(generate(n, seed=start))[1]
    return [(start + i, f"X-{start + i:09d}", 1, *r[3:]) for i, r in enumerate(rows)]


def insert_cost_sqlite(path: Path) -> tuple[float, float]:
    """Seconds per complaint insert (one transaction each, WAL, synchronous=NORMAL as the
    product runs) with the search index's triggers and without them, alternated."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("INSERT INTO citizens (id, language, name, phone, subscribed_sectors,"
                 " reachable, created_at) VALUES (1, 'ru', '', '', '[]', 1, '2026-01-01')")
    triggers = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND"
                            " name LIKE 'complaints_fts_%'").fetchall()
    assert len(triggers) == 3, triggers
    sql = (f"INSERT INTO complaints ({', '.join(COMPLAINT_COLUMNS)}) VALUES "
           f"({', '.join('?' * len(COMPLAINT_COLUMNS))})")
    times: dict[bool, list[float]] = {True: [], False: []}
    next_id = 1
    for _ in range(INSERT_ROUNDS):
        for indexed in (True, False):
            if not indexed:
                for name in ("insert", "update", "delete"):
                    conn.execute(f"DROP TRIGGER complaints_fts_{name}")
            rows = [tuple(map(_sqlite_value, r)) for r in _complaint_rows(next_id,
                                                                          INSERT_BLOCK)]
            next_id += INSERT_BLOCK
            start = time.perf_counter()
            for row in rows:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(sql, row)
                conn.execute("COMMIT")
            times[indexed].append((time.perf_counter() - start) / INSERT_BLOCK)
            if not indexed:
                for (body,) in triggers:
                    conn.execute(body)
    conn.close()
    return statistics.median(times[True]), statistics.median(times[False])


async def insert_cost_postgres(url: str) -> tuple[float, float]:
    """As :func:`insert_cost_sqlite`, with and without ``ix_complaints_search``."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        definition = await conn.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname ="
                                          " 'ix_complaints_search'")
        await conn.execute("INSERT INTO citizens (id, language, name, phone,"
                           " subscribed_sectors, reachable, created_at) VALUES (1, 'ru', '',"
                           " '', '[]', true, now())")
        sql = (f"INSERT INTO complaints ({', '.join(COMPLAINT_COLUMNS)}) VALUES "
               f"({', '.join(f'${i + 1}' for i in range(len(COMPLAINT_COLUMNS)))})")
        times: dict[bool, list[float]] = {True: [], False: []}
        next_id = 1
        for _ in range(INSERT_ROUNDS):
            for indexed in (True, False):
                if not indexed:
                    await conn.execute("DROP INDEX ix_complaints_search")
                rows = _complaint_rows(next_id, INSERT_BLOCK)
                next_id += INSERT_BLOCK
                start = time.perf_counter()
                for row in rows:
                    await conn.execute(sql, *row)  # autocommit: one transaction each
                times[indexed].append((time.perf_counter() - start) / INSERT_BLOCK)
                if not indexed:
                    await conn.execute(definition)
    finally:
        await conn.close()
    return statistics.median(times[True]), statistics.median(times[False])


def print_insert_cost(name: str, indexed: float, plain: float) -> None:
    print(f"\n{name}: a complaint insert (own transaction), median of {INSERT_ROUNDS} blocks"
          f" of {INSERT_BLOCK}, alternated")
    print(f"  without the search index (baseline)  {plain * 1000:8.3f} ms      1.0× baseline")
    print(f"  with the search index                {indexed * 1000:8.3f} ms  "
          f"{indexed / plain:7.2f}× baseline")


def _bind(value: datetime, name: str) -> Any:
    """A timestamp as each backend's text SQL takes it (SQLite: naive UTC text)."""
    if name.startswith("SQLite"):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--keep", type=Path, help="SQLite file to create or reuse")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case")
    parser.add_argument("--only", default="", help="run only the cases whose label holds this")
    parser.add_argument("--no-insert-cost", action="store_true",
                        help="skip timing the search index's upkeep on inserts")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        folder = Path(tempfile.mkdtemp(prefix="tsur-bench-"))
        if not args.no_insert_cost:
            await upgrade_async(sqlite_url(folder / "inserts.db"))
            print_insert_cost(f"SQLite {sqlite3.sqlite_version}",
                              *await asyncio.to_thread(insert_cost_sqlite,
                                                       folder / "inserts.db"))
        path = args.keep or folder / "bench.db"
        url = sqlite_url(path)
        fresh = not path.exists()
        await upgrade_async(url)  # a kept file may be of an older schema
        if fresh:
            start = time.perf_counter()
            await asyncio.to_thread(load_sqlite, path, args.n)
            print(f"SQLite: loaded {args.n:,} complaints in {time.perf_counter() - start:.0f} s"
                  f" ({path.stat().st_size / 1e6:.0f} MB)")
        database = Database.from_url(sqlite_url(path))
        try:
            with sqlite3.connect(path) as conn:  # a kept file may hold another number
                n = conn.execute("SELECT count(*) FROM complaints").fetchone()[0]
            await measure(database, f"SQLite {sqlite3.sqlite_version}, {n:,} complaints",
                          args.repeat, args.only)
        finally:
            await database.dispose()
    if args.backend in ("postgresql", "both"):
        from tests.fakes.postgres import PostgresServer, find_bindir

        if find_bindir() is None:
            print("PostgreSQL binaries not found: skipped")
            return 0
        server = PostgresServer.start()
        try:
            if not args.no_insert_cost:
                inserts = server.create_database("inserts")
                await upgrade_async(inserts)
                print_insert_cost("PostgreSQL", *await insert_cost_postgres(inserts))
            url = server.create_database("bench")
            await upgrade_async(url)
            start = time.perf_counter()
            await load_postgres(url, args.n)
            print(f"PostgreSQL: loaded {args.n:,} complaints in "
                  f"{time.perf_counter() - start:.0f} s")
            database = Database.from_url(url)
            try:
                await measure(database, f"PostgreSQL, {args.n:,} complaints", args.repeat,
                              args.only)
            finally:
                await database.dispose()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
