"""One bot process of ``bench/intake.py``: tsur or a bare aiogram echo bot.

    python bench/intake_bot.py --kind tsur|echo --delivery polling|webhook \
        --api http://127.0.0.1:PORT --token T [--db URL] [--data-dir D] [--profile FILE]

``tsur`` is the whole system from ``config.bootstrap.bootstrap`` (real engine, real SQL
unit of work with its event handlers, real SQLite/PostgreSQL) behind the product's own
``build_dispatcher``; with ``--delivery polling`` it runs the product's ``serve_telegram``
(long polling, exactly what ``tsur run`` starts). ``echo`` is a bare aiogram Dispatcher
whose one handler answers the text back — the ceiling of aiogram + the fake on this
machine. With ``--echo-session aiogram`` (the default, the issue's baseline) the echo
bot is aiogram as shipped: its default ``AiohttpSession`` on
``TelegramAPIServer.from_base(api)``, ``Dispatcher.start_polling``; with
``--echo-session tsur`` it uses tsur's ``TsurSession`` (``bots.telegram.make_bot``), to
compare against aiogram with tsur's request/answer shortcuts too.

``--delivery webhook`` serves, on 127.0.0.1 with a free port, tsur's own webhook route
(``bots.telegram.webhook.setup_telegram_webhook``, as ``tsur run`` in webhook mode: it
checks the secret header and answers once the update is settled) for tsur, and aiogram's
own ``SimpleRequestHandler`` (updates handled in the background, answered at once) for
the echo bot, or for tsur too with ``--tsur-webhook aiogram`` (the bench before 27 Nov
22:20); the harness POSTs updates to it, as Telegram would POST to a webhook. tsur's
dispatcher keeps the reply keyboards' labels in SQL (``SqlReplyKeyboards``), as
``config/channels.py`` wires it.

The process prints ``READY <port>`` on stdout when it serves (port 0 for polling) and
stops cleanly on SIGTERM. ``--profile`` writes cProfile stats from the end of start-up
(imports, bootstrap, the catalogue) to the stop, so they show the cost of handling updates.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def echo_dispatcher() -> Any:
    from aiogram import Dispatcher
    from aiogram.types import Message

    dp = Dispatcher(name="echo")

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "…")

    return dp


async def tsur_system(args: argparse.Namespace) -> tuple[Any, Any]:
    from bots.telegram import build_dispatcher
    from bots.telegram.keyboards import SqlReplyKeyboards
    from config.bootstrap import bootstrap
    from config.settings import Settings

    pool = {name: value for name, value in (("db_pool_size", args.db_pool_size),
                                            ("db_max_overflow", args.db_max_overflow))
            if value is not None}  # else the product's defaults
    settings = Settings(data_dir=Path(args.data_dir), database_url=args.db, nlu=args.nlu,
                        telegram_token=args.token, telegram_api_url=args.api,
                        **pool)  # type: ignore[arg-type]
    classifier = None
    if args.nlu == "keyword":
        from dialogue.nlu import KeywordClassifier
        from domain.catalogue import load_catalogue

        classifier = KeywordClassifier(load_catalogue(settings.catalogue))
    if args.what_if_recheck:
        what_if_recheck(args.what_if_recheck)
    system = bootstrap(settings, classifier=classifier)
    count_on_signal(system.database.engine)
    # as config/channels.py wires the product's Telegram channel
    return system, build_dispatcher(system.engine,
                                    keyboards=SqlReplyKeyboards())


def count_on_signal(engine: Any) -> None:
    """On SIGUSR1, print ``COUNTS {json}`` on stdout: the SQL statements, commits and
    round trips to aiosqlite's thread so far (bench/intake_engine.py's hooks)."""
    import json

    from bench.intake_engine import Counts

    counts = Counts(engine)

    def report() -> None:
        print("COUNTS " + json.dumps(dict(counts.c)), flush=True)

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, report)


def what_if_recheck(seconds: float) -> None:
    """A what-if, not the product: the confirming long poll (bots/telegram/polling.py)
    fetches new updates every ``seconds`` while others are in flight (0.1 s in the
    product), to size how much of the latency and throughput that cadence costs."""
    from bots.telegram.polling import ConfirmingPolling

    init = ConfirmingPolling.__init__
    init.__kwdefaults__ = {**(init.__kwdefaults__ or {}), "recheck": seconds}


async def main(args: argparse.Namespace, profiler: Any = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    system = None
    if args.kind == "tsur":
        system, dp = await tsur_system(args)
    else:
        dp = echo_dispatcher()
    if system is not None:
        import gc

        gc.freeze()  # as config.runtime.serve does once everything has started
    if profiler is not None:
        profiler.enable()  # start-up (imports, bootstrap) left out
    try:
        if args.delivery == "polling":
            await poll(args, dp, system, stop)
        else:
            await webhook(args, dp, stop)
    finally:
        if system is not None:
            await system.close()


def echo_bot(args: argparse.Namespace) -> Any:
    """The echo bot's :class:`~aiogram.Bot`: aiogram's own session, or tsur's."""
    if args.echo_session == "tsur":
        from bots.telegram import make_bot

        return make_bot(args.token, args.api)
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    return Bot(args.token, session=AiohttpSession(api=TelegramAPIServer.from_base(args.api)))


async def poll(args: argparse.Namespace, dp: Any, system: Any, stop: asyncio.Event) -> None:
    from bots.telegram import serve_telegram

    print("READY 0", flush=True)
    if system is not None:  # the product's own long-polling entry point
        await serve_telegram(system.engine, token=args.token, api_url=args.api, stop=stop,
                             dispatcher=dp)
        return
    bot = echo_bot(args)
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False))
    await stop.wait()
    await dp.stop_polling()
    await polling
    await bot.session.close()


async def webhook(args: argparse.Namespace, dp: Any, stop: asyncio.Event) -> None:
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
    from aiohttp import web

    from bots.telegram import make_bot

    bot = make_bot(args.token, args.api) if args.kind == "tsur" else echo_bot(args)
    app = web.Application()
    if args.kind == "tsur" and args.tsur_webhook == "product":
        from bots.telegram.webhook import setup_telegram_webhook, webhook_secret

        setup_telegram_webhook(app, dp, bot, path="/webhook", secret=webhook_secret(args.token))
    else:
        SimpleRequestHandler(dispatcher=dp, bot=bot).register(app, path="/webhook")
    setup_application(app, dp, bot=bot)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"READY {port}", flush=True)
    await stop.wait()
    await runner.cleanup()


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--kind", choices=["tsur", "echo"], required=True)
    p.add_argument("--delivery", choices=["polling", "webhook"], default="polling")
    p.add_argument("--api", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--echo-session", choices=["aiogram", "tsur"], default="aiogram",
                   help="the echo bot's HTTP session: aiogram's default or tsur's TsurSession")
    p.add_argument("--tsur-webhook", choices=["product", "aiogram"], default="product",
                   help="tsur's webhook route: its own (as tsur run) or aiogram's "
                        "SimpleRequestHandler")
    p.add_argument("--db", default="")
    p.add_argument("--data-dir", default="var")
    p.add_argument("--nlu", default="keyword", choices=["keyword", "embedded"])
    p.add_argument("--profile", default="")
    p.add_argument("--db-pool-size", type=int, default=None,
                   help="TSUR_DB_POOL_SIZE (PostgreSQL); default the product's")
    p.add_argument("--db-max-overflow", type=int, default=None,
                   help="TSUR_DB_MAX_OVERFLOW (PostgreSQL); default the product's")
    p.add_argument("--what-if-recheck", type=float, default=0.0,
                   help="what-if: seconds between long-poll fetches while updates are in "
                        "flight")
    return p.parse_args()


if __name__ == "__main__":
    arguments = parse()
    logging.basicConfig(level=logging.WARNING, format="bot %(levelname)s %(name)s: %(message)s")
    if arguments.profile:
        import cProfile

        profiler = cProfile.Profile()
        try:
            asyncio.run(main(arguments, profiler))
        finally:
            profiler.disable()
            profiler.dump_stats(arguments.profile)
    else:
        asyncio.run(main(arguments))
