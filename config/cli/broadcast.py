"""``tsur broadcast create|audience|send|list|status|pause|resume|cancel``.

Times are Moscow time (``--at "2026-12-01 10:00"``). ``create`` makes a draft and prints
its audience; ``--at`` schedules it, ``--now`` sends it at once. The running ``tsur run``
writes due broadcasts to the outbox and delivers them; ``send``/``--now`` write the
recipients from this process already.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from config.settings import Settings

T = TypeVar("T")


def register(sub: Any) -> None:
    group = sub.add_parser("broadcast", help="news broadcasts to citizens")
    actions = group.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a broadcast; prints its id and "
                                               "audience size")
    create.add_argument("--text", required=True)
    create.add_argument("--photo", help="a photo reference (Telegram file_id, URL)")
    create.add_argument("--button", action="append", default=[], metavar="LABEL=URL",
                        help="a link button (https only); repeatable")
    _audience_options(create)
    when = create.add_mutually_exclusive_group()
    when.add_argument("--at", help='send at this Moscow time, e.g. "2026-12-01 10:00"')
    when.add_argument("--now", action="store_true", help="send at once")
    create.add_argument("--by", default=f"cli:{_user()}", help="who creates it")
    create.set_defaults(handler=_create)
    count = actions.add_parser("audience", help="count the audience of these filters")
    _audience_options(count)
    count.set_defaults(handler=_count)
    send = actions.add_parser("send", help="send a draft now, or schedule it with --at")
    send.add_argument("id", type=int)
    send.add_argument("--at", help="Moscow time")
    send.set_defaults(handler=_send)
    lst = actions.add_parser("list", help="the latest broadcasts")
    lst.add_argument("--limit", type=int, default=20)
    lst.set_defaults(handler=_list)
    for name, text in (("status", "progress: sent, failed, unreachable, remaining, ETA"),
                       ("pause", "hold the unsent messages back"),
                       ("resume", "send the held messages"),
                       ("cancel", "stop for good; unsent messages are dropped")):
        action = actions.add_parser(name, help=text)
        action.add_argument("id", type=int)
        action.set_defaults(handler=_status if name == "status" else _control, verb=name)


def _audience_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--municipality", action="append", default=[], help="subscribed municipality slug")
    add("--sector", action="append", default=[], help="subscribed sector slug")
    add("--channel", action="append", default=[], choices=("telegram", "vk", "web"),
        help="default: telegram and vk")
    add("--language", action="append", default=[], choices=("ru", "en"))
    add("--complained-sector", action="append", default=[],
        help="citizens with a complaint in this sector")
    add("--complained-municipality", action="append", default=[],
        help="citizens with a complaint in this municipality")
    add("--days", type=int, help="... filed in the last N days")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _audience(args: argparse.Namespace) -> Any:
    from domain.broadcast import Audience

    return Audience(municipalities=args.municipality, sectors=args.sector,
                    channels=args.channel, languages=args.language,
                    complained_sectors=args.complained_sector,
                    complained_municipalities=args.complained_municipality,
                    complained_days=args.days)


def _links(buttons: list[str]) -> list[Any]:
    from domain.broadcast import Link

    links = []
    for raw in buttons:
        label, sep, url = raw.partition("=")
        if not sep:
            raise ValueError(f"--button needs LABEL=URL: {raw!r}")
        links.append(Link(label.strip(), url.strip()))
    return links


def _with_service(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    from domain.catalogue import load_catalogue
    from domain.storage import Database, upgrade_async
    from notifications.broadcasts import BroadcastService

    async def go() -> T:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await upgrade_async(settings.sqlalchemy_url)
        database = Database.from_url(settings.sqlalchemy_url)
        try:
            return await work(BroadcastService(database,
                                               catalogue=load_catalogue(settings.catalogue)))
        finally:
            await database.dispose()

    return asyncio.run(go())


def _create(args: argparse.Namespace, settings: Settings) -> int:
    from notifications.broadcast_message import moscow, parse_moscow

    audience, links = _audience(args), _links(args.button)
    send_at = parse_moscow(args.at) if args.at else None

    async def work(service: Any) -> Any:
        b = await service.create(args.text, created_by=args.by, audience=audience,
                                 photo=args.photo, links=links, send_at=send_at)
        return await service.send_now(b.id) if args.now else b

    b = _with_service(settings, work)
    when = f" at {moscow(b.send_at)} (Moscow)" if b.send_at and not args.now else ""
    print(f"broadcast {b.id}: {b.state}{when}, audience {b.audience_size}")
    return 0


def _count(args: argparse.Namespace, settings: Settings) -> int:
    audience = _audience(args)
    print(_with_service(settings, lambda service: service.audience(audience)))
    return 0


def _send(args: argparse.Namespace, settings: Settings) -> int:
    from notifications.broadcast_message import moscow, parse_moscow

    if args.at:
        at = parse_moscow(args.at)
        b = _with_service(settings, lambda service: service.schedule(args.id, at))
        print(f"broadcast {b.id}: scheduled at {moscow(b.send_at)} (Moscow), "
              f"audience {b.audience_size}")
    else:
        b = _with_service(settings, lambda service: service.send_now(args.id))
        print(f"broadcast {b.id}: {b.state}, {b.recipients} messages queued")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from notifications.broadcast_message import moscow

    for b in _with_service(settings, lambda service: service.list(args.limit)):
        first_line = b.text.splitlines()[0][:60]
        print(f"{b.id}\t{b.state}\t{moscow(b.send_at)}\t{b.audience_size}\t{first_line}")
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from notifications.broadcast_message import moscow

    p = _with_service(settings, lambda service: service.progress(args.id))
    b = p.broadcast
    eta = "—" if p.eta is None else f"{int(p.eta.total_seconds())} s"
    channels = ", ".join(f"{ch} {n}" for ch, n in sorted(p.remaining_by_channel.items()))
    print(f"broadcast {b.id}: {b.state}\n"
          f"send at: {moscow(b.send_at)} (Moscow)\n"
          f"audience: {b.audience_size}\nqueued: {b.recipients}\n"
          f"sent: {p.sent}\nfailed: {p.failed}\nunreachable: {p.unreachable}\n"
          f"cancelled: {p.cancelled}\nremaining: {p.remaining}"
          + (f" ({channels})" if channels else "") + (f", {p.held} held" if p.held else "")
          + f"\neta: {eta}")
    return 0


def _control(args: argparse.Namespace, settings: Settings) -> int:
    b = _with_service(settings, lambda service: getattr(service, args.verb)(args.id))
    print(f"broadcast {b.id}: {b.state}")
    return 0
