"""Shared fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from bots.web import WEB_MESSENGER, WebMessenger, create_web_app
from tests.e2e.browser import CHROMIUM
from tests.fakes.engine import FakeEngine


# --- web chat ---------------------------------------------------------------------------
@dataclass
class WebChatServer:
    """A running web chat on 127.0.0.1 with a fake engine behind it."""

    url: str
    engine: FakeEngine
    messenger: WebMessenger
    uploads_dir: Path

    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/chat/ws"


@pytest.fixture
async def start_webchat(
    tmp_path: Path,
) -> AsyncIterator[Callable[..., Awaitable[WebChatServer]]]:
    """Factory: ``await start_webchat(engine=..., max_upload_bytes=...)`` starts a server."""
    servers: list[TestServer] = []

    async def start(engine: FakeEngine | None = None, **kwargs: int) -> WebChatServer:
        engine = engine or FakeEngine()
        uploads = tmp_path / f"uploads{len(servers)}"
        app = create_web_app(engine, uploads_dir=uploads, **kwargs)
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        servers.append(server)
        url = str(server.make_url("")).rstrip("/")
        return WebChatServer(url, engine, app[WEB_MESSENGER], uploads)

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def webchat(start_webchat: Callable[..., Awaitable[WebChatServer]]) -> WebChatServer:
    """A web chat with default settings and a fresh :class:`FakeEngine`."""
    return await start_webchat()


@pytest.fixture
async def webchat_http() -> AsyncIterator[ClientSession]:
    """A real aiohttp client session (closed after the test)."""
    async with ClientSession() as session:
        yield session


# --- headless Chromium ------------------------------------------------------------------
@pytest.fixture
async def browser_page() -> AsyncIterator[Any]:
    """A headless Chromium page that may use geolocation (at Makhachkala)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = await browser.new_context(
            geolocation={"latitude": 42.9849, "longitude": 47.5047},
            permissions=["geolocation"])
        page = await context.new_page()
        page.set_default_timeout(5000)
        external: list[str] = []
        page.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "ws://127",
                                                               "blob:", "data:"))
                else external.append(r.url))
        yield page
        assert external == [], f"the page made external requests: {external}"
        await browser.close()
