"""Intake benchmark: simulated citizens file complaints through the real aiogram client.

    .venv/bin/python bench/intake.py                      # SQLite and PostgreSQL, 3 repeats
    .venv/bin/python bench/intake.py --no-postgres --repeats 1 --citizens 100
    .venv/bin/python bench/intake.py --profile var/prof   # cProfile of every bot process
    .venv/bin/python bench/intake.py --echo-session both  # baselines: aiogram as shipped, and
                                                          # aiogram on tsur's TsurSession

Each citizen walks the complaint dialogue of tests/e2e/test_telegram.py (/start, the
problem, confirm the sector, a photo, done, a location, confirm the municipality,
consent, submit: 9 updates) against the fake Bot API (tests/fakes/telegram.py). The bots
run in their own processes, the fake and the citizens in this one; all traffic stays on
127.0.0.1. Two set-ups, each measured against a bare aiogram echo bot on the same
delivery path, back to back, so the ratio cancels out the machine and its load:

- **SQLite, 1 process, long polling** — the product's ``serve_telegram`` long-polls
  the fake, exactly as ``tsur run`` does; the echo bot long-polls its own fake.
- **PostgreSQL, 4 processes, webhook** — ``getUpdates`` cannot be shared between
  processes (a second poller terminates the first with 409), so updates are delivered the
  way Telegram delivers them to a deployment of several workers: POSTed to the product's
  webhook route (``bots.telegram.webhook``, with the secret header; ``--tsur-webhook
  aiogram``: aiogram's ``SimpleRequestHandler`` around the product's ``build_dispatcher``),
  each citizen always to the same worker (user id modulo 4), because the engine's
  per-citizen lock lives in one process. All four workers share one throwaway PostgreSQL
  (tests/fakes/postgres.py) and call the same fake Bot API. The echo side is 4 echo
  workers behind the same webhook path.

Per set-up and repeat it runs a *saturated* phase (``--concurrency`` citizens at a time,
each acting as soon as the previous step's replies arrived) and a *paced* phase (updates
injected at ``--rate`` per second overall). Latency runs from handing the update to the
bot to the fake recording the last reply message of that step (``full``; ``first`` is
the first reply). Targets (issue 7): saturated tsur ≥ 0.5 × echo; paced p99 < 50 ms.
Prints numbers and whether targets were met; exits 0 either way.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import intake_load as load  # noqa: E402
from domain.storage import sqlite_url, upgrade_async  # noqa: E402

UIDS = itertools.count(6_000_001)
ROUTES = {"product": "tsur's own webhook route for tsur, aiogram's for the echo",
          "aiogram": "aiogram SimpleRequestHandler"}
BASELINES = {
    "echo-aiogram": "a bare aiogram echo bot (aiogram's AiohttpSession; the issue's baseline)",
    "echo-tsur": "an aiogram echo bot on tsur's TsurSession (make_bot)",
}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def line(label: str, r: load.Result) -> str:
    per = r.bot_cpu / r.messages * 1000 if r.messages else float("nan")
    sys_per = r.bot_sys / r.messages * 1000 if r.messages else float("nan")
    hper = r.harness_cpu / r.messages * 1000 if r.messages else float("nan")
    return (f"  {label:<22} {r.messages:6d} msg {r.rate:8.1f} msg/s  p50 {pct(r.full, .5):6.1f}"
            f"  p99 {pct(r.full, .99):7.1f} ms (first reply p99 {pct(r.first, .99):6.1f})"
            f"  bot CPU {per:5.2f} ms/msg (sys {sys_per:4.2f})  harness {hper:5.2f}"
            + (f"  PostgreSQL {r.db_cpu / r.messages * 1000:5.2f}" if r.db_cpu > 0 else "")
            + f"  errors {r.errors}\n" + counts(r))


def counts(r: load.Result) -> str:
    """Per update: Bot API calls by method, and the bot's SQL statements, commits and
    round trips to aiosqlite's thread (stable numbers, unlike the times)."""
    if not r.messages:
        return ""
    calls = ", ".join(f"{method} {n / r.messages:.2f}" for method, n in r.calls.most_common())
    requests = sum(n for method, n in r.calls.items() if not method.endswith(" answers"))
    text = f"    per update: Bot API calls {requests / r.messages:.2f} ({calls})"
    if r.sql:
        text += (f"; SQL statements {r.sql['statements'] / r.messages:.2f}, commits "
                 f"{r.sql['commits'] / r.messages:.2f}, thread hops "
                 f"{r.sql['hops'] / r.messages:.2f}, connections opened {r.sql['connects']}; "
                 f"GC {r.sql['gc_us'] / r.messages / 1000:.2f} "
                 f"ms ({r.sql['gc0']}/{r.sql['gc1']}/{r.sql['gc2']} collections)")
    return text


async def count_complaints(url: str) -> int:
    from sqlalchemy import text

    from domain.storage import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM complaints"))).scalar())
    finally:
        await engine.dispose()


async def measure(title: str, echos: list[load.Deployment], tsur: load.Deployment,
                  args: argparse.Namespace) -> dict[str, object]:
    """Both phases for ``tsur`` and each echo baseline, alternated per repeat; prints the
    ratios of tsur to each baseline, naming it."""
    print(f"\n== {title}", flush=True)
    await load.calibrate(tsur, next(UIDS))
    print(f"  replies per step (calibrated): {tsur.per_step}", flush=True)
    for echo in echos:
        echo.per_step = [1] * len(load.ECHO)
    deps = [*echos, tsur]
    warm = args.concurrency  # as many at once as measured: the SQL pools fill up here
    for dep in deps:  # warm-up: connection pools, first imports, caches
        await load.run(dep, citizens=warm, concurrency=warm, rate=None,
                       first_uid=next_block(warm))
    runs: dict[tuple[str, str], list[load.Result]] = {}
    paced_citizens = max(1, round(args.rate * args.paced_seconds / len(load.COMPLAINT)))
    for repeat in range(1, args.repeats + 1):
        for dep in deps:
            sat = await load.run(dep, citizens=args.citizens, concurrency=args.concurrency,
                                 rate=None, first_uid=next_block(args.citizens))
            print(line(f"#{repeat} {dep.label} saturated", sat), flush=True)
            if args.steps and dep.kind == "tsur":
                print("    p50/p99 ms by step: " + ", ".join(
                    f"{i + 1}:{pct(v, .5):.0f}/{pct(v, .99):.0f}"
                    for i, v in sorted(sat.by_step.items())), flush=True)
            paced = await load.run(dep, citizens=paced_citizens, concurrency=32,
                                   rate=args.rate, first_uid=next_block(paced_citizens))
            print(line(f"#{repeat} {dep.label} @{args.rate:g}/s", paced), flush=True)
            runs.setdefault((dep.label, "sat"), []).append(sat)
            runs.setdefault((dep.label, "paced"), []).append(paced)
    med = {key: statistics.median(r.rate for r in rs) for key, rs in runs.items()}
    p99 = {key: statistics.median(pct(r.full, .99) for r in rs) for key, rs in runs.items()}
    p50 = {key: statistics.median(pct(r.full, .5) for r in rs) for key, rs in runs.items()}
    cpu = {key: statistics.median(r.bot_cpu / r.messages * 1000 if r.messages else 0.0
                                  for r in rs) for key, rs in runs.items()}
    ratios = {}
    for echo in echos:
        e = echo.label
        ratios[e] = med[("tsur", "sat")] / med[(e, "sat")]
        print(f"  median of {args.repeats}, against {BASELINES[e]}: saturated {e} "
              f"{med[(e, 'sat')]:.0f} msg/s ({cpu[(e, 'sat')]:.2f} ms CPU/msg), tsur "
              f"{med[('tsur', 'sat')]:.0f} msg/s ({cpu[('tsur', 'sat')]:.2f}) → ratio "
              f"tsur/{e} {ratios[e]:.2f} "
              f"(target ≥ 0.50: {'met' if ratios[e] >= 0.5 else 'NOT met'})")
        print(f"  saturated latency p50/p99: {e} {p50[(e, 'sat')]:.1f}/"
              f"{p99[(e, 'sat')]:.1f} ms, tsur {p50[('tsur', 'sat')]:.1f}/"
              f"{p99[('tsur', 'sat')]:.1f} ms")
    target = p99[("tsur", "paced")]
    print(f"  paced at {args.rate:g} msg/s (achieved tsur {med[('tsur', 'paced')]:.0f}): "
          f"p50/p99 " + ", ".join(f"{e.label} {p50[(e.label, 'paced')]:.1f}/"
                                  f"{p99[(e.label, 'paced')]:.1f} ms" for e in echos)
          + f", tsur {p50[('tsur', 'paced')]:.1f}/{target:.1f} ms "
          f"(target p99 < 50 ms: {'met' if target < 50 else 'NOT met'})", flush=True)
    first = echos[0].label
    return {"ratio": ratios[first], "p99": target, "echo": med[(first, "sat")],
            "echo_label": first, "tsur": med[("tsur", "sat")]}


async def start_echos(args: argparse.Namespace, name: str, delivery: str,
                      workers: int) -> list[load.Deployment]:
    sessions = ["aiogram", "tsur"] if args.echo_session == "both" else [args.echo_session]
    return [await load.start(f"{name}-{s}", "echo", delivery, workers,
                             profile_dir=args.profile, echo_session=s) for s in sessions]


def next_block(n: int) -> int:
    first = next(UIDS)
    for _ in range(n - 1):
        next(UIDS)
    return first


async def sqlite_setup(args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    url = sqlite_url(tmp / "intake.db")
    await upgrade_async(url)
    echos = await start_echos(args, "echo-polling", "polling", 1)
    tsur = await load.start("tsur-sqlite", "tsur", "polling", 1, db=url, data_dir=str(tmp),
                            nlu=args.nlu, profile_dir=args.profile,
                            recheck=args.what_if_recheck)
    try:
        found = await measure("SQLite, 1 process, long polling (serve_telegram)", echos, tsur,
                              args)
    finally:
        for echo in echos:
            await load.stop(echo)
        await load.stop(tsur)
    print(f"  complaints in the database: {await count_complaints(url)}")
    return found


def postmaster_pid(datadir: Path) -> int:
    """The PostgreSQL server's pid: the first line of ``postmaster.pid`` in its data
    directory."""
    return int((datadir / "postmaster.pid").read_text().split()[0])


async def postgres_setup(args: argparse.Namespace, tmp: Path,
                         single: dict[str, object]) -> None:
    from tests.fakes.postgres import PostgresServer, PostgresUnavailable

    try:
        server = await asyncio.to_thread(PostgresServer.start)
    except PostgresUnavailable as exc:
        print(f"\n== PostgreSQL skipped: {exc}")
        return
    try:
        url = await asyncio.to_thread(server.create_database, "intake")
        await upgrade_async(url)
        w = args.workers
        echos = await start_echos(args, "echo-webhook", "webhook", w)
        tsur = await load.start("tsur-pg", "tsur", "webhook", w, db=url, data_dir=str(tmp),
                                nlu=args.nlu, profile_dir=args.profile,
                                pool_size=args.db_pool_size, max_overflow=args.db_max_overflow,
                                tsur_webhook=args.tsur_webhook)
        tsur.pg_pid = postmaster_pid(server.datadir)
        try:
            found = await measure(
                f"PostgreSQL, {w} processes, webhook ("
                f"{ROUTES[args.tsur_webhook]})",
                echos, tsur, args)
            if single:  # the baseline is one echo process
                print(f"  tsur on {w} workers vs the 1-process polling {single['echo_label']} "
                      f"measured above: {found['tsur'] / single['echo']:.2f}")  # type: ignore[operator]
        finally:
            for echo in echos:
                await load.stop(echo)
            await load.stop(tsur)
        print(f"  complaints in the database: {await count_complaints(url)}")
    finally:
        await asyncio.to_thread(server.stop)


async def main(args: argparse.Namespace) -> None:
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        args.profile = str(Path(args.profile).resolve())
    print(f"intake bench: {args.citizens} citizens × {len(load.COMPLAINT)} updates saturated "
          f"({args.concurrency} at a time), {args.paced_seconds:g} s paced at {args.rate:g}/s, "
          f"{args.repeats} repeats, NLU {args.nlu}")
    with tempfile.TemporaryDirectory(prefix="tsur-intake-") as tmp:
        single = {} if args.no_sqlite else await sqlite_setup(args, Path(tmp))
        if not args.no_postgres:
            await postgres_setup(args, Path(tmp), single)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--citizens", type=int, default=120, help="per saturated run")
    p.add_argument("--concurrency", type=int, default=32, help="citizens at a time, saturated")
    p.add_argument("--rate", type=float, default=100.0, help="paced updates per second")
    p.add_argument("--paced-seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=4, help="PostgreSQL worker processes")
    p.add_argument("--nlu", choices=["keyword", "embedded"], default="keyword")
    p.add_argument("--steps", action="store_true", help="tsur latency by dialogue step")
    p.add_argument("--what-if-recheck", type=float, default=0.0,
                   help="what-if, not the product: seconds between the SQLite set-up's "
                        "long-poll fetches while updates are in flight (product: 0.1)")
    p.add_argument("--echo-session", choices=["aiogram", "tsur", "both"], default="aiogram",
                   help="the echo baseline: a bare aiogram bot (aiogram's AiohttpSession, "
                        "the issue's), one on tsur's TsurSession, or both")
    p.add_argument("--tsur-webhook", choices=["product", "aiogram"], default="product",
                   help="the PostgreSQL workers' webhook route: tsur's own (as tsur run) or "
                        "aiogram's SimpleRequestHandler (the bench before 27 Nov 22:20)")
    p.add_argument("--no-sqlite", action="store_true")
    p.add_argument("--no-postgres", action="store_true")
    p.add_argument("--profile", default="", help="directory for cProfile stats of the bots")
    p.add_argument("--db-pool-size", type=int, default=0,
                   help="TSUR_DB_POOL_SIZE of the PostgreSQL workers (default the product's)")
    p.add_argument("--db-max-overflow", type=int, default=-1,
                   help="TSUR_DB_MAX_OVERFLOW of the PostgreSQL workers (default the "
                        "product's)")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
