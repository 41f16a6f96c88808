"""`tsur run --role …` as a deployment runs it: separate processes on SQLite and on a real
PostgreSQL, against the fake Telegram Bot API; started and stopped with Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import ClientSession

from dialogue.messages import Address, Channel, OutgoingMessage
from domain.ports import OutboxStatus
from domain.storage import Database, sqlite_url, upgrade_async
from notifications.outbox import new_message
from tests.fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]
USER = 5005201
TAKEOVER = 30.0  # seconds; ticks of 0.3 s make it about one


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Tsur:
    """One `tsur run --role ROLE` process and every line it printed."""

    def __init__(self, proc: asyncio.subprocess.Process, role: str) -> None:
        self.proc, self.role = proc, role
        self.lines: list[str] = []
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines.append(line.decode(errors="replace").rstrip())
            self._new.set()

    async def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.lines if text in line]
            if found:
                return found[0]
            if self.proc.returncode is not None and self._reader.done():
                raise AssertionError(f"exited before {text!r}:\n" + "\n".join(self.lines))
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                raise AssertionError(f"no {text!r} in:\n" + "\n".join(self.lines)) from None

    async def stop(self) -> int:
        """Ctrl-C, as a user would; returns the exit code."""
        self.proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(self.proc.wait(), 60)
        await self._reader
        return self.proc.returncode if self.proc.returncode is not None else -1

    def assert_clean(self) -> None:
        text = "\n".join(self.lines)
        assert "tsur stopped." in self.lines, text
        assert "Traceback" not in text and "did not stop" not in text, text


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "var" / "tsur.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def tsur(tmp_path: Path, database_url: str) -> AsyncIterator[Callable[..., object]]:
    """Factory: ``await tsur(role, **env)`` starts one process and waits for its banner."""
    started: list[Tsur] = []

    async def start(role: str, **extra: str) -> Tsur:
        env = {**os.environ, "TSUR_DATA_DIR": str(tmp_path / "var"),
               "TSUR_PORT": extra.pop("port", str(free_port())), "TSUR_LOG_LEVEL": "INFO",
               "TSUR_NLU": "keyword", "TSUR_LEADER_CHECK_SECONDS": "0.3",
               "TSUR_DATABASE_URL": database_url, **extra}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "config.cli", "run", "--role", role, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        one = Tsur(proc, role)
        started.append(one)
        await one.wait_for("Press Ctrl-C")
        return one

    yield start
    for one in started:
        if one.proc.returncode is None:
            one.proc.kill()
            await one.proc.wait()


def conflicts(calls: list) -> int:
    """getUpdates answered 409: a second poller was active at the same time."""
    return sum(1 for call in calls if call.method == "getUpdates" and call.status == 409)


def telegram_env(tg: FakeTelegram) -> dict[str, str]:
    return {"TSUR_TELEGRAM_TOKEN": tg.token, "TSUR_TELEGRAM_API_URL": tg.base_url}


async def queue_notice(url: str, text: str) -> None:
    """Another process (the portal, say) commits a notice to USER into the outbox."""
    await upgrade_async(url)
    database = Database.from_url(url)
    try:
        async with database.uow() as uow:
            await uow.outbox.add(new_message(
                "status", Address(Channel.TELEGRAM, str(USER)), OutgoingMessage(text),
                dedup_key=f"test:{text}", now=datetime.now(UTC)))
            await uow.commit()
    finally:
        await database.dispose()


async def outbox_statuses(url: str) -> set[OutboxStatus]:
    database = Database.from_url(url)
    try:
        async with database.uow() as uow:
            return {m.status for m in await uow.outbox.find(channel="telegram")}
    finally:
        await database.dispose()


async def test_workers_deliver_the_outbox_and_nothing_else(tsur, database_url):
    """Two `--role worker` processes: the notice goes out once, nobody polls, no port."""
    async with FakeTelegram() as tg:
        tg.add_user(USER, "Патимат", language_code="ru")
        port = free_port()
        workers = [await tsur("worker", port=str(port), **telegram_env(tg)) for _ in range(2)]
        assert any("outbox:   telegram" in line for line in workers[0].lines), workers[0].lines
        for n in range(3):
            await queue_notice(database_url, f"Обращение взято в работу {n}")
        for n in range(3):
            await tg.wait_for_message(USER, f"взято в работу {n}", timeout=30)
        for _ in range(100):  # the mark is committed just after the send
            if await outbox_statuses(database_url) == {OutboxStatus.SENT}:
                break
            await asyncio.sleep(0.1)
        assert await outbox_statuses(database_url) == {OutboxStatus.SENT}
        assert len(tg.sent_to(USER)) == 3  # once each, though two workers share the outbox
        assert tg.calls_of("getUpdates") == []  # a worker never polls
        with socket.socket() as s:  # nor listens: the web port is free
            s.bind(("127.0.0.1", port))
        for worker in workers:
            assert await worker.stop() == 0
            worker.assert_clean()


async def test_one_scheduler_leads_and_another_takes_over_after_kill_9(tsur):
    """Two `--role scheduler` processes on one database: one polls Telegram and runs the
    jobs; kill -9 it and the other does, without a single getUpdates conflict."""
    async with FakeTelegram() as tg:
        a = await tsur("scheduler", **telegram_env(tg))
        b = await tsur("scheduler", **telegram_env(tg))
        assert any("scheduler: active" in line for line in a.lines), a.lines
        assert any("scheduler: standby" in line for line in b.lines), b.lines
        assert any("polling:  Telegram" in line for line in a.lines), a.lines
        await tg.wait_for(lambda: tg.calls_of("getUpdates"), timeout=30)
        await asyncio.sleep(1.5)  # five ticks: the standby stays standing by
        assert not any("active in process" in line for line in b.lines), b.lines
        assert conflicts(tg.calls) == 0, "two pollers at once"
        a.proc.send_signal(signal.SIGKILL)
        await a.proc.wait()
        before = len(tg.calls)
        await b.wait_for(f"active in process {b.proc.pid}", timeout=TAKEOVER)
        await tg.wait_for(lambda: [c for c in tg.calls[before:] if c.method == "getUpdates"],
                          timeout=30)  # the new leader polls
        assert conflicts(tg.calls[before:]) == 0
        # only the dead leader's pending long poll may be told it was superseded
        assert conflicts(tg.calls[:before]) <= 1
        assert await b.stop() == 0
        b.assert_clean()


async def test_a_scheduler_stops_cleanly_and_hands_over(tsur):
    a = await tsur("scheduler")
    b = await tsur("scheduler")
    assert await a.stop() == 0
    a.assert_clean()
    await b.wait_for(f"active in process {b.proc.pid}", timeout=TAKEOVER)
    assert await b.stop() == 0
    b.assert_clean()


async def test_web_processes_share_a_port_and_never_poll(tsur):
    """Two `--role web` processes with TSUR_REUSE_PORT on one port both serve the chat
    page; with Telegram in polling mode neither polls (that is the scheduler's)."""
    async with FakeTelegram() as tg:
        port = str(free_port())
        webs = [await tsur("web", port=port, TSUR_REUSE_PORT="1", **telegram_env(tg))
                for _ in range(2)]
        async with ClientSession() as http:
            for _ in range(10):
                async with http.get(f"http://127.0.0.1:{port}/chat") as resp:
                    assert resp.status == 200
        assert tg.calls_of("getUpdates") == []
        assert all(not any("scheduler:" in line for line in w.lines) for w in webs)
        for web in webs:
            assert await web.stop() == 0
            web.assert_clean()


async def test_all_in_one_still_does_everything(tsur):
    async with FakeTelegram() as tg:
        tg.add_user(USER, "Патимат", language_code="ru")
        one = await tsur("all", **telegram_env(tg))
        assert any("web chat:" in line for line in one.lines)
        assert any("scheduler: active" in line for line in one.lines)
        assert any("channels: Telegram" in line for line in one.lines)
        await tg.wait_for(lambda: tg.calls_of("getUpdates"), timeout=30)
        assert await one.stop() == 0
        one.assert_clean()


def test_webhook_channels_are_the_web_processes_and_polled_ones_the_leaders():
    from config.roles import channel_views
    from config.settings import Settings

    both_polled = Settings(telegram_token="1:t", vk_token="v", vk_group_id=1)
    web, polling = channel_views(both_polled)
    assert (web.telegram_token, web.vk_token) == ("", "")
    assert (polling.telegram_token, polling.vk_token) == ("1:t", "v")
    hooked = Settings(telegram_token="1:t", telegram_webhook_url="https://x/hook",
                      vk_token="v", vk_group_id=1)
    web, polling = channel_views(hooked)
    assert (web.telegram_token, web.vk_token) == ("1:t", "")
    assert (polling.telegram_token, polling.vk_token) == ("", "v")


@pytest.mark.parametrize("env", [
    {"TSUR_LEADER_LOCK": "zookeeper"},
    {"TSUR_LEADER_LOCK": "redis"},  # without TSUR_REDIS_URL
    {"TSUR_LEADER_LOCK": "postgres"},  # on SQLite
    {"TSUR_LEADER_CHECK_SECONDS": "0"},
    {"TSUR_REUSE_PORT": "maybe"},
])
def test_deployment_settings_are_checked(env: dict[str, str]) -> None:
    from config.settings import Settings

    with pytest.raises(ValueError, match="TSUR_"):
        Settings.from_env(env)


def test_deployment_settings_defaults() -> None:
    from config.settings import Settings

    s = Settings.from_env({"TSUR_REDIS_URL": "redis://r:6379/2", "TSUR_REUSE_PORT": "yes",
                           "TSUR_LEADER_CHECK_SECONDS": "0.5"})
    assert (s.redis_url, s.reuse_port, s.leader_check_seconds) == ("redis://r:6379/2",
                                                                   True, 0.5)
    d = Settings.from_env({})
    assert (d.redis_url, d.leader_lock, d.leader_check_seconds, d.reuse_port) == (
        "", "auto", 2.0, False)
    assert "redis://" not in repr(s)  # may carry a password
