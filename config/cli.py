"""The ``tsur`` command: ``tsur run`` starts the system, ``tsur migrate`` applies migrations."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from config.settings import Settings

log = logging.getLogger("tsur")


async def serve(settings: Settings) -> None:
    """Migrate, start every configured channel and wait for SIGINT/SIGTERM."""
    from aiohttp import web

    from bots.web import WebMessenger, create_web_app
    from config.bootstrap import bootstrap
    from domain.storage.migrate import upgrade_async

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.sqlalchemy_url)
    system = bootstrap(settings)
    app = create_web_app(
        system.engine,
        uploads_dir=settings.uploads_dir,
        messenger=WebMessenger(),
        max_upload_bytes=settings.max_upload_mb * 1024 * 1024,
    )
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    base = f"http://{settings.host}:{settings.port}"
    print(f"tsur is running on {settings.sqlalchemy_url.split('://')[0]}", flush=True)
    print(f"  web chat: {base}/chat", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await runner.cleanup()
        await system.close()
        print("tsur stopped.", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tsur", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="apply migrations and start the web chat and configured bots")
    sub.add_parser("migrate", help="apply database migrations and exit")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"tsur: bad configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    if args.command == "migrate":
        from domain.storage.migrate import upgrade

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(settings.sqlalchemy_url)
        print("migrations applied", flush=True)
        return 0
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
