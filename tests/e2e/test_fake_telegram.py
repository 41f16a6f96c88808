"""The fake Telegram Bot API behaves like the real one for the real aiogram client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_inject import SAMPLE_JPEG

USER = 4242
GROUP = -1001234567890


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        fake.add_user(USER, "Патимат")
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Any]:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    session = AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url))
    bot = Bot(tg.token, session=session)
    yield bot
    await bot.session.close()


def _keyboard(*datas: str) -> Any:
    from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=d, callback_data=d) for d in datas]]
    )


async def test_get_me_answers_as_the_configured_bot(tg: FakeTelegram, bot: Any) -> None:
    me = await bot.get_me()
    assert me.is_bot and me.username == "tsur_test_bot"
    assert me.id == int(tg.token.split(":")[0])
    assert [c.method for c in tg.calls] == ["getMe"]


async def test_wrong_token_is_unauthorized(tg: FakeTelegram) -> None:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.exceptions import TelegramUnauthorizedError

    session = AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url))
    other = Bot("1:wrong", session=session)
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await other.get_me()
    finally:
        await session.close()


async def test_send_message_is_recorded_with_markup_and_entities(
    tg: FakeTelegram, bot: Any
) -> None:
    sent = await bot.send_message(
        USER, "<b>Жалоба</b> №12 &amp; ответ", parse_mode="HTML", reply_markup=_keyboard("c:12")
    )
    assert sent.text == "Жалоба №12 & ответ"
    assert sent.entities[0].type == "bold" and sent.entities[0].length == 6
    [recorded] = tg.sent_to(USER)
    assert recorded.message_id == sent.message_id
    assert recorded.reply_markup["inline_keyboard"][0][0]["callback_data"] == "c:12"
    assert tg.calls_of("sendMessage")[0].params["parse_mode"] == "HTML"


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("<div>x</div>", 'Unsupported start tag "div"'),
        ("1 < 2", "Unsupported start tag"),
        ("Tom & Jerry", 'bare "&"'),
        ("<b>bold", "Can't find end tag"),
        ("<b>x</i>", "Unmatched end tag"),
        ('<span class="x">y</span>', "tg-spoiler"),
    ],
)
async def test_bad_html_is_a_bad_request(bot: Any, text: str, detail: str) -> None:
    from aiogram.exceptions import TelegramBadRequest

    with pytest.raises(TelegramBadRequest) as e:
        await bot.send_message(USER, text, parse_mode="HTML")
    assert "can't parse entities" in e.value.message and detail in e.value.message


async def test_allowed_html_tags_pass(bot: Any) -> None:
    text = (
        '<a href="https://e.ru/?a=1&amp;b=2">l</a> <code>c</code> <pre>p</pre> '
        '<tg-spoiler>s</tg-spoiler> <span class="tg-spoiler">s</span> '
        "<blockquote>q</blockquote> <i>i</i><em>e</em><u>u</u><s>s</s>&lt;&gt;&#33;"
    )
    sent = await bot.send_message(USER, text, parse_mode="HTML")
    assert sent.text.endswith("<>!")
    assert sent.entities[0].url == "https://e.ru/?a=1&b=2"


async def test_text_length_is_counted_after_entity_parsing(tg: FakeTelegram, bot: Any) -> None:
    from aiogram.exceptions import TelegramBadRequest

    await bot.send_message(USER, "<b>" + "я" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER, "я" * 4097)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(USER, "<b> </b>", parse_mode="HTML")
    assert len(tg.sent_to(USER)) == 1


async def test_callback_data_over_64_bytes_is_rejected(tg: FakeTelegram, bot: Any) -> None:
    from aiogram.exceptions import TelegramBadRequest

    await bot.send_message(USER, "ok", reply_markup=_keyboard("ж" * 32))  # 64 bytes
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(USER, "x", reply_markup=_keyboard("ж" * 32 + "a"))
    assert len(tg.sent_to(USER)) == 1


async def test_caption_over_1024_is_rejected(bot: Any) -> None:
    from aiogram.exceptions import TelegramBadRequest
    from aiogram.types import BufferedInputFile

    photo = BufferedInputFile(SAMPLE_JPEG, "p.jpg")
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(USER, photo, caption="x" * 1025)


async def test_unknown_chat_and_blocked_user(tg: FakeTelegram, bot: Any) -> None:
    from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError

    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(999, "hi")
    tg.block(USER)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER, "hi")
    assert tg.sent_to(USER) == [] and tg.calls_of("sendMessage")[-1].status == 403


async def test_fail_next_429_raises_retry_after_then_recovers(tg: FakeTelegram, bot: Any) -> None:
    from aiogram.exceptions import TelegramRetryAfter, TelegramServerError

    tg.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as e:
        await bot.send_message(USER, "a")
    assert e.value.retry_after == 7
    tg.fail_next("sendMessage", 500)
    with pytest.raises(TelegramServerError):
        await bot.send_message(USER, "b")
    await bot.send_message(USER, "c")
    assert [m.text for m in tg.sent_to(USER)] == ["c"]


async def test_dropped_connection_after_apply_loses_only_the_reply(
    tg: FakeTelegram, bot: Any
) -> None:
    from aiogram.exceptions import TelegramNetworkError

    tg.fail_next("sendMessage", drop=True, after_apply=True)
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(USER, "sent but unconfirmed")
    assert [m.text for m in tg.sent_to(USER)] == ["sent but unconfirmed"]
    assert tg.calls_of("sendMessage")[0].status == 0


async def test_fault_rate_is_seeded_and_reproducible() -> None:
    async def statuses() -> list[int]:
        async with FakeTelegram(seed=3) as fake:
            fake.add_user(USER)
            fake.fault_rate = 0.5
            fake.fault_kinds = [fake.fault_kinds[1]]  # 500 only
            from aiohttp import ClientSession

            async with ClientSession() as http:
                for _ in range(12):
                    url = f"{fake.base_url}/bot{fake.token}/sendMessage"
                    await http.post(url, data={"chat_id": USER, "text": "x"})
            return [c.status for c in fake.calls]

    first = await statuses()
    assert first == await statuses()
    assert {200, 500} == set(first)


async def test_forum_topics_and_threads(tg: FakeTelegram, bot: Any) -> None:
    from aiogram.exceptions import TelegramBadRequest

    tg.add_group(GROUP)
    topic = await bot.create_forum_topic(GROUP, "Жалоба №7")
    await bot.send_message(GROUP, "новая жалоба", message_thread_id=topic.message_thread_id)
    assert tg.sent_to(GROUP)[0].thread_id == topic.message_thread_id
    await bot.edit_forum_topic(GROUP, topic.message_thread_id, name="Жалоба №7 (закрыта)")
    await bot.close_forum_topic(GROUP, topic.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="TOPIC_CLOSED"):
        await bot.send_message(GROUP, "x", message_thread_id=topic.message_thread_id)
    await bot.reopen_forum_topic(GROUP, topic.message_thread_id)
    tg.delete_topic(GROUP, topic.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(GROUP, "x", message_thread_id=topic.message_thread_id)
    with pytest.raises(TelegramBadRequest, match="message thread not found"):
        await bot.send_message(GROUP, "x", message_thread_id=999)
    with pytest.raises(TelegramBadRequest, match="the chat is not a forum"):
        await bot.create_forum_topic(USER, "x")


async def test_edit_delete_copy_and_commands(tg: FakeTelegram, bot: Any) -> None:
    from aiogram.exceptions import TelegramBadRequest
    from aiogram.types import BotCommand

    tg.add_group(GROUP)
    sent = await bot.send_message(USER, "статус: новая", reply_markup=_keyboard("a"))
    await bot.edit_message_text("статус: в работе", chat_id=USER, message_id=sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("статус: в работе", chat_id=USER, message_id=sent.message_id)
    await bot.edit_message_reply_markup(
        chat_id=USER, message_id=sent.message_id, reply_markup=_keyboard("b")
    )
    [recorded] = tg.sent_to(USER)
    assert recorded.text == "статус: в работе" and recorded.edits == ["статус: новая"]
    copied = await bot.copy_message(GROUP, USER, sent.message_id)
    assert tg.sent_to(GROUP)[0].message_id == copied.message_id
    assert tg.sent_to(GROUP)[0].text == "статус: в работе"
    assert await bot.delete_message(USER, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(USER, sent.message_id)
    assert await bot.set_my_commands([BotCommand(command="start", description="Начать")])
    assert tg.world.commands == [{"command": "start", "description": "Начать"}]
    assert await bot.send_chat_action(USER, "typing")


async def test_media_group_uploads_photos(tg: FakeTelegram, bot: Any) -> None:
    from aiogram.types import BufferedInputFile, InputMediaPhoto

    media = [
        InputMediaPhoto(media=BufferedInputFile(SAMPLE_JPEG, f"{i}.jpg"), caption=f"фото {i}")
        for i in range(3)
    ]
    messages = await bot.send_media_group(USER, media)
    assert len(messages) == 3 and len({m.media_group_id for m in messages}) == 1
    assert [m.caption for m in tg.sent_to(USER)] == ["фото 0", "фото 1", "фото 2"]
    file = await bot.get_file(messages[0].photo[-1].file_id)
    assert (await bot.download_file(file.file_path)).read() == SAMPLE_JPEG


async def test_unknown_method_is_404(tg: FakeTelegram) -> None:
    from aiohttp import ClientSession

    async with ClientSession() as http:
        response = await http.post(f"{tg.base_url}/bot{tg.token}/sendDice", data={})
        body = await response.json()
    assert response.status == 404
    assert body == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_json_bodies_are_accepted(tg: FakeTelegram) -> None:
    from aiohttp import ClientSession

    markup = {"inline_keyboard": [[{"text": "Да", "callback_data": "yes"}]]}
    async with ClientSession() as http:
        response = await http.post(
            f"{tg.base_url}/bot{tg.token}/sendMessage",
            json={"chat_id": USER, "text": "?", "reply_markup": markup},
        )
        body = await response.json()
    assert body["ok"] and body["result"]["reply_markup"] == markup


async def test_get_updates_long_polls_and_confirms_by_offset(tg: FakeTelegram, bot: Any) -> None:
    assert await bot.get_updates(timeout=0) == []
    waiting = asyncio.create_task(bot.get_updates(timeout=5))
    await tg.wait_for(lambda: tg.calls_of("getUpdates")[1:])
    await asyncio.sleep(0.05)
    assert not waiting.done()
    injected = tg.send_text(USER, "алло")
    [update] = await asyncio.wait_for(waiting, 2)
    assert update.update_id == injected["update_id"] and update.message.text == "алло"
    second = tg.send_text(USER, "ещё")
    assert second["update_id"] > injected["update_id"]
    updates = await bot.get_updates(offset=update.update_id + 1, timeout=0)
    assert [u.message.text for u in updates] == ["ещё"]
    assert [u["update_id"] for u in tg.pending_updates] == [second["update_id"]]


async def test_dispatcher_polling_handles_text_press_and_photo(tg: FakeTelegram, bot: Any) -> None:
    from aiogram import Dispatcher, F
    from aiogram.types import CallbackQuery, Message

    dp = Dispatcher()
    downloaded: list[bytes] = []

    @dp.message(F.photo)
    async def on_photo(message: Message) -> None:
        buffer = await message.bot.download(message.photo[-1])
        downloaded.append(buffer.read())
        await message.answer("фото получено")

    @dp.message(F.text)
    async def on_text(message: Message) -> None:
        await message.answer(f"Вы написали: {message.text}", reply_markup=_keyboard("c:1:close"))

    @dp.callback_query(F.data == "c:1:close")
    async def on_press(query: CallbackQuery) -> None:
        await query.answer("Закрыто")
        await query.message.edit_text("Жалоба закрыта")

    polling = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, polling_timeout=1, close_bot_session=False)
    )
    try:
        await tg.wait_for(lambda: tg.calls_of("getUpdates"))
        tg.send_text(USER, "яма на дороге")
        reply = await tg.wait_for_message(USER, "Вы написали: яма на дороге")
        update = tg.press(USER, reply, "c:1:close")
        await tg.wait_for(lambda: reply.text == "Жалоба закрыта")
        query_id = update["callback_query"]["id"]
        await tg.wait_for(lambda: query_id in tg.callback_answers)
        assert tg.callback_answers[query_id]["text"] == "Закрыто"
        tg.send_photo(USER, caption="вот")
        await tg.wait_for_message(USER, "фото получено")
        assert downloaded == [SAMPLE_JPEG]
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 5)
    assert [c.params["file_id"] for c in tg.calls_of("getFile")] == [update_photo_id(tg)]


def update_photo_id(tg: FakeTelegram) -> str:
    [photo_file] = [f for f in tg.world.files.values() if f.data == SAMPLE_JPEG]
    return photo_file.file_id
