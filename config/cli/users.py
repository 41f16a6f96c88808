"""``tsur user add|list|disable``: the portal's staff accounts."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from config.settings import Settings

T = TypeVar("T")
ROLES = ("operator", "communications", "supervisor", "admin")


def register(sub: Any) -> None:
    user = sub.add_parser("user", help="manage portal users")
    actions = user.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="create a user (the password is asked for, or "
                                         "read from TSUR_NEW_PASSWORD)")
    add.add_argument("login")
    add.add_argument("role", choices=ROLES)
    add.set_defaults(handler=_add)
    lst = actions.add_parser("list", help="list users")
    lst.set_defaults(handler=_list)
    disable = actions.add_parser("disable", help="disable a user and end their sessions")
    disable.add_argument("login")
    disable.set_defaults(handler=_disable)


def _with_database(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    from domain.storage import Database, upgrade_async

    async def go() -> T:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await upgrade_async(settings.sqlalchemy_url)
        database = Database.from_url(settings.sqlalchemy_url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(go())


def _add(args: argparse.Namespace, settings: Settings) -> int:
    from portal.users import add_user

    password = os.environ.get("TSUR_NEW_PASSWORD") or getpass.getpass("Password: ")
    _with_database(settings, lambda db: add_user(db, args.login, password, args.role))
    print(f"user {args.login} ({args.role}) added")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    from portal.users import list_users

    for u in _with_database(settings, list_users):
        state = "active" if u.active else "disabled"
        print(f"{u.login}\t{u.role}\t{state}")
    return 0


def _disable(args: argparse.Namespace, settings: Settings) -> int:
    from portal.users import disable_user

    _with_database(settings, lambda db: disable_user(db, args.login))
    print(f"user {args.login} disabled")
    return 0
