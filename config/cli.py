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
WORKER_STOP_SECONDS = 10.0


async def serve(settings: Settings) -> None:
    """Migrate, start every configured channel and wait for SIGINT/SIGTERM."""
    from aiohttp import web

    from bots.web import WebMessenger, create_web_app
    from config.bootstrap import bootstrap
    from domain.storage.migrate import upgrade_async
    from notifications.messenger import OnlineOnlyMessenger

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.sqlalchemy_url)
    system = bootstrap(settings)
    web_messenger = WebMessenger()
    app = create_web_app(
        system.engine,
        uploads_dir=settings.uploads_dir,
        messenger=web_messenger,
        max_upload_bytes=settings.max_upload_mb * 1024 * 1024,
    )
    # status notices etc. wait in the outbox until the citizen's chat page is open
    web_worker = system.delivery_worker("web", OnlineOnlyMessenger(web_messenger.send))
    web_delivery = asyncio.create_task(web_worker.run(), name="outbox:web")
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
        web_worker.stop()  # lets the message in flight finish, gives the rest back
        try:
            await asyncio.wait_for(web_delivery, WORKER_STOP_SECONDS)
        except TimeoutError:
            log.warning("outbox worker did not stop in time; its claims expire on their own")
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
