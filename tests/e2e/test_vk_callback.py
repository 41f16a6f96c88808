"""VK Callback API mode end to end: a real aiohttp server on 127.0.0.1 with the real
vkbottle router, the real VK channel and the real dialogue Engine on SQLite; events are
POSTed to it as VK would, replies go to the fake VK API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
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
from tests.fakes.vk import FakeVK
from tests.fakes.vk_keyboard import callback_payloads
from tests.fakes.vk_state import VkSentMessage

USER = 7007101
GROUP_ID = 218000002
SECRET = "vk-callback-secret-0123456789"
CONFIRMATION = "a1b2c3d4"
PATH = "/hooks/vk"
PROBLEM = "В Каспийске на улице Ленина 5 третий день нет воды в доме"


@dataclass
class Hooked:
    vk: FakeVK
    server: TestServer
    http: ClientSession
    hook: Any  # bots.vk.callback.VkCallback
    url: str
    db_path: Path

    async def post(self, event: dict[str, Any] | None, *, secret: str | None = SECRET,
                   raw: bytes | None = None) -> tuple[int, str, str]:
        if raw is None:
            body = dict(event or {})
            if secret is not None:
                body["secret"] = secret
            raw = json.dumps(body, ensure_ascii=False).encode()
        async with self.http.post(self.url, data=raw,
                                  headers={"Content-Type": "application/json"}) as resp:
            return resp.status, await resp.text(), resp.content_type

    async def quiet(self, seconds: float = 0.3) -> None:
        """Give a (wrongly) started handler time to reach the fake."""
        await asyncio.sleep(seconds)
        await self.hook.drain()


@pytest.fixture
async def hooked(tmp_path: Path) -> AsyncIterator[Hooked]:
    from bots.vk.callback import setup_vk_callback_mode

    db_path = tmp_path / "t.db"
    url = sqlite_url(db_path)
    await upgrade_async(url)
    database = Database.from_url(url)
    cat = catalogue()
    engine = Engine(database.uow, cat, WorkingCalendar(), KeywordClassifier(cat), FixedClock())
    async with FakeVK(group_id=GROUP_ID) as vk, ClientSession() as http:
        vk.add_user(USER, "Патимат", "Алиева")
        app = web.Application()
        hook = setup_vk_callback_mode(app, engine, token=vk.token, api_url=vk.api_url,
                                      secret=SECRET, confirmation=CONFIRMATION,
                                      group_id=GROUP_ID, path=PATH)
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        yield Hooked(vk, server, http, hook, str(server.make_url(PATH)), db_path)
        await server.close()
    await database.dispose()


def sends(vk: FakeVK) -> list[Any]:
    return [c for c in vk.calls if c.method in ("messages.send", "messages.edit",
                                                 "messages.sendMessageEventAnswer")]


def payloads(messages: list[VkSentMessage]) -> set[str]:
    return {p["p"] for m in messages for p in callback_payloads(m.keyboard)}


async def replies(vk: FakeVK, before: int, settle: float = 0.25) -> list[VkSentMessage]:
    await vk.wait_for(lambda: len(vk.sent_to(USER)) > before)
    count = -1
    while count != len(vk.sent_to(USER)):
        count = len(vk.sent_to(USER))
        await asyncio.sleep(settle)
    return vk.sent_to(USER)[before:]


def confirmation_event() -> dict[str, Any]:
    return {"type": "confirmation", "group_id": GROUP_ID}


# --- confirming the server ----------------------------------------------------------------

async def test_the_confirmation_event_gets_the_confirmation_string(hooked: Hooked) -> None:
    assert await hooked.post(confirmation_event()) == (200, CONFIRMATION, "text/plain")


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET.upper(), SECRET + "x"])
async def test_confirmation_with_a_wrong_secret_is_forbidden(hooked: Hooked,
                                                             secret: str | None) -> None:
    status, text, _ = await hooked.post(confirmation_event(), secret=secret)
    assert status == 403 and CONFIRMATION not in text


async def test_an_event_for_another_community_is_forbidden(hooked: Hooked) -> None:
    event = hooked.vk.send_text(USER, "/start")
    event["group_id"] = GROUP_ID + 1
    assert (await hooked.post(event))[0] == 403
    assert (await hooked.post({**confirmation_event(), "group_id": 1}))[0] == 403
    await hooked.quiet()
    assert sends(hooked.vk) == []


# --- a citizen through the callback -------------------------------------------------------

async def test_message_new_is_answered_ok_and_the_citizen_gets_the_reply(
        hooked: Hooked) -> None:
    vk = hooked.vk
    assert await hooked.post(vk.send_text(USER, PROBLEM)) == (200, "ok", "text/plain")
    r = await replies(vk, 0)
    assert any("ЖКХ" in m.text for m in r) and "cls:yes" in payloads(r)
    [call] = vk.calls_of("messages.send")[:1]
    assert int(call.params["random_id"]) != 0


async def test_ok_comes_only_after_the_event_was_handled(hooked: Hooked) -> None:
    """VK repeats an event until it gets "ok": answering it only once the event is
    handled makes a kill before that point lose nothing."""
    vk = hooked.vk
    assert await hooked.post(vk.send_text(USER, PROBLEM)) == (200, "ok", "text/plain")
    assert vk.sent_to(USER), "the reply was sent before VK was told ok"


async def test_a_repeat_while_the_first_is_in_flight_waits_for_it(hooked: Hooked) -> None:
    vk = hooked.vk
    gate = asyncio.Event()
    engine = hooked.hook.channel.engine
    handle = engine.handle

    async def slow(msg: Any) -> Any:
        await gate.wait()
        return await handle(msg)

    engine.handle = slow
    event = vk.send_text(USER, PROBLEM)
    first = asyncio.create_task(hooked.post(event))
    await vk.wait_for(lambda: hooked.hook._inflight)
    repeat = asyncio.create_task(hooked.post(event))  # VK gave up waiting and repeats
    done, _ = await asyncio.wait({first, repeat}, timeout=0.5)
    assert done == set()  # neither delivery is acknowledged while the event is in flight
    gate.set()
    assert (await first)[:2] == (200, "ok")
    assert (await repeat)[:2] == (200, "ok")
    assert len([m for m in vk.sent_to(USER) if "ЖКХ" in m.text]) == 1  # handled once


async def test_a_button_press_is_answered_and_moves_the_dialogue_on(hooked: Hooked) -> None:
    vk = hooked.vk
    await hooked.post(vk.send_text(USER, PROBLEM))
    r = await replies(vk, 0)
    [asking] = [m for m in r if "cls:yes" in payloads([m])]
    before = len(vk.sent_to(USER))
    press = vk.press(USER, {"p": "cls:yes"}, asking.conversation_message_id)
    assert await hooked.post(press) == (200, "ok", "text/plain")
    r = await replies(vk, before)
    assert "photo:done" in payloads(r)
    event_id = press["object"]["event_id"]
    await vk.wait_for(lambda: event_id in vk.event_answers)  # the spinner stops


def test_a_button_press_carries_its_event_id() -> None:
    """The engine keeps it to tell a press VK hands out again from a new one."""
    from bots.vk.translate import incoming_from_event

    press = incoming_from_event(USER, USER, {"p": "cls:yes"}, "ev-0042")
    assert press is not None and (press.payload, press.callback_id) == ("cls:yes", "ev-0042")
    start = incoming_from_event(USER, USER, {"command": "start"}, "ev-0043")
    assert start is not None and start.callback_id == "ev-0043"


async def test_the_same_event_id_twice_is_handled_once(hooked: Hooked) -> None:
    vk = hooked.vk
    event = vk.send_text(USER, PROBLEM)
    assert (await hooked.post(event))[:2] == (200, "ok")
    await replies(vk, 0)
    before = len(sends(vk))
    assert (await hooked.post(event))[:2] == (200, "ok")  # VK repeats: still "ok"
    await hooked.quiet()
    assert len(sends(vk)) == before  # a second handling would have answered again


async def test_other_event_types_are_acknowledged_and_ignored(hooked: Hooked) -> None:
    event = {"type": "group_join", "group_id": GROUP_ID, "event_id": "e0123",
             "v": "5.199", "object": {"user_id": USER, "join_type": "join"}}
    assert await hooked.post(event) == (200, "ok", "text/plain")
    await hooked.quiet()
    assert sends(hooked.vk) == []


# --- what gets refused --------------------------------------------------------------------

@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET[:-1]])
async def test_message_new_with_a_wrong_secret_is_forbidden_and_nothing_happens(
        hooked: Hooked, secret: str | None) -> None:
    vk = hooked.vk
    event = vk.send_text(USER, PROBLEM)
    status, text, _ = await hooked.post(event, secret=secret)
    assert (status, text) == (403, "forbidden")
    await hooked.quiet()
    assert sends(vk) == []
    # the event id was not burnt by the forgery: the genuine delivery is handled
    assert (await hooked.post(event))[:2] == (200, "ok")
    await replies(vk, 0)


async def test_a_non_string_secret_is_forbidden(hooked: Hooked) -> None:
    raw = json.dumps({**confirmation_event(), "secret": ["x"]}).encode()
    assert (await hooked.post(None, raw=raw))[0] == 403


@pytest.mark.parametrize("raw", [
    b"", b"{not json", b"[1, 2]", b'"ok"', b"\xff\xfe\x00", b"{}", b"[" * 100_000,
    b'{"type": 5}',
    json.dumps({"type": "message_new", "group_id": GROUP_ID, "event_id": "x1",
                "secret": SECRET, "object": "garbage"}).encode(),
])
async def test_a_garbage_body_gets_400_and_nothing_happens(hooked: Hooked, raw: bytes) -> None:
    status, _, _ = await hooked.post(None, raw=raw)
    assert status == 400
    await hooked.quiet()
    assert sends(hooked.vk) == []


async def test_a_broken_message_object_is_acknowledged_and_does_not_stop_the_route(
        hooked: Hooked) -> None:
    """VK does not send such a thing, but if it did, answering anything but ``ok`` would
    make it repeat it forever: the error stays in the log."""
    vk = hooked.vk
    event = {"type": "message_new", "group_id": GROUP_ID, "event_id": "broken-1",
             "v": "5.199", "object": {"message": {"text": "no peer, no ids"}}}
    assert (await hooked.post(event))[:2] == (200, "ok")
    await hooked.quiet()
    assert sends(vk) == []
    assert (await hooked.post(vk.send_text(USER, PROBLEM)))[:2] == (200, "ok")
    await replies(vk, 0)


async def test_only_post_is_served(hooked: Hooked) -> None:
    async with hooked.http.get(hooked.url) as resp:
        assert resp.status == 405


def test_the_mode_needs_a_secret_and_a_confirmation() -> None:
    from bots.vk import VkChannel, make_api
    from bots.vk.callback import VkCallback
    from bots.vk.messenger import VkMessenger

    channel = VkChannel(object(), VkMessenger(make_api("t", "http://127.0.0.1:9/method/")))
    for secret, confirmation in (("", "c"), ("s", ""), ("", "")):
        with pytest.raises(ValueError):
            VkCallback(channel, secret=secret, confirmation=confirmation)  # type: ignore[arg-type]
