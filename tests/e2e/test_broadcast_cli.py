"""``tsur broadcast ...`` run as a user runs it, on a temporary SQLite database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.citizen import Citizen, Identity
from domain.storage import Database, sqlite_url

ROOT = Path(__file__).resolve().parents[2]


def tsur(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TSUR_DATA_DIR": str(data), "TSUR_LOG_LEVEL": "WARNING"}
    env.pop("TSUR_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "config.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def ok(data: Path, *args: str) -> str:
    result = tsur(data, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def _seed(url: str) -> None:
    database = Database.from_url(url)
    try:
        async with database.uow() as uow:
            t0 = datetime(2026, 11, 1, tzinfo=UTC)
            for key, channel, lang, muni, opted_out in (
                    ("1", "telegram", "ru", "makhachkala", False),
                    ("2", "vk", "en", "derbent", False),
                    ("3", "telegram", "ru", "makhachkala", True)):
                await uow.citizens.add(Citizen([Identity(channel, key, key)], language=lang,
                                               subscribed_municipality=muni,
                                               broadcast_opt_out=opted_out, created_at=t0))
            await uow.commit()
    finally:
        await database.dispose()


async def _outbox(url: str) -> list[tuple[str, str, str]]:
    database = Database.from_url(url)
    try:
        async with database.uow() as uow:
            return [(m.dedup_key, m.channel, str(m.status)) for m in await uow.outbox.find()]
    finally:
        await database.dispose()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "var"
    ok(folder, "broadcast", "list")  # creates and migrates the database
    asyncio.run(_seed(sqlite_url(folder / "tsur.db")))
    return folder


def test_create_schedule_send_watch_pause_resume_cancel(data: Path) -> None:
    url = sqlite_url(data / "tsur.db")
    assert ok(data, "broadcast", "audience", "--municipality", "makhachkala").strip() == "1"
    assert ok(data, "broadcast", "audience").strip() == "2"  # the opted-out one never counts
    assert ok(data, "broadcast", "audience", "--channel", "vk",
              "--language", "en").strip() == "1"

    out = ok(data, "broadcast", "create", "--text", "Плановое отключение воды",
             "--button", "Подробнее=https://rcr.example/n/1", "--municipality", "makhachkala",
             "--at", "2030-12-01 10:00")
    assert out.strip() == "broadcast 1: scheduled at 2030-12-01 10:00 (Moscow), audience 1"
    status = ok(data, "broadcast", "status", "1")
    assert "send at: 2030-12-01 10:00 (Moscow)" in status and "remaining: 1" in status
    assert asyncio.run(_outbox(url)) == []  # not due yet

    out = ok(data, "broadcast", "create", "--text", "Всем жителям", "--now")
    assert out.strip() == "broadcast 2: sending, audience 2"
    assert sorted(asyncio.run(_outbox(url))) == [("bc:2:1", "telegram", "pending"),
                                                 ("bc:2:2", "vk", "pending")]
    status = ok(data, "broadcast", "status", "2")
    assert "sent: 0" in status and "remaining: 2 (telegram 1, vk 1)" in status
    assert "eta: 0 s" in status

    assert ok(data, "broadcast", "pause", "2").strip() == "broadcast 2: paused"
    assert "2 held" in ok(data, "broadcast", "status", "2")
    assert ok(data, "broadcast", "resume", "2").strip() == "broadcast 2: sending"
    assert ok(data, "broadcast", "cancel", "2").strip() == "broadcast 2: cancelled"
    status = ok(data, "broadcast", "status", "2")
    assert "cancelled: 2" in status and "remaining: 0" in status
    assert {s for _k, _c, s in asyncio.run(_outbox(url))} == {"failed"}

    listing = ok(data, "broadcast", "list").splitlines()
    assert [line.split("\t")[:2] for line in listing] == [["2", "cancelled"],
                                                          ["1", "scheduled"]]

    out = ok(data, "broadcast", "create", "--text", "Черновик", "--sector", "roads")
    assert out.strip() == "broadcast 3: draft, audience 0"
    assert "scheduled at 2031-01-01 09:00" in ok(data, "broadcast", "send", "3", "--at",
                                                 "2031-01-01 09:00")


@pytest.mark.parametrize("args", [
    ("create", "--text", "x", "--button", "Сайт=http://insecure.example"),
    ("create", "--text", "x", "--button", "no-url"),
    ("create", "--text", "x", "--municipality", "atlantis"),
    ("create", "--text", "x", "--at", "tomorrow"),
    ("create", "--text", "x", "--at", "2020-01-01 10:00"),
    ("create", "--text", "   "),
    ("status", "99"),
    ("resume", "99"),
])
def test_bad_input_is_refused_with_a_message(data: Path, args: tuple[str, ...]) -> None:
    result = tsur(data, "broadcast", *args)
    assert result.returncode == 2 and result.stderr.startswith("tsur:"), result.stderr


def test_a_cancelled_broadcast_cannot_be_resumed(data: Path) -> None:
    ok(data, "broadcast", "create", "--text", "x")
    ok(data, "broadcast", "cancel", "1")
    result = tsur(data, "broadcast", "resume", "1")
    assert result.returncode == 2 and "cancelled" in result.stderr
