"""The product's aiogram session (:mod:`bots.telegram.session`): the real aiogram ``Bot``
made by :func:`bots.telegram.make_bot` against the fake Bot API."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramForbiddenError
from aiogram.methods import GetUpdates, SendMessage, SendPhoto
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bots.telegram import make_bot
from bots.telegram.session import skip_updates_through
from tests.fakes.telegram import FakeTelegram

ANNA = 5_007_001


async def test_get_updates_leaves_out_the_updates_already_taken() -> None:
    async with FakeTelegram() as tg:
        tg.add_user(ANNA)
        ids = [tg.send_text(ANNA, f"сообщение {i}")["update_id"] for i in range(3)]
        bot = make_bot(tg.token, tg.base_url)
        try:
            with skip_updates_through(ids[1]):
                fresh = await bot(GetUpdates(timeout=0))
            everything = await bot(GetUpdates(timeout=0))
        finally:
            await bot.session.close()
    assert [u.update_id for u in fresh] == ids[2:]
    assert [u.update_id for u in everything] == ids  # outside it, nothing is left out
    assert fresh[0].message is not None and fresh[0].message.text == "сообщение 2"


async def test_parameters_go_as_json_and_replies_are_parsed() -> None:
    markup = InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text="Да", callback_data="c:1:yes")]])
    async with FakeTelegram() as tg:
        tg.add_user(ANNA)
        bot = make_bot(tg.token, tg.base_url)
        try:
            sent = await bot(SendMessage(chat_id=ANNA, text="<b>Жалоба</b> принята",
                                         parse_mode="HTML", reply_markup=markup))
        finally:
            await bot.session.close()
        [message] = tg.sent_to(ANNA)
    assert isinstance(sent, Message) and sent.message_id == message.message_id
    assert message.text == "Жалоба принята"  # the fake applied parse_mode=HTML
    assert message.reply_markup == {"inline_keyboard": [[
        {"text": "Да", "callback_data": "c:1:yes"}]]}


async def test_an_upload_still_goes_as_a_form() -> None:
    async with FakeTelegram() as tg:
        tg.add_user(ANNA)
        bot = make_bot(tg.token, tg.base_url)
        try:
            await bot(SendPhoto(chat_id=ANNA, photo=BufferedInputFile(b"\x89PNG\r\n\x1a\n fake",
                                                                      "plan.png")))
        finally:
            await bot.session.close()
        [message] = tg.sent_to(ANNA)
    assert message.photo  # the fake stored the uploaded file and gave it a file_id


async def test_errors_are_raised_as_aiogram_raises_them() -> None:
    async with FakeTelegram() as tg:
        tg.add_user(ANNA)
        tg.block(ANNA)
        bot = make_bot(tg.token, tg.base_url)
        try:
            with pytest.raises(TelegramForbiddenError):
                await bot(SendMessage(chat_id=ANNA, text="ответ"))
        finally:
            await bot.session.close()
