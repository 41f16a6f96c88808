"""The citizens' VK channel end to end: the real vkbottle Bot long-polling the fake VK,
the real dialogue Engine, a real SQLite file behind it."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dialogue.engine import Engine
from dialogue.messages import Address, Attachment, AttachmentKind, Button, Channel, OutgoingMessage
from dialogue.nlu import KeywordClassifier
from domain.calendar import WorkingCalendar
from domain.storage import Database, sqlite_url, upgrade_async
from tests.fakes.dialogue import FixedClock, catalogue
from tests.fakes.vk import FakeVK
from tests.fakes.vk_keyboard import callback_payloads
from tests.fakes.vk_state import VkSentMessage

USER = 7007001
CHAT = 2_000_000_011
GROUP_ID = 218000001
PROBLEM = "В Каспийске на улице Ленина 5 третий день нет воды в доме <b>срочно</b> & давно"
STALE_RU = "Эта кнопка больше не действует."
ONLY_PHOTOS_RU = "Принимаются только фотографии"
STICKER = {"type": "sticker", "sticker": {
    "product_id": 1, "sticker_id": 9, "inner_type": "base_sticker_new",
    "images": [{"url": "http://127.0.0.1/s.png", "width": 128, "height": 128}]}}


@dataclass
class Running:
    vk: FakeVK
    db_path: Path
    data_dir: Path
    start: Callable[[], asyncio.Task[None]]
    stop: asyncio.Event
    task: asyncio.Task[None]


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[Running]:
    from bots.vk import serve_vk

    db_path = tmp_path / "t.db"
    url = sqlite_url(db_path)
    await upgrade_async(url)
    database = Database.from_url(url)
    cat = catalogue()
    engine = Engine(database.uow, cat, WorkingCalendar(), KeywordClassifier(cat), FixedClock())
    data_dir = tmp_path / "data"
    async with FakeVK(group_id=GROUP_ID) as vk:
        vk.add_user(USER, "Патимат", "Алиева")
        stop = asyncio.Event()

        def start() -> asyncio.Task[None]:
            stop.clear()
            return asyncio.create_task(serve_vk(
                engine, token=vk.token, group_id=GROUP_ID, api_url=vk.api_url,
                data_dir=data_dir, stop=stop))

        running = Running(vk, db_path, data_dir, start, stop, start())
        await vk.wait_polling()
        yield running
        stop.set()
        await asyncio.wait_for(running.task, 5)  # stops cleanly, without raising
        await database.dispose()


async def replies(vk: FakeVK, peer: int, before: int, *, settle: float = 0.25,
                  timeout: float = 5) -> list[VkSentMessage]:
    """Wait for at least one new community message to ``peer``; return all that came
    until the bot fell quiet for ``settle`` seconds."""
    await vk.wait_for(lambda: len(vk.sent_to(peer)) > before, timeout)
    count = -1
    while count != len(vk.sent_to(peer)):
        count = len(vk.sent_to(peer))
        await asyncio.sleep(settle)
    return vk.sent_to(peer)[before:]


def payloads(messages: list[VkSentMessage], kind: str = "callback") -> set[str]:
    """The ``{"p": …}`` payloads of the ``kind`` buttons of ``messages``."""
    if kind == "callback":
        return {p["p"] for m in messages for p in callback_payloads(m.keyboard)}
    return {json.loads(b["action"]["payload"])["p"] for m in messages for row in m.buttons
            for b in row if b["action"]["type"] == kind}


class Citizen:
    """A VK user in a private dialogue with the community."""

    def __init__(self, vk: FakeVK, user_id: int = USER) -> None:
        self.vk = vk
        self.id = user_id
        self.last: list[VkSentMessage] = []
        self.event: dict[str, Any] = {}

    async def _after(self, inject: Callable[[], dict[str, Any]]) -> list[VkSentMessage]:
        before = len(self.vk.sent_to(self.id))
        self.event = inject()
        self.last = await replies(self.vk, self.id, before)
        return self.last

    async def text(self, text: str) -> list[VkSentMessage]:
        return await self._after(lambda: self.vk.send_text(self.id, text))

    async def photo(self) -> list[VkSentMessage]:
        return await self._after(lambda: self.vk.send_photo(self.id))

    async def geo(self, lat: float, lon: float) -> list[VkSentMessage]:
        return await self._after(lambda: self.vk.send_text(self.id, "", geo=(lat, lon)))

    async def attach(self, item: dict[str, Any]) -> list[VkSentMessage]:
        return await self._after(lambda: self.vk.send_text(self.id, "", attachments=[item]))

    async def press(self, payload: Any, *, forge: bool = False) -> list[VkSentMessage]:
        raw = payload if forge else {"p": payload}
        cmid = None if forge else self.with_button(payload).conversation_message_id
        result = await self._after(lambda: self.vk.press(self.id, raw, cmid, forge=forge))
        event_id = self.event["object"]["event_id"]
        await self.vk.wait_for(lambda: event_id in self.vk.event_answers)
        return result

    async def tap(self, payload: str) -> list[VkSentMessage]:
        """Press a text button (of a regular keyboard): the user's client sends its label
        with its payload as a message."""
        message = self.with_button(payload, "text")
        [button] = [b for row in message.buttons for b in row
                    if b["action"].get("payload") == json.dumps({"p": payload})]
        return await self._after(lambda: self.vk.send_text(
            self.id, button["action"]["label"], payload=button["action"]["payload"]))

    def with_button(self, payload: str, kind: str = "callback") -> VkSentMessage:
        for message in reversed(self.last):
            if payload in payloads([message], kind):
                return message
        raise AssertionError(f"no button {payload!r} in {[m.text for m in self.last]}")

    @property
    def said(self) -> str:
        return "\n---\n".join(m.text for m in self.last)


def rows(db: Path, sql: str) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql)]


def refused(vk: FakeVK) -> list[Any]:
    """API calls the fake answered with an error (keyboard format, length, ...)."""
    return [(c.method, c.error_code, c.params) for c in vk.calls
            if c.error_code is not None or c.status != 200]


# --- the whole story --------------------------------------------------------------------------

async def test_a_citizen_files_a_complaint_with_photo_and_geo(system: Running) -> None:
    vk = system.vk
    me = Citizen(vk)
    r = await me.text(PROBLEM)
    assert "ЖКХ" in me.said and "cls:yes" in payloads(r)
    [keyboard] = [m.keyboard for m in r if m.keyboard]
    assert keyboard["inline"] is True
    r = await me.press("cls:yes")
    assert "photo:done" in payloads(r)
    r = await me.photo()
    photo = me.event["object"]["message"]["attachments"][0]["photo"]
    assert "1 фото" in me.said and "photo:done" in payloads(r)
    r = await me.press("photo:done")
    # one message: the question, with a one-time regular keyboard — location on top,
    # the question's own "Skip" as a text button below it (one_time hides after either)
    [question] = [m for m in r if m.keyboard]
    assert "геопозицию" in question.text
    assert question.keyboard["one_time"] is True and not question.keyboard.get("inline")
    assert question.buttons[0] == [{"action": {"type": "location"}}]
    assert payloads([question], "text") == {"loc:skip"} and payloads([question]) == set()
    r = await me.geo(42.8816, 47.6389)
    assert "Каспийск" in me.said
    r = await me.press("mun:yes")
    assert "152-ФЗ" in me.said
    r = await me.press("consent:yes")
    summary = me.with_button("cmp:submit")
    assert "<b>срочно</b> & давно" in summary.text  # plain text: nothing escaped or lost
    r = await me.press("cmp:submit")
    assert "зарегистрировано" in me.said

    [row] = rows(system.db_path, "SELECT * FROM complaints")
    assert row["number"] in me.said
    assert row["latitude"] == pytest.approx(42.8816)
    assert row["longitude"] == pytest.approx(47.6389)
    assert (row["sector"], row["municipality"]) == ("housing", "kaspiysk")
    [stored] = rows(system.db_path, "SELECT * FROM complaint_photos")
    assert stored["ref"] == (
        f"vk:photo{photo['owner_id']}_{photo['id']}_{photo['access_key']}")
    [citizen] = rows(system.db_path, "SELECT * FROM identities")
    assert (citizen["channel"], citizen["external_id"]) == ("vk", str(USER))
    # every press was answered; VK refused nothing we sent; every send had a random_id
    events = {c.params["event_id"] for c in vk.calls_of("messages.sendMessageEventAnswer")}
    assert len(events) == 5 and events <= set(vk.event_answers)
    assert refused(vk) == []
    ids = [int(c.params["random_id"]) for c in vk.calls_of("messages.send")]
    assert all(ids) and len(set(ids)) == len(ids)
    # the long-poll state lives in the data directory, not in the working directory
    assert (system.data_dir / ".vkbottle" / "bot-polling" / f"{GROUP_ID}.json").exists()
    assert not (Path(os.getcwd()) / ".vkbottle" / "bot-polling" / f"{GROUP_ID}.json").exists()


# --- what citizens get wrong --------------------------------------------------------------------

async def test_a_forged_payload_gets_the_polite_answer(system: Running) -> None:
    me = Citizen(system.vk)
    await me.text("/start")
    await me.press({"p": "cmp:submit"}, forge=True)  # nothing to submit
    assert STALE_RU in me.said
    await me.press({"cmd": "<script>", "p": 5}, forge=True)  # not even our shape
    assert STALE_RU in me.said
    await me._after(lambda: system.vk.send_text(USER, "", payload='{"p": "mun:moscow"}'))
    assert STALE_RU in me.said  # a text button payload is re-checked too
    assert len(system.vk.event_answers) == 2
    assert rows(system.db_path, "SELECT * FROM complaints") == []


async def test_a_sticker_gets_only_photos(system: Running) -> None:
    me = Citizen(system.vk)
    await me.text(PROBLEM)
    await me.press("cls:yes")
    await me.attach(STICKER)
    assert ONLY_PHOTOS_RU in me.said
    await me.attach({"type": "doc", "doc": {"id": 5, "owner_id": USER, "title": "акт.pdf",
                                            "size": 10, "ext": "pdf", "type": 1,
                                            "date": 1700000000, "url": "http://127.0.0.1/d"}})
    assert ONLY_PHOTOS_RU in me.said
    assert "photo:done" in payloads(me.last)  # still asking for photos
    assert rows(system.db_path, "SELECT * FROM complaint_photos") == []


async def test_a_long_category_list_falls_back_to_numbers(system: Running) -> None:
    vk = system.vk
    me = Citizen(vk)
    await me.text(PROBLEM)
    await me.press("cls:pick")
    r = await me.press("sec:housing")  # ten categories, one per row: over 6 inline rows
    [listing] = [m for m in r if m.keyboard]
    assert len(listing.buttons) <= 6 and sum(map(len, listing.buttons)) <= 10
    assert "1. Отсутствие водоснабжения" in listing.text
    assert "9. Капитальный ремонт домов" in listing.text
    assert "nav:back" in payloads([listing])  # the last (navigation) row is kept
    assert "cat:housing:overhaul" not in payloads([listing])  # only in the list
    await me.text("9")
    assert "Капитальный ремонт домов" in me.said and "photo:done" in payloads(me.last)
    await me.text("9")  # the numbers answered only the list: now it is just text
    assert "Капитальный ремонт" not in me.said
    assert refused(vk) == []


async def test_the_municipality_list_fits_and_pages(system: Running) -> None:
    vk = system.vk
    me = Citizen(vk)
    await me.text("Третий день нет воды в доме")  # no place named: the list comes
    await me.press("cls:yes")
    await me.press("photo:done")
    await me.tap("loc:skip")  # no place anywhere: straight to the list
    page = me.with_button("munp:1")
    assert page.keyboard["inline"] is True and "1." not in page.text
    await me.press("munp:1")
    second = me.with_button("munp:2")
    assert sum(map(len, second.buttons)) == 10  # exactly VK's inline limit, no fallback
    r = await me.press("mun:agulsky")
    assert "consent:yes" in payloads(r) or "cmp:submit" in payloads(r)
    assert refused(vk) == []


async def test_group_chats_get_no_dialogue(system: Running) -> None:
    vk = system.vk
    vk.add_chat(CHAT)
    vk.send_text(USER, PROBLEM, peer_id=CHAT)
    me = Citizen(vk)
    await me.text("/start")  # processed after the chat message: that one got nothing
    assert vk.sent_to(CHAT) == []
    assert [r["external_id"] for r in rows(system.db_path, "SELECT * FROM identities")
            ] == [str(USER)]


# --- resilience ---------------------------------------------------------------------------------

async def test_too_many_requests_is_retried_and_the_reply_arrives(system: Running) -> None:
    vk = system.vk
    me = Citizen(vk)
    vk.fail_next("messages.send", 6)
    await me.text("/start")
    assert "menu:new" in payloads(me.last)
    assert [c.error_code for c in vk.calls_of("messages.send")][:2] == [6, None]
    # flood control after VK applied the send: the retry keeps its random_id, so VK
    # drops the duplicate
    vk.fail_next("messages.send", 9, after_apply=True)
    await me.text(PROBLEM)
    sends = await vk.wait_for(lambda: len(vk.calls_of("messages.send")) == 4
                              and vk.calls_of("messages.send"))
    assert [c.error_code for c in sends[2:]] == [9, None]
    assert sends[2].params["random_id"] == sends[3].params["random_id"]
    await asyncio.sleep(0.2)
    assert [m.text for m in vk.sent_to(USER)].count(me.last[0].text) == 1
    assert "cls:yes" in payloads(vk.sent_to(USER))


async def test_a_restarted_bot_answers_what_came_while_it_was_down(system: Running) -> None:
    vk = system.vk
    me = Citizen(vk)
    await me.text("/start")
    system.stop.set()
    await asyncio.wait_for(system.task, 5)
    before = len(vk.sent_to(USER))
    vk.send_text(USER, PROBLEM)  # nobody polls now
    system.task = system.start()
    r = await replies(vk, USER, before)
    assert any("ЖКХ" in m.text for m in r)


# --- the messenger ------------------------------------------------------------------------------

@pytest.fixture
async def messenger() -> AsyncIterator[tuple[FakeVK, Any]]:
    from bots.vk import VkMessenger, make_api

    async with FakeVK(group_id=GROUP_ID) as vk:
        vk.add_user(USER)
        api = make_api(vk.token, vk.api_url)
        yield vk, VkMessenger(api, base_delay=0.01)
        await api.http_client.close()


TO = Address(Channel.VK, str(USER))


async def test_a_long_message_is_split_with_different_random_ids(messenger) -> None:
    vk, m = messenger
    text = "\n".join(f"{i:03d} " + "ж" * 95 for i in range(50))  # 5,049 characters
    assert await m.send(TO, OutgoingMessage(text, ((Button("OK", "menu:main"),),)))
    first, second = vk.sent_to(USER)
    assert len(first.text) <= 4096 and len(second.text) <= 4096
    assert f"{first.text}\n{second.text}" == text  # cut between lines, nothing lost
    assert first.random_id != second.random_id and first.random_id and second.random_id
    assert first.keyboard is None and payloads([second]) == {"menu:main"}


async def test_a_keyed_message_is_never_duplicated(messenger) -> None:
    vk, m = messenger
    msg = OutgoingMessage("Ваше обращение закрыто")
    assert await m.send(TO, msg, key="outbox:42")
    assert await m.send(TO, msg, key="outbox:42")  # redelivered after a crash
    assert await m.send(TO, msg)
    assert await m.send(TO, msg)  # unkeyed: two equal replies both arrive
    assert [s.text for s in vk.sent_to(USER)] == [msg.text] * 3


async def test_a_user_who_denied_messages_is_unreachable(messenger) -> None:
    vk, m = messenger
    vk.deny(USER)
    assert await m.send(TO, OutgoingMessage("Статус изменён")) is False
    assert [c.error_code for c in vk.calls_of("messages.send")] == [901]
    assert not await m.send(Address(Channel.TELEGRAM, str(USER)), OutgoingMessage("x"))


async def test_the_peer_ids_validation_trap_counts_as_unreachable(messenger) -> None:
    from pydantic import ValidationError

    from bots.vk import VkMessenger

    vk, m = messenger
    vk.deny(USER)
    try:
        await m.api.messages.send(peer_ids=[USER], message="x", random_id=0)
    except ValidationError as exc:
        trap = exc
    else:
        raise AssertionError("vkbottle parsed the denied peer's entry after all")

    class TrappedAPI:  # what the API does for a peer_ids send: raise the parse error
        async def request(self, method: str, params: dict[str, Any]) -> Any:
            raise trap

    assert await VkMessenger(TrappedAPI()).send(TO, OutgoingMessage("x")) is False


async def test_many_municipalities_fall_back_within_vk_limits(messenger) -> None:
    vk, m = messenger
    munis = [Button(f"Муниципальный район номер {i} с очень длинным названием", f"mun:m{i}")
             for i in range(20)]
    layout = tuple(tuple(munis[i:i + 2]) for i in range(0, 20, 2)) + (
        (Button("« Назад", "munp:0"), Button("Ещё »", "munp:2")),)
    assert await m.send(TO, OutgoingMessage("Выберите муниципалитет:", layout))
    [sent] = vk.sent_to(USER)
    assert refused(vk) == []
    buttons = [b for row in sent.buttons for b in row]
    assert len(sent.buttons) <= 6 and len(buttons) == 10
    assert all(len(b["action"]["label"]) <= 40 for b in buttons)
    assert buttons[0]["action"]["label"].endswith("…")
    assert payloads([sent]) >= {"munp:0", "munp:2", "mun:m0"}
    assert "20. Муниципальный район номер 19 с очень длинным названием" in sent.text
    assert m.take_choices(USER)["20"] == "mun:m19"
    assert m.take_choices(USER) == {}  # answered once


async def test_photos_of_vk_origin_are_attached(messenger) -> None:
    vk, m = messenger
    event = vk.send_photo(USER)
    photo = event["object"]["message"]["attachments"][0]["photo"]
    ref = f"photo{photo['owner_id']}_{photo['id']}_{photo['access_key']}"
    msg = OutgoingMessage("Фото к обращению", attachments=(
        Attachment(AttachmentKind.PHOTO, f"vk:{ref}", "image/jpeg"),
        Attachment(AttachmentKind.PHOTO, "telegram:AgACAgIAAx", "image/jpeg")),
        remove_keyboard=True)
    assert await m.send(TO, msg)
    [sent] = vk.sent_to(USER)
    assert sent.attachments == [ref] and sent.text == "Фото к обращению"
    assert sent.keyboard == {"buttons": [], "one_time": True}
    assert json.loads(vk.calls_of("messages.send")[0].params["keyboard"]) == sent.keyboard


async def test_vk_start_button_and_a_502_page(messenger) -> None:
    from bots.vk import incoming_from_message

    vk, m = messenger
    vk.fail_next("messages.send", 502)  # an HTML page, not JSON: vkbottle would block
    vk.fail_next("messages.send", "drop")
    assert await m.send(TO, OutgoingMessage("Ответ"))
    assert [c.status for c in vk.calls_of("messages.send")] == [502, 0, 200]
    assert [s.text for s in vk.sent_to(USER)] == ["Ответ"]

    from vkbottle_types.objects import MessagesMessage

    raw = vk.send_text(USER, "Начать", payload={"command": "start"})["object"]["message"]
    start = incoming_from_message(MessagesMessage(**raw))
    assert start is not None and (start.text, start.payload) == ("/start", None)
    raw = vk.send_text(USER, "3")["object"]["message"]
    typed = incoming_from_message(MessagesMessage(**raw), {"3": "cat:roads:potholes"})
    assert typed is not None and (typed.text, typed.payload) == ("", "cat:roads:potholes")
    raw = vk.send_text(USER, "привет", peer_id=CHAT)["object"]["message"]
    assert incoming_from_message(MessagesMessage(**raw)) is None
