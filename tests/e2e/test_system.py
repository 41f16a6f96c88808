"""The whole system as `make run` starts it: `tsur run` in a subprocess on a real SQLite file,
driven over a real WebSocket and from headless Chromium."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, FormData

from tests.e2e.browser import needs_chromium
from tests.fakes.images import png_bytes

ROOT = Path(__file__).resolve().parents[2]
CLIENT = "3f2b8c1e-1111-4222-8333-444455556666"
PROBLEM = "В Каспийске на улице Ленина 5 третий день нет воды в доме"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Tsur:
    process: asyncio.subprocess.Process
    url: str
    data_dir: Path
    output: list[str]

    @property
    def db(self) -> Path:
        return self.data_dir / "tsur.db"

    async def stop(self) -> int:
        """Ctrl-C, as a user would; returns the exit code."""
        self.process.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(self.process.communicate(), 60)
        self.output.extend(rest.decode().splitlines())
        return self.process.returncode if self.process.returncode is not None else -1


@pytest.fixture
async def start_tsur(tmp_path: Path) -> AsyncIterator[Callable[[], Awaitable[Tsur]]]:
    started: list[Tsur] = []
    port = free_port()

    async def start() -> Tsur:
        env = {**os.environ, "TSUR_DATA_DIR": str(tmp_path / "var"), "TSUR_PORT": str(port),
               "TSUR_LOG_LEVEL": "WARNING"}
        env.pop("TSUR_DATABASE_URL", None)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "config.cli", "run", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        assert proc.stdout is not None
        output: list[str] = []
        while not any("web chat:" in line for line in output):
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            assert line, "tsur exited before serving:\n" + "\n".join(output)
            output.append(line.decode().rstrip())
        tsur = Tsur(proc, f"http://127.0.0.1:{port}", tmp_path / "var", output)
        started.append(tsur)
        return tsur

    yield start
    for tsur in started:
        if tsur.process.returncode is None:
            tsur.process.kill()
            await tsur.process.wait()


class Citizen:
    """A web-chat client that answers the dialogue step by step."""

    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws

    async def say(self, frame: dict[str, Any]) -> list[dict[str, Any]]:
        await self.ws.send_json(frame)
        replies = [await asyncio.wait_for(self.ws.receive_json(), 10)]
        while True:  # the engine may answer with several messages
            try:
                replies.append(await asyncio.wait_for(self.ws.receive_json(), 0.3))
            except TimeoutError:
                return replies

    async def text(self, text: str) -> list[dict[str, Any]]:
        return await self.say({"type": "text", "text": text})

    async def press(self, payload: str, offered: list[dict[str, Any]]) -> list[dict[str, Any]]:
        assert payload in payloads(offered), (payload, offered)
        return await self.say({"type": "button", "payload": payload})


def payloads(replies: list[dict[str, Any]]) -> list[str]:
    return [b["payload"] for m in replies for row in m.get("buttons", []) for b in row]


def stored_complaints(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM complaints")]


async def test_make_run_files_a_complaint_over_websocket_and_stops_cleanly(start_tsur):
    tsur = await start_tsur()
    async with ClientSession() as http, http.ws_connect(tsur.url + "/chat/ws") as ws:
        await ws.send_json({"type": "hello", "client_id": CLIENT, "lang": "ru"})
        me = Citizen(ws)
        r = await me.text("/start")
        assert "menu:new" in payloads(r)
        r = await me.text(PROBLEM)
        assert "ЖКХ" in r[-1]["text"]
        r = await me.press("cls:yes", r)
        form = FormData()
        form.add_field("file", png_bytes(), filename="pit.png", content_type="image/png")
        async with http.post(tsur.url + "/chat/upload", data=form) as resp:
            upload_id = (await resp.json())["id"]
        await me.say({"type": "photo", "upload_id": upload_id})
        r = await me.press("photo:done", r)
        assert r[-1]["request_location"] is True
        r = await me.say({"type": "location", "latitude": 42.8816, "longitude": 47.6389})
        assert "Каспийск" in r[-1]["text"]
        r = await me.press("mun:yes", r)
        assert "152-ФЗ" in r[-1]["text"]
        r = await me.press("consent:yes", r)
        r = await me.press("cmp:submit", r)
        assert "зарегистрировано" in r[0]["text"]
    [row] = stored_complaints(tsur.db)
    assert row["number"] in r[0]["text"]
    assert (row["sector"], row["category"], row["municipality"]) == (
        "housing", "no_water", "kaspiysk")
    assert row["agency"] and row["first_answer_due"] and row["resolution_due"]
    assert row["text"] == PROBLEM and row["status"] == "new"
    with sqlite3.connect(tsur.db) as conn:
        refs = [ref for (ref,) in conn.execute("SELECT ref FROM complaint_photos")]
    assert refs == [f"web:{upload_id}"]
    assert (tsur.data_dir / "uploads" / upload_id).read_bytes() == png_bytes()
    assert await tsur.stop() == 0
    assert "tsur stopped." in tsur.output


async def test_half_written_complaint_survives_a_restart(start_tsur):
    tsur = await start_tsur()
    async with ClientSession() as http:
        async with http.ws_connect(tsur.url + "/chat/ws") as ws:
            await ws.send_json({"type": "hello", "client_id": CLIENT, "lang": "ru"})
            me = Citizen(ws)
            r = await me.press("cls:yes", await me.text(PROBLEM))
            assert "photo:done" in payloads(r)
        tsur.process.kill()  # no clean shutdown
        await tsur.process.wait()
        tsur = await start_tsur()
        async with http.ws_connect(tsur.url + "/chat/ws") as ws:
            await ws.send_json({"type": "hello", "client_id": CLIENT, "lang": "ru"})
            r = await Citizen(ws).say({"type": "button", "payload": "photo:done"})
            assert r[-1]["request_location"] is True
    assert await tsur.stop() == 0


@needs_chromium
async def test_a_complaint_filed_in_the_browser_lands_in_the_database(start_tsur, browser_page):
    tsur = await start_tsur()
    page = browser_page
    await page.goto(tsur.url + "/chat")
    await page.wait_for_selector('#status[data-state="online"]')
    await page.wait_for_selector("text=Здравствуйте")  # the greeting and the main menu

    async def click_first_button_of_last_message() -> None:
        last = page.locator(".bubble.bot").last
        await last.locator(".keyboard button").first.click()

    await page.fill("#input", PROBLEM)
    await page.press("#input", "Enter")
    await page.wait_for_selector("text=Верно?")
    await click_first_button_of_last_message()  # yes, that category
    await page.wait_for_selector("text=Пришлите фотографии")
    await click_first_button_of_last_message()  # skip photos
    await page.click("#share-location")  # Chromium's geolocation (Makhachkala)
    await page.wait_for_selector("text=Муниципалитет: Каспийск")
    await click_first_button_of_last_message()  # right municipality
    await page.wait_for_selector("text=152-ФЗ")
    await click_first_button_of_last_message()  # consent
    await page.wait_for_selector("text=Проверьте ваше обращение")
    await click_first_button_of_last_message()  # submit
    await page.wait_for_selector("text=зарегистрировано")
    [row] = stored_complaints(tsur.db)
    assert (row["sector"], row["municipality"]) == ("housing", "kaspiysk")
    assert row["latitude"] == pytest.approx(42.9849) and row["number"]
    assert await tsur.stop() == 0
