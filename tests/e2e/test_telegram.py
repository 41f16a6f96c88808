"""The citizens' Telegram channel end to end: the real aiogram Dispatcher long-polling the
fake Bot API, the real dialogue Engine, a real SQLite file behind it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dialogue.engine import Engine
from dialogue.messages import Address, Button, Channel, OutgoingMessage
from dialogue.nlu import KeywordClassifier
from domain.calendar import WorkingCalendar
from domain.storage import Database, sqlite_url, upgrade_async
from tests.fakes.dialogue import FixedClock, catalogue
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_state import SentMessage

USER = 5005001
GROUP = -1009876543210
PROBLEM = "В Каспийске на улице Ленина 5 третий день нет воды в доме <b>срочно</b> & давно"
STALE_RU = "Эта кнопка больше не действует."
ONLY_PHOTOS_RU = "Принимаются только фотографии"


@dataclass
class Running:
    tg: FakeTelegram
    db_path: Path
    engine: Engine
    database: Database
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Long-poll as ``tsur run`` does: the reply keyboards remembered in the database."""
        from bots.telegram import build_dispatcher, serve_telegram
        from bots.telegram.keyboards import SqlReplyKeyboards

        self.stop = asyncio.Event()
        dispatcher = build_dispatcher(self.engine,
                                      keyboards=SqlReplyKeyboards())
        self.task = asyncio.create_task(serve_telegram(
            self.engine, token=self.tg.token, api_url=self.tg.base_url, stop=self.stop,
            dispatcher=dispatcher))

    async def halt(self) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)  # stops cleanly, without raising


@pytest.fixture
async def system(tmp_path: Path) -> AsyncIterator[Running]:
    db_path = tmp_path / "t.db"
    url = sqlite_url(db_path)
    await upgrade_async(url)
    database = Database.from_url(url)
    cat = catalogue()
    engine = Engine(database.uow, cat, WorkingCalendar(), KeywordClassifier(cat), FixedClock())
    async with FakeTelegram() as tg:
        tg.add_user(USER, "Патимат", language_code="ru")
        running = Running(tg, db_path, engine, database)
        running.start()
        yield running
        await running.halt()
        await database.dispose()


async def replies(tg: FakeTelegram, chat_id: int, before: int, *, settle: float = 0.25,
                  timeout: float = 5) -> list[SentMessage]:
    """Wait for at least one new bot message in ``chat_id``; return all that came until
    the bot fell quiet for ``settle`` seconds."""
    await tg.wait_for(lambda: len(tg.sent_to(chat_id)) > before, timeout)
    count = -1
    while count != len(tg.sent_to(chat_id)):
        count = len(tg.sent_to(chat_id))
        await asyncio.sleep(settle)
    return tg.sent_to(chat_id)[before:]


class Citizen:
    """A Telegram user in a private chat with the bot."""

    def __init__(self, tg: FakeTelegram, user_id: int = USER) -> None:
        self.tg = tg
        self.id = user_id
        self.last: list[SentMessage] = []
        self.update: dict[str, Any] = {}

    async def _after(self, inject: Any) -> list[SentMessage]:
        before = len(self.tg.sent_to(self.id))
        self.update = inject()
        self.last = await replies(self.tg, self.id, before)
        return self.last

    async def text(self, text: str) -> list[SentMessage]:
        return await self._after(lambda: self.tg.send_text(self.id, text))

    async def photo(self) -> list[SentMessage]:
        return await self._after(lambda: self.tg.send_photo(self.id))

    async def location(self, lat: float, lon: float) -> list[SentMessage]:
        return await self._after(lambda: self.tg.send_location(self.id, lat, lon))

    async def text_button(self, message: SentMessage, label: str) -> list[SentMessage]:
        return await self._after(lambda: self.tg.press_text_button(self.id, message, label))

    async def raw(self, **content: Any) -> list[SentMessage]:
        # The fake has no helper for stickers or voice messages; this is its own
        # _user_message, which send_text and send_photo use too.
        return await self._after(lambda: self.tg._user_message(self.id, None, None, **content))

    async def press(self, data: str, *, forge: bool = False) -> list[SentMessage]:
        message = self.with_button(data) if not forge else self.tg.sent_to(self.id)[-1]
        result = await self._after(lambda: self.tg.press(self.id, message, data, forge=forge))
        query_id = self.update["callback_query"]["id"]
        await self.tg.wait_for(lambda: query_id in self.tg.callback_answers)
        return result

    def with_button(self, data: str) -> SentMessage:
        for message in reversed(self.last):
            if any(b.get("callback_data") == data for row in message.buttons for b in row):
                return message
        raise AssertionError(f"no button {data!r} in {[m.text for m in self.last]}")

    @property
    def said(self) -> str:
        return "\n---\n".join(m.text or m.caption or "" for m in self.last)


def datas(messages: list[SentMessage]) -> set[str]:
    return {b["callback_data"] for m in messages for row in m.buttons for b in row
            if "callback_data" in b}


def rows(db: Path, sql: str) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql)]


# --- the whole story --------------------------------------------------------------------------

async def test_a_citizen_files_a_complaint_with_photo_and_location(system: Running) -> None:
    tg = system.tg
    me = Citizen(tg)
    assert "menu:new" in datas(await me.text("/start"))
    r = await me.text(PROBLEM)
    assert "ЖКХ" in me.said and "cls:yes" in datas(r)
    r = await me.press("cls:yes")
    assert "photo:done" in datas(r)
    r = await me.photo()
    photo_id = me.update["message"]["photo"][-1]["file_id"]
    assert "1 фото" in me.said and "photo:done" in datas(r)
    r = await me.press("photo:done")
    # one message: its reply keyboard has the location button and "Skip" as a text button
    [question] = r
    markup = question.reply_markup or {}
    [[button], [skip]] = markup["keyboard"]
    assert button["request_location"] is True and markup["one_time_keyboard"] is True
    assert skip == {"text": "⏭ Пропустить"} and "inline_keyboard" not in markup
    r = await me.location(42.8816, 47.6389)
    assert "Каспийск" in me.said
    r = await me.press("mun:yes")
    assert "152-ФЗ" in me.said
    r = await me.press("consent:yes")
    # the citizen's own text comes back escaped: shown literally, no bold entity
    summary = me.with_button("cmp:submit")
    assert "<b>срочно</b> & давно" in (summary.text or "")
    assert not any(e["type"] == "bold" for e in summary.entities)
    sent = [c for c in tg.calls_of("sendMessage") if "срочно" in str(c.params.get("text"))]
    assert sent and all("&lt;b&gt;срочно&lt;/b&gt; &amp; давно" in c.params["text"]
                        for c in sent)
    assert all(c.params.get("parse_mode") == "HTML" for c in tg.calls_of("sendMessage"))
    r = await me.press("cmp:submit")
    assert "зарегистрировано" in me.said

    [row] = rows(system.db_path, "SELECT * FROM complaints")
    assert row["number"] in me.said
    assert row["latitude"] == pytest.approx(42.8816)
    assert row["longitude"] == pytest.approx(47.6389)
    assert (row["sector"], row["municipality"]) == ("housing", "kaspiysk")
    [photo] = rows(system.db_path, "SELECT * FROM complaint_photos")
    assert photo["ref"] == f"telegram:{photo_id}"
    # every pressed button was answered, and no Bot API call was refused
    queries = {c.params["callback_query_id"] for c in tg.calls_of("answerCallbackQuery")}
    assert len(queries) == 5 and queries <= set(tg.callback_answers)
    assert [c for c in tg.calls if c.status != 200] == []


async def test_the_keyboards_skip_skips_the_location_and_other_words_are_the_address(
        system: Running) -> None:
    """Regression: the core took a text equal to its "Skip" label as the press (a
    Telegram detail in the core); now the channel turns the text button back into it."""
    tg = system.tg
    tg.add_user(USER + 1, "Марат", language_code="ru")
    skips, types = Citizen(tg), Citizen(tg, USER + 1)

    async def to_the_location(me: Citizen) -> SentMessage:
        await me.text(PROBLEM)
        await me.press("cls:yes")
        [question] = await me.press("photo:done")
        return question

    question, _ = await asyncio.gather(to_the_location(skips), to_the_location(types))
    # a restart while the question is on screen: the keyboard is remembered in the database
    await system.halt()
    system.start()
    r = await skips.text_button(question, "⏭ Пропустить")
    assert "Муниципалитет: Каспийск. Верно?" in skips.said and "mun:yes" in datas(r)
    await types.text("Каспийск, улица Ленина 5")
    assert "Муниципалитет: Каспийск. Верно?" in types.said
    # the label typed when this step shows no such keyboard is the citizen's words
    await skips.text("⏭ Пропустить")
    assert "Не нашёл такого муниципалитета." in skips.said and STALE_RU not in skips.said

    drafts = {r["user_id"]: json.loads(r["data"])["draft"] for r in rows(
        system.db_path, "SELECT user_id, data FROM conversations WHERE channel = 'telegram'")}
    assert "address" not in drafts[str(USER)] and "latitude" not in drafts[str(USER)]
    assert drafts[str(USER + 1)]["address"] == "Каспийск, улица Ленина 5"


# --- what citizens get wrong --------------------------------------------------------------------

async def test_a_forged_button_gets_the_polite_answer_and_is_answered(system: Running) -> None:
    me = Citizen(system.tg)
    await me.text("/start")
    await me.press("cmp:submit", forge=True)  # nothing to submit
    assert STALE_RU in me.said
    await me.press("x" * 30 + "<script>", forge=True)  # not even a payload
    assert STALE_RU in me.said
    answered = system.tg.calls_of("answerCallbackQuery")
    assert len(answered) == 2 and all(c.status == 200 for c in answered)
    assert rows(system.db_path, "SELECT * FROM complaints") == []


async def test_stickers_and_voice_get_only_photos(system: Running) -> None:
    me = Citizen(system.tg)
    await me.text(PROBLEM)
    await me.press("cls:yes")
    await me.raw(sticker={"file_id": "CAACAgIAAxkBAAIStkr", "file_unique_id": "AgADst",
                          "type": "regular", "width": 512, "height": 512,
                          "is_animated": False, "is_video": False})
    assert ONLY_PHOTOS_RU in me.said
    await me.raw(voice={"file_id": "AwACAgIAAxkBAAIVoice", "file_unique_id": "AgADvo",
                        "duration": 3, "mime_type": "audio/ogg"})
    assert ONLY_PHOTOS_RU in me.said
    assert "photo:done" in datas(me.last)  # still asking for photos


async def test_an_edited_message_is_taken_as_a_new_one(system: Running) -> None:
    tg = system.tg
    me = Citizen(tg)
    await me.text("/start")
    first = tg.send_text(USER, "привет")
    await replies(tg, USER, len(tg.sent_to(USER)))
    before = len(tg.sent_to(USER))
    tg.edit_text(USER, first, PROBLEM)
    await replies(tg, USER, before)
    assert any("ЖКХ" in (m.text or "") for m in tg.sent_to(USER)[before:])


async def test_group_chats_get_no_dialogue(system: Running) -> None:
    tg = system.tg
    tg.add_group(GROUP, "Соседи", forum=False)
    tg.send_text(USER, PROBLEM, chat_id=GROUP)
    tg.send_text(USER, "/start", chat_id=GROUP)
    hint = await tg.wait_for_message(GROUP, "личных сообщениях")
    await asyncio.sleep(0.3)
    assert tg.sent_to(GROUP) == [hint]  # the complaint text itself got nothing
    assert tg.sent_to(USER) == []
    assert rows(system.db_path, "SELECT * FROM conversations") == []


# --- the messenger -----------------------------------------------------------------------------

@pytest.fixture
async def messenger() -> AsyncIterator[tuple[FakeTelegram, Any]]:
    from bots.telegram import TelegramMessenger, make_bot

    async with FakeTelegram() as tg:
        tg.add_user(USER)
        bot = make_bot(tg.token, tg.base_url)
        yield tg, TelegramMessenger(bot, base_delay=0.01)
        await bot.session.close()


async def test_a_long_message_is_split_on_lines(messenger) -> None:
    tg, m = messenger
    lines = [f"{i:03d} " + "ж" * 95 for i in range(50)]  # 50 × 100 = 5,049 characters
    text = "\n".join(lines)
    assert await m.send(Address(Channel.TELEGRAM, str(USER)),
                        OutgoingMessage(text, ((Button("OK", "menu:main"),),)))
    first, second = tg.sent_to(USER)
    assert len(first.text or "") <= 4096 and len(second.text or "") <= 4096
    assert f"{first.text}\n{second.text}" == text  # cut between lines, nothing lost
    assert first.reply_markup is None and datas([second]) == {"menu:main"}


async def test_an_oversized_payload_is_dropped_not_sent(messenger, caplog) -> None:
    tg, m = messenger
    msg = OutgoingMessage("Выберите", ((Button("ok", "sector:roads"),
                                        Button("bad", "x:" + "я" * 40)),))
    assert await m.send(Address(Channel.TELEGRAM, str(USER)), msg)
    [sent] = tg.sent_to(USER)
    assert datas([sent]) == {"sector:roads"}
    assert "payload is 82 bytes" in caplog.text


def test_a_text_button_that_cannot_be_one_is_dropped_and_logged_once(caplog) -> None:
    from bots.telegram.channel import _text_buttons_left
    from bots.telegram.render import render

    msg = OutgoingMessage("Где это?", ((Button("⏭ Skip", "loc:skip"),
                                        Button("⏭ Skip", "loc:other")),
                                       (Button("/start", "menu:main"),)), request_location=True)
    # what the channel remembers, then what it sends: the same buttons
    assert _text_buttons_left([OutgoingMessage("Категория: дороги."), msg]) == {
        "⏭ Skip": "loc:skip"}
    [call] = render(USER, msg, language="en")
    assert [[b.text for b in row] for row in call.reply_markup.keyboard] == [
        ["📍 Send location"], ["⏭ Skip"]]
    assert caplog.text.count("dropping text button") == 2  # two buttons, each once


async def test_a_blocked_user_makes_send_return_false(messenger) -> None:
    tg, m = messenger
    tg.block(USER)
    assert await m.send(Address(Channel.TELEGRAM, str(USER)), OutgoingMessage("Статус")) is False
    assert [c.status for c in tg.calls_of("sendMessage")] == [403]
    assert not await m.send(Address(Channel.VK, str(USER)), OutgoingMessage("x"))


async def test_flood_wait_and_a_lost_connection_are_retried(messenger) -> None:
    tg, m = messenger
    tg.fail_next("sendMessage", 429, retry_after=1)
    tg.fail_next("sendMessage", drop=True)
    assert await m.send(Address(Channel.TELEGRAM, str(USER)), OutgoingMessage("Ответ & всё"))
    assert [c.status for c in tg.calls_of("sendMessage")] == [429, 0, 200]
    [sent] = tg.sent_to(USER)
    assert sent.text == "Ответ & всё"


async def test_photos_are_sent_by_file_id(messenger) -> None:
    tg, m = messenger
    tg.send_photo(USER)  # puts a file in the fake
    file_id = next(iter(tg.world.files))
    msg = OutgoingMessage("Фото", attachments=(
        _photo(f"telegram:{file_id}"), _photo("web:abc123")))
    assert await m.send(Address(Channel.TELEGRAM, str(USER)), msg)
    photo, text = tg.sent_to(USER)
    assert photo.method == "sendPhoto" and photo.photo == [file_id]
    assert text.text == "Фото"


def _photo(ref: str) -> Any:
    from dialogue.messages import Attachment, AttachmentKind

    return Attachment(AttachmentKind.PHOTO, ref, "image/jpeg")


# --- translation and resilience, with a recording engine ------------------------------------

@pytest.fixture
async def channel() -> AsyncIterator[tuple[FakeTelegram, Any]]:
    from bots.telegram import serve_telegram
    from tests.fakes.engine import FakeEngine

    engine = FakeEngine()
    async with FakeTelegram() as tg:
        stop = asyncio.Event()
        task = asyncio.create_task(
            serve_telegram(engine, token=tg.token, api_url=tg.base_url, stop=stop))
        yield tg, engine
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_updates_become_incoming_messages(channel) -> None:
    tg, engine = channel
    tg.add_user(USER, "Ali", last_name="Aliev", language_code="en-US")
    tg.add_user(USER + 1, "Hans", language_code="de")
    tg.send_text(USER, "/start@tsur_test_bot")
    tg._user_message(USER, None, None, caption="яма", photo=[  # sizes with their own ids
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60},
        {"file_id": "large", "file_unique_id": "l", "width": 1280, "height": 853},
        {"file_id": "medium", "file_unique_id": "m", "width": 320, "height": 213}])
    tg._user_message(USER, None, None, document={
        "file_id": "doc1", "file_unique_id": "d1", "mime_type": "image/png",
        "file_name": "yama.png"})
    tg._user_message(USER, None, None, document={
        "file_id": "doc2", "file_unique_id": "d2", "mime_type": "application/pdf"})
    tg.send_location(USER, 42.98, 47.50)
    tg.send_text(USER + 1, "hallo")
    received = await engine.wait_for(6)
    start, photo, image_doc, pdf, location, hallo = sorted(
        received, key=lambda m: (m.user_id, m.received_at))
    assert start.text == "/start" and start.address == Address(Channel.TELEGRAM, str(USER))
    assert (start.user_id, start.language_hint, start.display_name) == (
        str(USER), "en", "Ali Aliev")
    assert photo.text == "яма"
    [att] = photo.attachments
    assert (att.kind, att.ref, att.mime) == ("photo", "large", "image/jpeg")
    assert [(a.kind, a.ref, a.mime) for a in image_doc.attachments + pdf.attachments] == [
        ("photo", "doc1", "image/png"), ("document", "doc2", "application/pdf")]
    assert location.location is not None and location.location.latitude == 42.98
    assert hallo.language_hint is None and hallo.text == "hallo"


async def test_engine_errors_and_flood_waits_do_not_stop_polling(channel) -> None:
    tg, engine = channel
    tg.add_user(USER)
    tg.send_text(USER, "boom")  # the engine raises
    await engine.wait_for(1)
    tg.fail_next("sendMessage", 429, retry_after=1)
    tg.send_text(USER, "still there?")
    reply = await tg.wait_for_message(USER, "echo: still there?")
    assert [c.status for c in tg.calls_of("sendMessage")] == [429, 200]
    assert [m.text for m in tg.sent_to(USER)] == [reply.text]


async def test_a_location_request_without_inline_buttons_is_one_message(channel) -> None:
    tg, engine = channel
    tg.add_user(USER, language_code="en")
    tg.send_text(USER, "where")
    message = await tg.wait_for_message(USER, "Share your location")
    await asyncio.sleep(0.2)
    assert tg.sent_to(USER) == [message]
    [[button]] = (message.reply_markup or {})["keyboard"]
    assert button == {"text": "📍 Send location", "request_location": True}


async def test_a_reply_keyboards_text_button_reaches_the_engine_as_its_press(
        channel) -> None:
    tg, engine = channel
    tg.add_user(USER, language_code="en")

    async def then(update: dict, reply: str) -> dict:
        await tg.wait_for_message(USER, reply)
        return update

    # the label typed with no keyboard shown is words
    await then(tg.send_text(USER, "⏭ Skip"), "echo: ⏭ Skip")
    tg.send_text(USER, "where or skip")
    question = await tg.wait_for_message(USER, "Share your location")
    [_, [skip]] = (question.reply_markup or {})["keyboard"]
    assert skip == {"text": "⏭ Skip"}
    pressed = await then(tg.press_text_button(USER, question, "⏭ Skip"), "payload: loc:skip")
    # a message edited into the label while the keyboard is shown is not a press
    typo = await then(tg.send_text(USER, "⏭ Ski"), "echo: ⏭ Ski")
    tg.send_text(USER, "where or skip")
    await tg.wait_for(lambda: [m.text for m in tg.sent_to(USER)].count(question.text) == 2)
    await then(tg.edit_text(USER, typo, "⏭ Skip"), "echo: ⏭ Skip")
    # the dialogue has answered without a keyboard since: the label is words again
    tg.send_text(USER, "⏭ Skip")
    received = await engine.wait_for(7)
    press, edited, typed = received[2], received[5], received[6]
    assert (press.payload, press.text, press.callback_id) == (
        "loc:skip", "", f"text:{pressed['message']['message_id']}")
    assert (edited.payload, edited.text, edited.callback_id) == (None, "⏭ Skip", None)
    assert (typed.payload, typed.text) == (None, "⏭ Skip")
    assert received[0].payload is None


async def test_callback_queries_are_answered_and_carry_the_payload(channel) -> None:
    tg, engine = channel
    tg.add_user(USER)
    tg.send_text(USER, "menu")
    menu = await tg.wait_for_message(USER, "Choose a sector")
    update = tg.press(USER, menu, "sector:roads")
    await tg.wait_for_message(USER, "payload: sector:roads")
    # answered while the engine worked: the answer may arrive after the reply
    await tg.wait_for(lambda: update["callback_query"]["id"] in tg.callback_answers)
    assert engine.received[-1].address == Address(Channel.TELEGRAM, str(USER))
    # the query's id lets the engine tell a press handed out again from a new one
    assert engine.received[-1].callback_id == update["callback_query"]["id"]
    assert engine.received[-1].received_at is None


def test_split_text_cuts_long_lines_at_spaces_and_counts_like_telegram() -> None:
    from bots.telegram import split_text

    words = ["слово"] * 1000  # one 5,999-character line
    pieces = split_text(" ".join(words))
    assert len(pieces) == 2 and all(len(p) <= 4096 for p in pieces)
    assert " ".join(pieces).split() == words  # cut at a space, no word broken
    emoji = split_text("🙂" * 3000)  # 6,000 UTF-16 units: Telegram counts each as two
    assert [len(p) for p in emoji] == [2048, 952]
    assert split_text("  \n\n ") == []


def test_plain_texts_are_put_together_with_the_message_after_them() -> None:
    from bots.telegram.render import merge_replies
    from dialogue.messages import Attachment, AttachmentKind

    yes = ((Button("Да", "x:yes"),),)
    photo = (Attachment(AttachmentKind.PHOTO, "AgAC"),)
    merged = merge_replies([OutgoingMessage("Принято."), OutgoingMessage("Ещё?", yes),
                            OutgoingMessage("Итог")])
    assert merged == [OutgoingMessage("Принято.\n\nЕщё?", yes), OutgoingMessage("Итог")]
    assert merge_replies([OutgoingMessage("a"), OutgoingMessage("b"),
                          OutgoingMessage("c")]) == [OutgoingMessage("a\n\nb\n\nc")]
    # a photo goes before its text, and two texts over one message's limit stay apart
    kept = [OutgoingMessage("Принято."), OutgoingMessage("Фото", attachments=photo)]
    assert merge_replies(kept) == kept
    long = [OutgoingMessage("я" * 3000), OutgoingMessage("ю" * 1100)]
    assert merge_replies(long) == long
    location = [OutgoingMessage("Где?", request_location=True), OutgoingMessage("Итог")]
    assert merge_replies(location) == location


async def test_group_updates_fall_through_to_other_routers(tmp_path: Path) -> None:
    """The citizens' router leaves group messages and buttons to routers included after it
    (the back office will be one)."""
    from aiogram import Router
    from aiogram.types import CallbackQuery, Message

    from bots.telegram import build_dispatcher, serve_telegram
    from tests.fakes.engine import FakeEngine

    seen: list[str] = []
    backoffice = Router()

    @backoffice.message()
    async def on_group_text(message: Message) -> None:
        seen.append(f"text:{message.text}")
        await message.answer("taken", reply_markup=_keyboard("c:1:take"))

    @backoffice.callback_query()
    async def on_group_press(query: CallbackQuery) -> None:
        seen.append(f"press:{query.data}")
        await query.answer("ok")

    engine = FakeEngine()
    dp = build_dispatcher(engine)
    dp.include_router(backoffice)
    async with FakeTelegram() as tg:
        tg.add_user(USER)
        tg.add_group(GROUP)
        stop = asyncio.Event()
        task = asyncio.create_task(serve_telegram(engine, token=tg.token, api_url=tg.base_url,
                                                  stop=stop, dispatcher=dp))
        tg.send_text(USER, "ответ гражданину", chat_id=GROUP)
        card = await tg.wait_for_message(GROUP, "taken")
        update = tg.press(USER, card, "c:1:take", chat_id=GROUP)
        await tg.wait_for(lambda: update["callback_query"]["id"] in tg.callback_answers)
        assert tg.callback_answers[update["callback_query"]["id"]]["text"] == "ok"
        stop.set()
        await asyncio.wait_for(task, 5)
    assert seen == ["text:ответ гражданину", "press:c:1:take"]
    assert engine.received == []


def _keyboard(data: str) -> Any:
    from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=data,
                                                                       callback_data=data)]])
