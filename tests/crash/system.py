"""The system under trial: its environment, a second process's view of its database, and
the portal as an operator's browser sees it."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, CookieJar

from config.bootstrap import System, bootstrap
from config.settings import Settings
from domain.storage import upgrade_async

PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tsur_env(data_dir: Path, port: int, *, tg: Any = None, vk: Any = None,
             log_level: str = os.environ.get("TSUR_CRASH_LOG_LEVEL", "WARNING"),
             ) -> dict[str, str]:
    """``TSUR_*`` for ``tsur run`` on SQLite in ``data_dir``, with the fakes' channels."""
    env = {"TSUR_DATA_DIR": str(data_dir), "TSUR_PORT": str(port), "TSUR_NLU": "keyword",
           "TSUR_LOG_LEVEL": log_level}
    if tg is not None:
        env |= {"TSUR_TELEGRAM_TOKEN": tg.token, "TSUR_TELEGRAM_API_URL": tg.base_url}
    if vk is not None:
        env |= {"TSUR_VK_TOKEN": vk.token, "TSUR_VK_GROUP_ID": str(vk.group_id),
                "TSUR_VK_API_URL": vk.api_url}
    return env


@asynccontextmanager
async def other_process(data_dir: Path) -> AsyncIterator[System]:
    """The system as a second process sees it (the CLI, another portal worker): the same
    wiring as ``tsur run`` over the same SQLite file; migrated first."""
    settings = Settings(data_dir=data_dir, nlu="keyword")
    data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.sqlalchemy_url)
    system = bootstrap(settings)
    try:
        yield system
    finally:
        await system.close()


def rows(db: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    """Read the database as it is on disk (a fresh connection, WAL included)."""
    with sqlite3.connect(db, timeout=30) as conn:
        conn.row_factory = sqlite3.Row
        return list(conn.execute(sql, args))


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PortalOperator:
    """An operator working in the portal over plain HTTP (a browser without JavaScript)."""

    url: str
    login: str
    http: ClientSession
    csrf: str = ""

    @classmethod
    @asynccontextmanager
    async def session(cls, url: str, login: str) -> AsyncIterator[PortalOperator]:
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
            yield cls(url, login, http)

    async def log_in(self) -> bool:
        """Log in; False if the server died meanwhile."""
        try:
            async with self.http.get(self.url + "/login") as resp:
                token = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
            assert token is not None
            async with self.http.post(self.url + "/login", data={
                    "login": self.login, "password": PASSWORD,
                    "csrf": token.group(1)}) as resp:
                assert resp.status == 200, resp.status
        except (TimeoutError, ClientError, ConnectionError):
            return False
        self.csrf = ""
        return True

    async def act(self, number: str, action: str, **form: str) -> int | None:
        """POST one complaint form; the final HTTP status, or None if the connection
        failed (the server died under it)."""
        try:
            if not self.csrf:
                async with self.http.get(f"{self.url}/portal/complaints/{number}") as resp:
                    found = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
                assert found is not None, "no CSRF token on the complaint page"
                self.csrf = found.group(1)
            async with self.http.post(f"{self.url}/portal/complaints/{number}/{action}",
                                      data={**form, "csrf": self.csrf}) as resp:
                await resp.read()
                return resp.status
        except (TimeoutError, ClientError, ConnectionError):
            return None
