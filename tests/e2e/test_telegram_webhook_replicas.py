"""Two webhook workers on one PostgreSQL get the same update at once (Telegram repeats an
update whose answer timed out, and a load balancer may hand the repeat to another
worker). Each worker remembers update ids only for itself (``bots.dedup``); what keeps
the repeat from being recorded twice is the engine's fingerprint, stored with the
conversation, whose row PostgreSQL locks (``FOR UPDATE``) while a worker handles it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from tests.fakes.postgres import PostgresServer, find_bindir
from tests.fakes.telegram import FakeTelegram

USER = 5_007_001
SECRET = "replicas-secret_0123"
PROBLEM = "В Каспийске на улице Ленина 5 третий день нет воды в доме"

pytestmark = pytest.mark.skipif(find_bindir() is None, reason="no PostgreSQL binaries")


@dataclass
class Worker:
    url: str
    database: Any


@pytest.fixture(scope="module")
def postgres() -> AsyncIterator[PostgresServer]:
    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture
async def workers(postgres: PostgresServer) -> AsyncIterator[tuple[FakeTelegram, list[Worker]]]:
    from bots.telegram import build_dispatcher, make_bot
    from bots.telegram.webhook import setup_telegram_webhook
    from dialogue.engine import Engine
    from dialogue.nlu import KeywordClassifier
    from domain.calendar import WorkingCalendar
    from domain.storage import Database, upgrade_async
    from tests.fakes.dialogue import FixedClock, catalogue

    url = postgres.create_database()
    await upgrade_async(url)
    cat = catalogue()
    servers, bots, found = [], [], []
    async with FakeTelegram() as tg:
        tg.add_user(USER, "Патимат", language_code="ru")
        for _ in range(2):  # two processes: their own engine, pool and memory of ids
            database = Database.from_url(url)
            engine = Engine(database.uow, cat, WorkingCalendar(), KeywordClassifier(cat),
                            FixedClock())
            bot = make_bot(tg.token, tg.base_url)
            app = web.Application()
            setup_telegram_webhook(app, build_dispatcher(engine), bot, path="/tg",
                                   secret=SECRET)
            server = TestServer(app, host="127.0.0.1", port=0)
            await server.start_server()
            servers.append(server)
            bots.append(bot)
            found.append(Worker(str(server.make_url("/tg")), database))
        yield tg, found
        for server in servers:
            await server.close()
        for bot in bots:
            await bot.session.close()
        for worker in found:
            await worker.database.dispose()


async def post(tg: FakeTelegram, http: ClientSession, worker: Worker,
               update: dict[str, Any]) -> int:
    async with http.post(worker.url, data=json.dumps(update),
                         headers={"Content-Type": "application/json",
                                  "X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
        tg.webhook_answered(resp.status, await resp.text(), resp.content_type)
        return resp.status


def button(tg: FakeTelegram, data: str) -> Any:
    return next(m for m in reversed(tg.sent_to(USER))
                if any(b.get("callback_data") == data for row in m.buttons for b in row))


async def test_the_same_photo_at_two_workers_at_once_is_recorded_once(workers) -> None:
    tg, (a, b) = workers
    async with ClientSession() as http:
        assert await post(tg, http, a, tg.send_text(USER, PROBLEM)) == 200
        assert await post(tg, http, b, tg.press(USER, button(tg, "cls:yes"), "cls:yes")) == 200
        photo = tg.send_photo(USER)
        statuses = await asyncio.gather(post(tg, http, a, photo), post(tg, http, b, photo),
                                        post(tg, http, a, photo))
        assert statuses == [200, 200, 200]
    async with a.database.uow() as uow:
        conversation = await uow.conversations.load("telegram", str(USER))
    photos = (conversation.data or {})["draft"]["photos"]
    assert len(photos) == 1, photos
    said = [m.text or "" for m in tg.sent_to(USER)]
    assert any("Прикреплена 1 фотография" in t for t in said)  # each delivery answered...
    assert not any("Прикреплены 2" in t or "Прикреплены 3" in t for t in said)  # ...once
