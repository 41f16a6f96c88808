"""One citizen dialogue through Telegram, VK and the web chat (issue 3, item 3).

The same steps — describe the problem, confirm the category, skip photos, type an
address, confirm the municipality, consent, submit — then an operator's answer through the
outbox. Each channel runs for real (aiogram polling the fake Bot API, vkbottle polling the
fake VK, the web chat over a WebSocket) on its own SQLite file, and must show the citizen
exactly what the dialogue core says — the texts and the buttons of a reference run of the
engine with no channel at all — modulo rendering: Telegram's location keyboard carrying
the question's buttons as text buttons (their labels, not payloads) and its plain texts
put together with the message after them (``merge_replies``), VK's numbered list of
options that did not fit as buttons.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from bots.telegram.render import merge_replies
from dialogue.engine import Engine
from dialogue.messages import Channel, OutgoingMessage
from dialogue.nlu import KeywordClassifier
from domain.calendar import WorkingCalendar
from domain.services import answer_complaint
from domain.storage import Database, sqlite_url, upgrade_async
from notifications.delivery import DeliveryWorker
from notifications.handlers import StatusNotifier
from notifications.messenger import OnlineOnlyMessenger
from notifications.ratelimit import DEFAULT_LIMITS, RateLimiter
from tests.fakes.dialogue import FRIDAY_EVENING, Chat, FixedClock, catalogue
from tests.fakes.messenger import FakeClock

PROBLEM = "Огромная яма на дороге, асфальт разбит, машины объезжают по встречке"
ADDRESS = "Дербент, улица Гагарина 5"
ANSWER = "Яму заделают до пятницы, подрядчик уже на месте."
# (what the citizen does, the text or payload) — the dialogue as a citizen goes through it
STEPS = [("text", PROBLEM), ("press", "cls:yes"), ("press", "photo:done"),
         ("text", ADDRESS), ("press", "mun:yes"), ("press", "consent:yes"),
         ("press", "cmp:submit")]
TG_USER, VK_USER, WEB_CLIENT = 5005201, 7007201, "5b0c2f6e-2222-4333-8444-555566667777"


@dataclass(frozen=True)
class Shown:
    """One message as the citizen sees it: its text and the payloads of its buttons."""

    text: str
    payloads: tuple[str, ...]


def expected(replies: list[OutgoingMessage]) -> list[Shown]:
    return [Shown(r.text, tuple(b.payload for b in r.all_buttons())) for r in replies]


def expected_on_telegram(replies: list[OutgoingMessage]) -> list[Shown]:
    """A question asking for the location shows its buttons' labels (text buttons)."""
    return [Shown(r.text, tuple(b.label if r.request_location else b.payload
                                for b in r.all_buttons())) for r in merge_replies(replies)]


class Driver(Protocol):
    channel: str
    chat_id: str

    async def say(self, text: str, count: int) -> list[Shown]: ...

    async def press(self, payload: str, count: int) -> list[Shown]: ...

    async def incoming(self, count: int) -> list[Shown]:
        """The next ``count`` messages the citizen sees without having written."""
        ...


def new_engine(database: Database) -> Engine:
    cat = catalogue()
    return Engine(database.uow, cat, WorkingCalendar(), KeywordClassifier(cat), FixedClock())


async def new_database(path: Path) -> Database:
    url = sqlite_url(path)
    await upgrade_async(url)
    return Database.from_url(url, clock=FixedClock(),
                             event_handler=StatusNotifier(catalogue()))


# --- Telegram ---------------------------------------------------------------------------------

class TelegramDriver:
    channel = "telegram"
    chat_id = str(TG_USER)

    def __init__(self, tg: Any) -> None:
        self.tg = tg
        self.seen = 0

    def _all_shown(self) -> list[Shown]:
        out: list[Shown] = []
        for m in self.tg.sent_to(TG_USER):
            # inline buttons' payloads; a reply keyboard's text buttons (not the location one)
            out.append(Shown(m.text or m.caption or "", tuple(
                b.get("callback_data") or b["text"] for row in m.buttons for b in row
                if "callback_data" in b or not b.get("request_location"))))
        return out

    async def _next(self, count: int) -> list[Shown]:
        found = await self.tg.wait_for(
            lambda: len(self._all_shown()) >= self.seen + count
            and self._all_shown()[self.seen:])
        self.seen += len(found)
        return found

    async def say(self, text: str, count: int) -> list[Shown]:
        self.tg.send_text(TG_USER, text)
        return await self._next(count)

    async def press(self, payload: str, count: int) -> list[Shown]:
        [message] = [m for m in self.tg.sent_to(TG_USER)[::-1]
                     if any(b.get("callback_data") == payload
                            for row in m.buttons for b in row)][:1]
        self.tg.press(TG_USER, message, payload)
        return await self._next(count)

    async def incoming(self, count: int) -> list[Shown]:
        return await self._next(count)


# --- VK ----------------------------------------------------------------------------------------

class VkDriver:
    channel = "vk"
    chat_id = str(VK_USER)

    def __init__(self, vk: Any) -> None:
        self.vk = vk
        self.seen = 0

    @staticmethod
    def _shown(m: Any) -> Shown:
        text = m.text.split("\n\n1. ")[0]  # options that did not fit, listed by number
        payloads = tuple(json.loads(b["action"]["payload"])["p"] for row in m.buttons
                         for b in row if b["action"].get("payload"))
        return Shown(text, payloads)

    async def _next(self, count: int) -> list[Shown]:
        sent = await self.vk.wait_for(
            lambda: len(self.vk.sent_to(VK_USER)) >= self.seen + count
            and self.vk.sent_to(VK_USER)[self.seen:])
        self.seen = len(self.vk.sent_to(VK_USER))
        return [self._shown(m) for m in sent]

    async def say(self, text: str, count: int) -> list[Shown]:
        self.vk.send_text(VK_USER, text)
        return await self._next(count)

    async def press(self, payload: str, count: int) -> list[Shown]:
        [message] = [m for m in self.vk.sent_to(VK_USER)[::-1]
                     if payload in self._shown(m).payloads][:1]
        self.vk.press(VK_USER, {"p": payload}, message.conversation_message_id)
        return await self._next(count)

    async def incoming(self, count: int) -> list[Shown]:
        return await self._next(count)


# --- the web chat ------------------------------------------------------------------------------

class WebDriver:
    channel = "web"
    chat_id = WEB_CLIENT

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def incoming(self, count: int) -> list[Shown]:
        out = []
        while len(out) < count:
            frame = await asyncio.wait_for(self.ws.receive_json(), 10)
            if frame.get("type") == "message":
                out.append(Shown(frame["text"], tuple(b["payload"] for row in frame["buttons"]
                                                      for b in row)))
        return out

    async def say(self, text: str, count: int) -> list[Shown]:
        await self.ws.send_json({"type": "text", "text": text})
        return await self.incoming(count)

    async def press(self, payload: str, count: int) -> list[Shown]:
        await self.ws.send_json({"type": "button", "payload": payload})
        return await self.incoming(count)


# --- running each channel ----------------------------------------------------------------------

Start = Callable[[AsyncExitStack, Engine, Database, Path],
                 Awaitable[tuple[Driver, DeliveryWorker]]]


def outbox_worker(database: Database, channel: str, messenger: Any) -> DeliveryWorker:
    clock = FakeClock(FRIDAY_EVENING + timedelta(hours=2))  # after the operator's answer
    return DeliveryWorker(database.uow, channel, messenger, clock=clock.now,
                          sleep=clock.sleep,
                          limiter=RateLimiter(DEFAULT_LIMITS[channel], clock.monotonic))


async def start_telegram(stack: AsyncExitStack, engine: Engine, database: Database,
                         tmp: Path) -> tuple[Driver, DeliveryWorker]:
    from bots.telegram import make_bot, serve_telegram
    from bots.telegram.outbox import TelegramOutboxMessenger
    from tests.fakes.telegram import FakeTelegram

    tg = await stack.enter_async_context(FakeTelegram())
    tg.add_user(TG_USER, "Патимат", language_code="ru")
    stop = asyncio.Event()
    task = asyncio.create_task(serve_telegram(engine, token=tg.token, api_url=tg.base_url,
                                              stop=stop))
    stack.push_async_callback(lambda: asyncio.wait_for(task, 5))
    stack.callback(stop.set)
    bot = make_bot(tg.token, tg.base_url)
    stack.push_async_callback(bot.session.close)
    return TelegramDriver(tg), outbox_worker(database, "telegram", TelegramOutboxMessenger(bot))


async def start_vk(stack: AsyncExitStack, engine: Engine, database: Database,
                   tmp: Path) -> tuple[Driver, DeliveryWorker]:
    from bots.vk import make_api, serve_vk
    from bots.vk.outbox import VkOutboxMessenger
    from tests.fakes.vk import FakeVK

    vk = await stack.enter_async_context(FakeVK(group_id=218000003))
    vk.add_user(VK_USER, "Патимат", "Алиева")
    stop = asyncio.Event()
    task = asyncio.create_task(serve_vk(engine, token=vk.token, group_id=218000003,
                                        api_url=vk.api_url, data_dir=tmp / "vk", stop=stop))
    stack.push_async_callback(lambda: asyncio.wait_for(task, 5))
    stack.callback(stop.set)
    await vk.wait_polling()  # VK delivers nothing written before the first poll
    api = make_api(vk.token, vk.api_url)
    stack.push_async_callback(api.http_client.close)
    return VkDriver(vk), outbox_worker(database, "vk", VkOutboxMessenger(api))


async def start_web(stack: AsyncExitStack, engine: Engine, database: Database,
                    tmp: Path) -> tuple[Driver, DeliveryWorker]:
    from bots.web import WEB_MESSENGER, create_web_app

    app = create_web_app(engine, uploads_dir=tmp / "uploads")
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    stack.push_async_callback(server.close)
    http = await stack.enter_async_context(ClientSession())
    ws = await stack.enter_async_context(http.ws_connect(server.make_url("/chat/ws")))
    await ws.send_json({"type": "hello", "client_id": WEB_CLIENT, "lang": "ru"})
    messenger = OnlineOnlyMessenger(app[WEB_MESSENGER].send)
    return WebDriver(ws), outbox_worker(database, "web", messenger)


@pytest.fixture
async def reference(tmp_path: Path) -> AsyncIterator[list[list[OutgoingMessage]]]:
    """What the dialogue core itself says at each step, with no channel in between."""
    database = await new_database(tmp_path / "reference.db")
    chat = Chat(new_engine(database), user_id="ref", channel=Channel.WEB, language_hint="ru")
    said = []
    for action, value in STEPS:
        said.append(await (chat.send(value) if action == "text" else chat.press(value)))
    yield said
    await database.dispose()


@pytest.mark.parametrize("start", [start_telegram, start_vk, start_web],
                         ids=["telegram", "vk", "web"])
async def test_the_same_dialogue_and_answer_in_every_channel(
        start: Start, reference: list[list[OutgoingMessage]], tmp_path: Path) -> None:
    database = await new_database(tmp_path / "tsur.db")
    async with AsyncExitStack() as stack:
        stack.push_async_callback(database.dispose)
        citizen, worker = await start(stack, new_engine(database), database, tmp_path)
        for (action, value), replies in zip(STEPS, reference, strict=True):
            want = (expected_on_telegram(replies) if citizen.channel == "telegram"
                    else expected(replies))
            act = citizen.say if action == "text" else citizen.press
            assert await act(value, len(want)) == want, (action, value)
        assert "зарегистрировано" in reference[-1][0].text

        [(complaint_id, number, channel)] = sqlite3.connect(tmp_path / "tsur.db").execute(
            "SELECT id, number, channel FROM complaints").fetchall()
        assert channel == citizen.channel and number in reference[-1][0].text
        async with database.uow() as uow:
            await answer_complaint(uow, complaint_id, ANSWER, actor="operator:1",
                                   now=FRIDAY_EVENING + timedelta(hours=1))
            await uow.commit()
        assert await worker.run_once() == 1
        [answer] = await citizen.incoming(1)
        assert answer == Shown(f"Ответ на ваше обращение №{number}:\n\n{ANSWER}",
                               ("menu:my",))
