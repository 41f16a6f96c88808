"""The web chat page keeps what it has not had acknowledged across a reload: headless
Chromium against the real aiohttp server, the real engine on SQLite where it matters.

A frame typed while the server is down, or one the server stored but whose acknowledgement
never arrived, is sent again by the reloaded page — unchanged, before anything else (no
``/start`` greeting overtakes it) — and recorded once; the page's storage is empty once it
is acknowledged. The storage is bounded, and a full or blocked one does not break the chat.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bots.web import create_web_app
from dialogue.engine import Engine
from dialogue.i18n import get_translator
from dialogue.messages import IncomingMessage, OutgoingMessage
from dialogue.nlu import KeywordClassifier
from domain.calendar import WorkingCalendar
from domain.storage import Database, sqlite_url, upgrade_async
from tests.e2e.browser import needs_chromium
from tests.fakes.dialogue import FixedClock, catalogue
from tests.fakes.engine import FakeEngine
from tests.fakes.images import png_bytes

pytestmark = needs_chromium

PENDING_KEY = "tsur.webchat.pending"
PROBLEM = "Огромная яма на дороге, асфальт разбит, машины объезжают по встречке"
_ = get_translator("ru").gettext


class Recorded:
    """The real engine, recording what reached it; with :attr:`hold` set, a photo is
    stored (committed) and then its answer — and so its acknowledgement — is held back
    until :attr:`gate` opens."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.received: list[IncomingMessage] = []
        self.hold = False
        self.stored = asyncio.Event()
        self.gate = asyncio.Event()

    async def handle(self, msg: IncomingMessage) -> list[OutgoingMessage]:
        self.received.append(msg)
        replies = await self.engine.handle(msg)
        if self.hold and msg.attachments:
            self.stored.set()
            await self.gate.wait()
        return replies

    def texts(self) -> list[str]:
        return [m.text or m.payload or ",".join(a.ref for a in m.attachments)
                for m in self.received]


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    url = sqlite_url(tmp_path / "chat.db")
    await upgrade_async(url)
    db = Database.from_url(url)
    yield db
    await db.dispose()


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Any]:
    """Factory: ``await serve(engine, port)`` starts a web chat (uploads in one directory,
    so a server started again on the same port finds the photos of the one before)."""
    servers: list[TestServer] = []

    async def start(engine: Any, port: int = 0) -> TestServer:
        server = TestServer(create_web_app(engine, uploads_dir=tmp_path / "uploads"),
                            host="127.0.0.1", port=port)
        await server.start_server()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


def real_engine(database: Database) -> Recorded:
    cat = catalogue()
    return Recorded(Engine(database.uow, cat, WorkingCalendar(), KeywordClassifier(cat),
                           FixedClock()))


async def kept(page: Any) -> list[dict[str, Any]]:
    """The frames the page keeps in its sessionStorage, as sent."""
    raw = await page.evaluate(f"sessionStorage.getItem('{PENDING_KEY}')")
    return [json.loads(e["data"]) for e in json.loads(raw)] if raw is not None else []


async def nothing_kept(page: Any) -> None:
    await page.wait_for_function(f"sessionStorage.getItem('{PENDING_KEY}') === null")


async def conversation_data(database: Database, page: Any) -> dict[str, Any]:
    client = await page.evaluate("localStorage.getItem('tsur.webchat.client_id')")
    async with database.uow() as uow:
        conversation = await uow.conversations.load("web", client)
    return conversation.data or {}


async def test_a_frame_typed_while_the_server_is_down_is_sent_by_the_reloaded_page(
        database: Database, serve: Any, browser_page: Any) -> None:
    engine = real_engine(database)
    server = await serve(engine)
    url, port = str(server.make_url("/chat")), server.port
    page = browser_page
    await page.goto(url)
    await page.wait_for_selector('#status[data-state="online"]')
    await page.wait_for_selector(".bubble.bot")  # the greeting
    await server.close()  # the server goes away
    await page.wait_for_selector('#status[data-state="offline"]')
    await page.fill("#input", PROBLEM)
    await page.press("#input", "Enter")
    assert [f["text"] for f in await kept(page)] == [PROBLEM]
    with pytest.raises(Exception, match="ERR_CONNECTION_REFUSED"):
        await page.reload()  # the citizen reloads: nothing answers
    await page.wait_for_url(lambda u: u.startswith("chrome-error:"))  # the browser says so
    await serve(engine, port=port)  # the server is back
    await page.goto(url)
    # the frame is redrawn, sent, and answered (the classifier's suggestion)
    await page.wait_for_selector(f"button:has-text('{_('✅ Yes')}')")
    assert await page.locator(".bubble.user").all_text_contents() == [PROBLEM]
    await nothing_kept(page)
    # sent once, and not overtaken by a /start of the reloaded page
    assert engine.texts() == ["/start", PROBLEM]
    data = await conversation_data(database, page)
    assert data["draft"]["text"] == PROBLEM


async def test_a_photo_stored_but_not_acknowledged_is_recorded_once_after_a_reload(
        database: Database, serve: Any, browser_page: Any) -> None:
    engine = real_engine(database)
    server = await serve(engine)
    page = browser_page
    await page.goto(str(server.make_url("/chat")))
    await page.wait_for_selector(".bubble.bot")
    await page.fill("#input", PROBLEM)
    await page.press("#input", "Enter")
    await page.click(f"button:has-text('{_('✅ Yes')}')")
    await page.wait_for_selector(f"button:has-text('{_('⏭ Skip')}')")  # photos, please
    engine.hold = True
    await page.set_input_files("#photo-input", files=[
        {"name": "yama.png", "mimeType": "image/png", "buffer": png_bytes()}])
    await asyncio.wait_for(engine.stored.wait(), 5)  # stored; the ack is held back
    [photo] = (await conversation_data(database, page))["draft"]["photos"]
    upload_id = photo["ref"].removeprefix("web:")
    assert [(f["type"], f["upload_id"]) for f in await kept(page)] == [("photo", upload_id)]
    await page.reload()
    await page.wait_for_selector('#status[data-state="online"]')
    # the citizen's bubble is redrawn with the photo from the server
    await page.wait_for_selector(f".bubble.user img[src='/chat/uploads/{upload_id}']")
    engine.gate.set()
    attached = get_translator("ru").ngettext(
        "{n} photo attached. Send more or press Done.",
        "{n} photos attached. Send more or press Done.", 1).format(n=1)
    await page.wait_for_selector(f".bubble.bot:has-text('{attached}')")
    await nothing_kept(page)
    photos = [m for m in engine.received if m.attachments]
    assert len(photos) == 2 and photos[0].received_at == photos[1].received_at
    assert engine.texts()[-2:] == [upload_id] * 2  # no /start in between
    data = await conversation_data(database, page)
    assert [p["ref"] for p in data["draft"]["photos"]] == [f"web:{upload_id}"]  # once


# (what the citizen types, how many times; how many frames are kept)
BOUNDS = {
    "count": ("short", 55, 50),
    "characters": ("x" * 60_000, 5, 4),  # 256 Ki characters are kept: four of these
}


@pytest.mark.parametrize("bound", sorted(BOUNDS))
async def test_the_kept_frames_are_bounded_oldest_first(bound: str, serve: Any,
                                                         browser_page: Any) -> None:
    text, times, kept_frames = BOUNDS[bound]
    server = await serve(FakeEngine())
    page = browser_page
    await page.goto(str(server.make_url("/chat")))
    await page.wait_for_selector(".bubble.bot")
    await server.close()
    await page.wait_for_selector('#status[data-state="offline"]')
    for n in range(times):
        await page.fill("#input", f"{n}:{text}")
        await page.press("#input", "Enter")
    assert [f["text"] for f in await kept(page)] == [
        f"{n}:{text}" for n in range(kept_frames)]


BLOCKED = {
    # private mode of some browsers: every write is over the quota
    "full": "Storage.prototype.setItem = function () {"
            " throw new DOMException('full', 'QuotaExceededError'); };",
    # storage switched off: touching it throws
    "blocked": "for (const name of ['sessionStorage', 'localStorage'])"
               " Object.defineProperty(window, name, { get() {"
               " throw new DOMException('blocked', 'SecurityError'); } });",
}


@pytest.mark.parametrize("storage", sorted(BLOCKED))
async def test_a_full_or_blocked_storage_does_not_break_the_chat(
        storage: str, webchat: Any, browser_page: Any) -> None:
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.add_init_script(BLOCKED[storage])
    await page.goto(webchat.url + "/chat")
    await page.wait_for_selector('#status[data-state="online"]')
    await page.fill("#input", "still here")
    await page.press("#input", "Enter")
    await page.wait_for_selector("text=echo: still here")
    assert [m.text for m in webchat.engine.received] == ["/start", "still here"]
    assert errors == []


async def test_at_most_four_frames_are_unacknowledged_on_the_wire(
        serve: Any, browser_page: Any) -> None:
    """So that every frame sent again is still among the last five the engine remembers
    (dialogue/engine.py SEEN_KEPT): the fifth waits for the first one's ack."""
    gate = asyncio.Event()

    class Held(FakeEngine):
        async def handle(self, msg: IncomingMessage, **kwargs: Any) -> list[OutgoingMessage]:
            if msg.text == "slow":
                await gate.wait()
            return await super().handle(msg, **kwargs)

    engine = Held()
    server = await serve(engine)
    page = browser_page
    wire: list[tuple[str, dict[str, Any]]] = []  # what went each way, in order
    page.on("websocket", lambda ws: (
        ws.on("framesent", lambda data: wire.append(("sent", json.loads(data)))),
        ws.on("framereceived", lambda data: wire.append(("received", json.loads(data))))))
    await page.goto(str(server.make_url("/chat")))
    await page.wait_for_selector(".bubble.bot")
    texts = ["slow", "a1", "a2", "a3", "a4", "a5"]
    for text in texts:
        await page.fill("#input", text)
        await page.press("#input", "Enter")

    def sent() -> list[str]:
        return [f["text"] for way, f in wire if way == "sent" and "id" in f]

    async with asyncio.timeout(5):
        while len(sent()) < 4:
            await asyncio.sleep(0.02)
    gate.set()
    await page.wait_for_selector("text=echo: a5")
    assert sent() == texts  # each once, in order
    first_ack = next(i for i, (way, f) in enumerate(wire) if f.get("type") == "ack")
    fifth = next(i for i, (way, f) in enumerate(wire) if f.get("text") == "a4")
    assert first_ack < fifth


async def test_a_text_too_long_once_escaped_is_refused_not_kept(
        webchat: Any, browser_page: Any) -> None:
    """40,000 quotes are 40 KB typed but 80 KB as JSON: over the frame limit, such a frame
    would close the socket on every attempt, and now after every reload too."""
    page = browser_page
    await page.goto(webchat.url + "/chat")
    await page.wait_for_selector('#status[data-state="online"]')
    await page.fill("#input", '"' * 40_000)
    await page.press("#input", "Enter")
    await page.wait_for_selector(".bubble.error")
    assert await kept(page) == []
    await page.fill("#input", "after")
    await page.press("#input", "Enter")
    await page.wait_for_selector("text=echo: after")
    assert [m.text for m in webchat.engine.received] == ["/start", "after"]


def test_the_page_window_fits_in_what_the_engine_remembers() -> None:
    """chat.js's WINDOW is chosen for dialogue/engine.py's SEEN_KEPT: change them together."""
    import re

    from bots.web.server import STATIC_DIR
    from dialogue.engine import SEEN_KEPT

    match = re.search(r"const WINDOW = (\d+);", (STATIC_DIR / "chat.js").read_text())
    assert match is not None and 1 <= int(match.group(1)) < SEEN_KEPT
