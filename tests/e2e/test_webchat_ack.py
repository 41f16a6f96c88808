"""The web chat acknowledges a frame only once it is stored and answered, and a frame sent
again after a reconnect keeps its time stamp, so the engine recognises it: a real aiohttp
server and client on 127.0.0.1; the real engine on SQLite for the repeat."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientWebSocketResponse

from tests.e2e.browser import needs_chromium
from tests.e2e.conftest import WebChatServer

CLIENT = "7c1e2a9e-5b7d-4c1e-9a0b-6d2e8f4a7c22"


async def connect(http: ClientSession, chat: WebChatServer) -> ClientWebSocketResponse:
    ws = await http.ws_connect(chat.ws_url())
    await ws.send_json({"type": "hello", "client_id": CLIENT, "lang": "ru"})
    return ws


async def frames_until_ack(ws: ClientWebSocketResponse, frame_id: str) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = await ws.receive_json(timeout=5)
        frames.append(frame)
        if frame == {"type": "ack", "id": frame_id}:
            return frames


async def test_a_frame_with_an_id_is_acknowledged_after_its_replies(
        webchat: WebChatServer, webchat_http: ClientSession) -> None:
    ws = await connect(webchat_http, webchat)
    sent_at = time.time() * 1000
    await ws.send_json({"type": "text", "text": "two", "id": "f-1", "sent_at": sent_at})
    frames = await frames_until_ack(ws, "f-1")
    assert [f.get("text") for f in frames] == ["first", "second", None]
    [msg] = webchat.engine.received
    assert msg.received_at == datetime.fromtimestamp(sent_at / 1000, UTC)
    # a frame without an id (an older page) is answered as before, without an ack
    await ws.send_json({"type": "text", "text": "hi"})
    assert (await ws.receive_json(timeout=5))["text"] == "echo: hi"
    await ws.send_json({"type": "text", "text": "bye", "id": "f-2"})
    assert [f.get("type") for f in await frames_until_ack(ws, "f-2")] == ["message", "ack"]
    await ws.close()


async def test_a_browser_clock_far_off_is_not_taken(
        webchat: WebChatServer, webchat_http: ClientSession) -> None:
    ws = await connect(webchat_http, webchat)
    before = datetime.now(UTC)
    await ws.send_json({"type": "text", "text": "x", "id": "old", "sent_at": 1_000_000})
    await frames_until_ack(ws, "old")
    [msg] = webchat.engine.received
    assert msg.received_at is not None and msg.received_at >= before
    await ws.close()


async def test_a_bad_id_or_time_stamp_is_refused(
        webchat: WebChatServer, webchat_http: ClientSession) -> None:
    ws = await connect(webchat_http, webchat)
    for bad in ({"id": "with space"}, {"id": ""}, {"id": 5}, {"id": "x" * 65},
                {"id": "ok", "sent_at": "soon"}, {"id": "ok", "sent_at": True},
                {"id": "ok", "sent_at": -1}):
        await ws.send_json({"type": "text", "text": "x", **bad})
        frame = await ws.receive_json(timeout=5)
        assert frame["type"] == "error" and frame["code"] == "bad_field", (bad, frame)
        if bad["id"] == "ok":  # a well-formed id: acknowledged, it would fail again
            assert await ws.receive_json(timeout=5) == {"type": "ack", "id": "ok"}
    assert webchat.engine.received == []
    await ws.close()


async def test_a_bad_frame_with_an_id_is_acknowledged_after_its_error(
        webchat: WebChatServer, webchat_http: ClientSession) -> None:
    """Sent again it would fail again: the page may forget it (or it would send it after
    every reconnect and reload, holding up what comes after it)."""
    ws = await connect(webchat_http, webchat)
    for n, bad in enumerate(({"type": "dance"}, {"type": "text", "text": "  "},
                             {"type": "location", "latitude": 100, "longitude": 47})):
        await ws.send_json({**bad, "id": f"bad-{n}", "sent_at": time.time() * 1000})
        error, ack = await ws.receive_json(timeout=5), await ws.receive_json(timeout=5)
        assert error["type"] == "error" and ack == {"type": "ack", "id": f"bad-{n}"}
    # a bad id cannot be acknowledged: only the error comes, then the next frame's reply
    await ws.send_json({"type": "dance", "id": "with space"})
    await ws.send_json({"type": "text", "text": "hi"})
    assert (await ws.receive_json(timeout=5))["code"] == "unknown_type"
    assert (await ws.receive_json(timeout=5))["text"] == "echo: hi"
    await ws.close()


async def test_a_frame_sent_again_after_a_reconnect_is_recorded_once(
        tmp_path: Path, start_webchat: Callable[..., Awaitable[WebChatServer]],
        webchat_http: ClientSession) -> None:
    """The page sends again what was not acknowledged when the socket broke; the engine
    answers the repeat but does not record the location twice."""
    from dialogue.engine import Engine
    from dialogue.nlu import KeywordClassifier
    from domain.calendar import WorkingCalendar
    from domain.storage import Database, sqlite_url, upgrade_async
    from tests.fakes.dialogue import FixedClock, catalogue

    url = sqlite_url(tmp_path / "w.db")
    await upgrade_async(url)
    database = Database.from_url(url)
    cat = catalogue()
    engine = Engine(database.uow, cat, WorkingCalendar(), KeywordClassifier(cat), FixedClock())
    chat = await start_webchat(engine=engine)
    try:
        ws = await connect(webchat_http, chat)
        sent_at = time.time() * 1000
        problem = {"type": "text", "id": "p-1", "sent_at": sent_at,
                   "text": "В Каспийске на улице Ленина 5 третий день нет воды в доме"}
        await ws.send_json(problem)
        first = await frames_until_ack(ws, "p-1")
        await ws.close()  # the ack was lost with the connection, say: the page repeats
        ws = await connect(webchat_http, chat)
        await ws.send_json(problem)
        again = await frames_until_ack(ws, "p-1")
        await ws.close()
        async with database.uow() as uow:
            conversation = await uow.conversations.load("web", CLIENT)
        assert [f["type"] for f in first][-1] == [f["type"] for f in again][-1] == "ack"
        assert any(f.get("type") == "message" for f in again)  # answered again
        seen = (conversation.data or {}).get("seen", [])
        assert len([s for s in seen if s[1] == problem["text"]]) == 1  # recorded once
    finally:
        await database.dispose()


@needs_chromium
async def test_the_page_sends_again_what_was_not_acknowledged(
        start_webchat: Callable[..., Awaitable[WebChatServer]], browser_page: Any) -> None:
    """The socket breaks while a frame is being handled: the page, reconnected, sends it
    again with the same id and time stamp (the engine can tell the repeat)."""
    import asyncio

    from dialogue.messages import IncomingMessage, OutgoingMessage
    from tests.fakes.engine import FakeEngine

    gate = asyncio.Event()

    class HeldEngine(FakeEngine):
        async def handle(self, msg: IncomingMessage) -> list[OutgoingMessage]:
            if msg.text == "slow":
                self.received.append(msg)
                await gate.wait()
                self.received.remove(msg)
            return await super().handle(msg)

    engine = HeldEngine()
    chat = await start_webchat(engine=engine)
    page = browser_page
    await page.goto(chat.url + "/chat")
    await page.wait_for_selector('#status[data-state="online"]')
    await page.fill("#input", "slow")
    await page.press("#input", "Enter")
    async with asyncio.timeout(5):
        while not any(m.text == "slow" for m in engine.received):
            await asyncio.sleep(0.02)
    first = next(m for m in engine.received if m.text == "slow")
    await asyncio.wait_for(chat.messenger.close_all(), 5)  # the connection breaks
    gate.set()  # handled, but the acknowledgement has nowhere to go
    await page.wait_for_selector("text=echo: slow", timeout=15_000)
    again = [m for m in engine.received if m.text == "slow"]
    assert len(again) == 2 and again[0] == first
    assert again[1].received_at == first.received_at  # the same frame, sent again
    assert await page.locator(".bubble.user").all_text_contents() == ["slow"]
