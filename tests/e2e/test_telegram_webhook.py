"""Telegram webhook mode end to end: a real aiohttp server on 127.0.0.1 with the real
aiogram Dispatcher and the real dialogue Engine on SQLite; updates are POSTed to it as
Telegram would, replies go to the fake Bot API."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from dialogue.engine import Engine
from dialogue.nlu import KeywordClassifier
from domain.calendar import WorkingCalendar
from domain.storage import Database, sqlite_url, upgrade_async
from tests.fakes.dialogue import FixedClock, catalogue
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_checks import as_json

USER = 5005101
SECRET = "s3cret_Token-for-tsur"
PUBLIC_URL = "https://tsur.example.org/hooks/telegram"
PATH = "/hooks/telegram"
PROBLEM = "В Каспийске на улице Ленина 5 третий день нет воды в доме"
BOOM = "boom-in-a-handler"


@dataclass
class Hooked:
    tg: FakeTelegram
    server: TestServer
    http: ClientSession
    mode: Any  # bots.telegram.webhook.TelegramWebhookMode
    url: str

    async def post(self, body: Any, *, secret: str | None = SECRET,
                   raw: bytes | None = None) -> tuple[int, str]:
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        data = raw if raw is not None else json.dumps(body).encode()
        async with self.http.post(self.url, data=data, headers=headers) as resp:
            text = await resp.text()
            self.tg.webhook_answered(resp.status, text, resp.content_type)  # as Telegram
            return resp.status, text


Start = Callable[..., Awaitable[Hooked]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    """Factory: ``await start(background=..., delete_on_stop=...)`` runs tsur's webhook."""
    from aiogram import F
    from aiogram.types import Message

    from bots.telegram import build_dispatcher
    from bots.telegram.webhook import setup_telegram_webhook_mode

    url = sqlite_url(tmp_path / "t.db")
    await upgrade_async(url)
    database = Database.from_url(url)
    cat = catalogue()
    engine = Engine(database.uow, cat, WorkingCalendar(), KeywordClassifier(cat), FixedClock())
    servers: list[TestServer] = []

    async def boom(message: Message) -> None:
        raise RuntimeError("a handler bug")

    async with FakeTelegram() as tg, ClientSession() as http:
        tg.add_user(USER, "Патимат", language_code="ru")

        async def run(**options: Any) -> Hooked:
            dp = build_dispatcher(engine)
            dp.message.register(boom, F.text == BOOM)  # the dispatcher's own handlers run first
            app = web.Application()
            mode = setup_telegram_webhook_mode(
                app, engine, token=tg.token, api_url=tg.base_url, url=PUBLIC_URL,
                secret=SECRET, dispatcher=dp, **options)
            server = TestServer(app, host="127.0.0.1", port=0)
            await server.start_server()
            servers.append(server)
            await mode.start()
            return Hooked(tg, server, http, mode, str(server.make_url(PATH)))

        yield run
        for server in servers:
            await server.close()
    await database.dispose()


@pytest.fixture
async def hooked(start: Start) -> Hooked:
    return await start()


async def quiet(h: Hooked, seconds: float = 0.3) -> None:
    """Give a (wrongly) started handler time to reach the fake."""
    await asyncio.sleep(seconds)
    await h.mode.hook.drain()


def sends(tg: FakeTelegram) -> list[Any]:
    return [c for c in tg.calls if c.method.lower() in ("sendmessage", "sendphoto")]


# --- setting the webhook ------------------------------------------------------------------

async def test_start_up_sets_the_webhook_with_our_url_secret_and_update_types(
        hooked: Hooked) -> None:
    [call] = hooked.tg.calls_of("setWebhook")
    assert call.params["url"] == PUBLIC_URL
    assert call.params["secret_token"] == SECRET
    assert as_json(call.params["allowed_updates"], "allowed_updates") == [
        "message", "edited_message", "callback_query"]
    assert call.params.get("drop_pending_updates") in (None, "false", "False", False)
    assert hooked.tg.world.webhook_url == PUBLIC_URL
    await hooked.server.close()
    assert hooked.tg.calls_of("deleteWebhook") == []  # not configured: other workers go on
    assert hooked.tg.world.webhook_url == PUBLIC_URL
    assert hooked.mode.bot.session._session is None or hooked.mode.bot.session._session.closed


async def test_shutdown_deletes_the_webhook_only_when_configured(start: Start) -> None:
    h = await start(delete_on_stop=True)
    await h.server.close()
    assert len(h.tg.calls_of("deleteWebhook")) == 1
    assert h.tg.world.webhook_url == ""


async def test_a_url_telegram_refuses_fails_the_start(start: Start) -> None:
    from aiogram.exceptions import TelegramBadRequest

    from bots.telegram.webhook import set_webhook

    h = await start()
    with pytest.raises(TelegramBadRequest, match="HTTPS"):
        await set_webhook(h.mode.bot, "http://plain.example/hook", SECRET)


# --- a citizen through the webhook --------------------------------------------------------

async def test_an_update_with_the_right_secret_reaches_the_dialogue(hooked: Hooked) -> None:
    tg = hooked.tg
    assert await hooked.post(tg.send_text(USER, "/start")) == (200, "ok")
    menu = await tg.wait_for_message(USER)
    datas = {b.get("callback_data") for row in menu.buttons for b in row}
    assert "menu:new" in datas

    press = tg.press(USER, menu, "menu:new")
    status, body = await hooked.post(press)
    await tg.wait_for_message(USER, count=2)
    # the press is answered in the webhook's own answer, which Telegram turns into the
    # call: no request of its own
    assert status == 200 and json.loads(body) == {
        "method": "answerCallbackQuery", "callback_query_id": press["callback_query"]["id"]}
    [answer] = tg.calls_of("answerCallbackQuery")
    assert answer.via_webhook and answer.status == 200
    assert list(tg.callback_answers) == [press["callback_query"]["id"]]

    assert (await hooked.post(tg.send_text(USER, PROBLEM)))[0] == 200
    classified = await tg.wait_for_message(USER, "ЖКХ")
    assert classified.parse_mode == "HTML"


async def test_a_press_whose_step_is_slow_gets_its_answer_by_a_call_of_its_own(
        start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    """The spinner does not wait for a slow step: after CARRY_WAIT the handler takes the
    answer back from the webhook's answer and makes the call itself, once."""
    from bots.telegram import webhook_reply

    monkeypatch.setattr(webhook_reply, "CARRY_WAIT", 0.05)
    gate = asyncio.Event()
    handle = Engine.handle

    async def slow_press(self: Engine, msg: Any, **options: Any) -> Any:
        if msg.payload is not None:
            await gate.wait()
        return await handle(self, msg, **options)

    monkeypatch.setattr(Engine, "handle", slow_press)
    h = await start()
    tg = h.tg
    assert await h.post(tg.send_text(USER, "/start")) == (200, "ok")
    menu = await tg.wait_for_message(USER)
    press = tg.press(USER, menu, "menu:new")
    posted = asyncio.create_task(h.post(press))
    [answer] = await tg.wait_for(lambda: tg.calls_of("answerCallbackQuery"))
    assert not answer.via_webhook and not posted.done()  # the step is still held
    gate.set()
    assert await posted == (200, "ok")  # nothing left in the webhook's answer
    await tg.wait_for_message(USER, count=2)
    assert list(tg.callback_answers) == [press["callback_query"]["id"]]
    assert len(tg.calls_of("answerCallbackQuery")) == 1


@pytest.mark.parametrize("background", [True, False])
async def test_the_update_is_handled_before_the_webhook_is_answered(
        start: Start, background: bool) -> None:
    """Telegram repeats an update until it gets a 2xx: answering only once the update is
    handled makes a kill before that point lose nothing."""
    h = await start(background=background)
    assert await h.post(h.tg.send_text(USER, "/start")) == (200, "ok")
    assert h.tg.sent_to(USER), "the reply was sent before the webhook was answered"


async def test_a_repeat_while_the_first_is_in_flight_waits_for_it(start: Start) -> None:
    from aiogram import F
    from aiogram.types import Message

    gate = asyncio.Event()

    async def slow(message: Message) -> None:
        await gate.wait()
        await message.answer("done")

    h = await start()
    h.mode.dispatcher.message.register(slow, F.text == "slow")
    update = h.tg.send_text(USER, "slow")
    first = asyncio.create_task(h.post(update))
    await h.tg.wait_for(lambda: h.mode.hook._inflight)
    repeat = asyncio.create_task(h.post(update))  # Telegram gave up waiting and repeats
    done, _ = await asyncio.wait({first, repeat}, timeout=0.5)
    assert done == set()  # neither delivery is confirmed while the update is in flight
    gate.set()
    assert await first == (200, "ok")
    assert await repeat == (200, "ok")
    assert [m.text for m in h.tg.sent_to(USER)] == ["done"]  # handled once


async def test_the_same_update_twice_is_handled_once(hooked: Hooked) -> None:
    update = hooked.tg.send_text(USER, "/start")
    assert (await hooked.post(update))[0] == 200
    await hooked.tg.wait_for_message(USER)
    before = len(sends(hooked.tg))
    assert await hooked.post(update) == (200, "ok")  # Telegram repeats what timed out
    await quiet(hooked)
    assert len(sends(hooked.tg)) == before


# --- what gets refused --------------------------------------------------------------------

@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x", SECRET[:-1]])
async def test_a_request_without_the_right_secret_is_forbidden_and_not_handled(
        hooked: Hooked, secret: str | None) -> None:
    status, _ = await hooked.post(hooked.tg.send_text(USER, "/start"), secret=secret)
    assert status == 403
    await quiet(hooked)
    assert sends(hooked.tg) == []
    # and the update id was not burnt: the genuine delivery is still handled
    update = hooked.tg.send_text(USER, "/start")
    assert (await hooked.post(update))[0] == 200
    await hooked.tg.wait_for_message(USER)


@pytest.mark.parametrize("raw", [
    b"{not json", b"", b"[1, 2]", b'"text"', b'{"message": {"text": "no update id"}}',
    b'{"update_id": "abc"}', b'{"update_id": 1, "message": {"chat": 5}}',
    b"\xff\xfe\x00garbage", b"[" * 100_000,
])
async def test_a_malformed_body_gets_400_and_nothing_is_sent(hooked: Hooked,
                                                             raw: bytes) -> None:
    status, _ = await hooked.post(None, raw=raw)
    assert status == 400
    await quiet(hooked)
    assert sends(hooked.tg) == []


async def test_only_post_is_served(hooked: Hooked) -> None:
    async with hooked.http.get(hooked.url) as resp:
        assert resp.status == 405


@pytest.mark.parametrize("background", [True, False])
async def test_a_handler_error_is_logged_and_still_answered_200(
        start: Start, background: bool, caplog: pytest.LogCaptureFixture) -> None:
    h = await start(background=background)
    with caplog.at_level(logging.ERROR, logger="bots.telegram.webhook"):
        status, _ = await h.post(h.tg.send_text(USER, BOOM))
        await h.mode.hook.drain()
    assert status == 200  # a 5xx would make Telegram repeat the update forever
    assert any("handling update" in r.getMessage() and r.exc_info for r in caplog.records)
    # the webhook goes on serving
    assert (await h.post(h.tg.send_text(USER, "/start")))[0] == 200
    await h.tg.wait_for_message(USER)


# --- the secret and the path --------------------------------------------------------------

def test_the_secret_is_checked_or_derived_from_the_token() -> None:
    from bots.telegram.webhook import SECRET_PATTERN, webhook_secret

    assert webhook_secret("1:tok", "abc_DEF-123") == "abc_DEF-123"
    derived = webhook_secret("1:tok")
    assert derived == webhook_secret("1:tok") != webhook_secret("2:tok")
    assert SECRET_PATTERN.match(derived) and "tok" not in derived
    for bad in ("has space", "x" * 257, "ünïcode", "a/b"):
        with pytest.raises(ValueError):
            webhook_secret("1:tok", bad)


def test_the_route_is_the_path_of_the_public_url_unless_configured() -> None:
    from bots.telegram.webhook import DEFAULT_PATH, webhook_path

    assert webhook_path("https://h.example/tg/in") == "/tg/in"
    assert webhook_path("https://h.example") == DEFAULT_PATH
    assert webhook_path("https://h.example/tg/in", "local/hook") == "/local/hook"
