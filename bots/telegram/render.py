"""Turning an :class:`OutgoingMessage` into Bot API calls (no network here).

:func:`render` returns aiogram method objects; :class:`~bots.telegram.messenger.TelegramMessenger`
executes them in order. The rules:

* Every text goes out with ``parse_mode=HTML`` and is escaped as a whole: the core speaks
  plain text, so nothing it says (or quotes from a citizen) can become markup.
* Texts are split below Telegram's 4096-character limit, on line boundaries where possible
  (then on spaces, then anywhere). The limit is counted in UTF-16 code units, which is
  never less than what Telegram counts.
* ``buttons`` become an inline keyboard whose ``callback_data`` is the payload. A payload
  over 64 bytes would make Telegram reject the whole message, so such a button is dropped
  (and logged) instead.
* ``request_location`` becomes a one-time reply keyboard with a "send location" button;
  ``remove_keyboard`` becomes ``ReplyKeyboardRemove``. One Telegram message carries only
  one keyboard, so **the message's buttons join the location button in that reply
  keyboard, as text buttons** ("📍 Send location" and, below it, "⏭ Skip"): one message,
  every choice under the input field. A text button sends its label as a plain text, not
  the payload: :func:`text_buttons` gives the label → payload map the channel remembers
  (:mod:`bots.telegram.keyboards`) to turn that text back into the button's press. So a
  text button's label must be one the citizen's text can be matched against: unique on
  its keyboard, at most :data:`MAX_TEXT_BUTTON` characters, not a ``/command``; the rest
  are dropped (and logged).
  ``remove_keyboard`` together with inline buttons is not expressible without a
  content-free message, so then the removal is skipped (the location keyboard is one-time
  and hides itself once used).
* Photo attachments whose ``ref`` is a Telegram ``file_id`` (bare, or stored as
  ``telegram:<file_id>``) are sent with ``sendPhoto`` before the text, so the keyboard
  ends up on the last message. Other channels' files cannot be sent by reference and are
  skipped with a log line.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from aiogram.enums import ParseMode
from aiogram.methods import SendMessage, SendPhoto, TelegramMethod
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from bots.texts import N_, translate
from dialogue.messages import Attachment, AttachmentKind, Button, OutgoingMessage

log = logging.getLogger(__name__)

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_INLINE_BUTTONS = 100
MAX_TEXT_BUTTON = 64  # characters of a reply keyboard's text button (ours, not Telegram's)
LOCATION_BUTTON = N_("📍 Send location")

ReplyMarkup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


def escape(text: str) -> str:
    """Escape plain text for ``parse_mode=HTML`` (``<``, ``>``, ``&``)."""
    return html.escape(text, quote=False)


def _units(text: str) -> int:
    """Length as Telegram measures it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` UTF-16 units, preferring line breaks,
    then spaces; pieces that would be blank are left out."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = line if not current else f"{current}\n{line}"
        if _units(candidate) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        current = ""
        while _units(line) > limit:
            head = _cut(line, limit)
            pieces.append(head)
            line = line[len(head):].lstrip(" ")
        current = line
    pieces.append(current)
    return [p for p in pieces if p.strip()]


def _cut(line: str, limit: int) -> str:
    """The longest prefix of ``line`` within ``limit`` units, ending at a space if any."""
    end = 0
    units = 0
    for i, ch in enumerate(line):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            break
        end = i + 1
    space = line.rfind(" ", 0, end)
    return line[:space] if space > end // 2 else line[:end]


def inline_keyboard(rows: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup | None:
    """Rows of buttons as an inline keyboard; unsendable buttons are dropped and logged."""
    keyboard: list[list[InlineKeyboardButton]] = []
    count = 0
    for row in rows:
        out: list[InlineKeyboardButton] = []
        for button in row:
            size = len(button.payload.encode("utf-8"))
            if not 1 <= size <= MAX_CALLBACK_DATA:
                log.warning("telegram: dropping button %r: payload is %d bytes (limit %d)",
                            button.label, size, MAX_CALLBACK_DATA)
                continue
            if not button.label.strip():
                log.warning("telegram: dropping a button without a label (%r)", button.payload)
                continue
            if count == MAX_INLINE_BUTTONS:
                log.warning("telegram: more than %d buttons; the rest are dropped",
                            MAX_INLINE_BUTTONS)
                break
            count += 1
            out.append(InlineKeyboardButton(text=button.label, callback_data=button.payload))
        if out:
            keyboard.append(out)
    return InlineKeyboardMarkup(inline_keyboard=keyboard) if keyboard else None


def _text_rows(rows: tuple[tuple[Button, ...], ...], *,
               quiet: bool = False) -> list[list[Button]]:
    """The buttons that can be text buttons (see the module doc), in their rows; the
    others are logged unless ``quiet`` (:func:`render` logs them, once)."""
    out: list[list[Button]] = []
    seen: set[str] = set()
    for row in rows:
        kept = []
        for button in row:
            label = button.label
            if not label.strip() or label in seen or len(label) > MAX_TEXT_BUTTON \
                    or label.startswith("/"):
                if not quiet:
                    log.warning("telegram: dropping text button %r (%r): blank, repeated, "
                                "too long or a command", label, button.payload)
                continue
            seen.add(label)
            kept.append(button)
        if kept:
            out.append(kept)
    return out


def text_buttons(msg: OutgoingMessage) -> dict[str, str]:
    """The label → payload of the text buttons :func:`render` puts on ``msg``'s reply
    keyboard (none unless it asks for the location)."""
    if not msg.request_location:
        return {}
    return {b.label: b.payload for row in _text_rows(msg.buttons, quiet=True) for b in row}


def location_keyboard(language: str = "ru",
                      rows: tuple[tuple[Button, ...], ...] = ()) -> ReplyKeyboardMarkup:
    """The location button, then ``rows`` as text buttons (their labels; payloads cannot
    ride on a reply keyboard: see :func:`text_buttons`)."""
    label = translate(LOCATION_BUTTON, language)
    keyboard = [[KeyboardButton(text=label, request_location=True)]]
    keyboard += [[KeyboardButton(text=b.label) for b in row] for row in _text_rows(rows)]
    return ReplyKeyboardMarkup(keyboard=keyboard, resize_keyboard=True,
                               one_time_keyboard=True)


def telegram_file_id(attachment: Attachment) -> str | None:
    """The Telegram ``file_id`` of a photo attachment, or ``None`` if it is not one."""
    if attachment.kind is not AttachmentKind.PHOTO or not attachment.ref:
        return None
    channel, sep, rest = attachment.ref.partition(":")
    if not sep:
        return attachment.ref  # a bare file_id, as bots.telegram.translate produces
    return rest if channel == "telegram" and rest else None


def merge_replies(replies: Sequence[OutgoingMessage]) -> list[OutgoingMessage]:
    """The replies of one dialogue step with each plain text (no buttons, keyboard or
    files) put at the top of the text that follows it, a blank line between, when both fit
    one Telegram message: the citizen reads the same words in one message instead of
    two ("Category: roads." then the photo question), and the bot makes one call less.
    A reply with attachments is never merged into (its photos go before its text)."""
    merged: list[OutgoingMessage] = []
    for reply in replies:
        last = merged[-1] if merged else None
        if (last is not None and _plain(last) and not reply.attachments and last.text.strip()
                and reply.text.strip()):
            text = f"{last.text}\n\n{reply.text}"
            if _units(text) <= MAX_TEXT:
                merged[-1] = replace(reply, text=text)
                continue
        merged.append(reply)
    return merged


def _plain(msg: OutgoingMessage) -> bool:
    return not (msg.buttons or msg.attachments or msg.request_location
                or msg.remove_keyboard)


def render(chat_id: int | str, msg: OutgoingMessage, *,
           language: str | None = None) -> list[TelegramMethod[Any]]:
    """The Bot API calls that show ``msg`` in ``chat_id``, in the order to make them.
    The adapter's own words are in ``language``, by default the message's."""
    language = language or msg.language
    calls: list[TelegramMethod[Any]] = []
    for attachment in msg.attachments:
        file_id = telegram_file_id(attachment)
        if file_id is None:
            log.info("telegram: cannot send attachment %r by reference; skipped", attachment.ref)
            continue
        calls.append(SendPhoto(chat_id=chat_id, photo=file_id))

    inline = None if msg.request_location else inline_keyboard(msg.buttons)
    reply: ReplyKeyboardMarkup | ReplyKeyboardRemove | None = None
    if msg.request_location:
        reply = location_keyboard(language, msg.buttons)
    elif msg.remove_keyboard:
        reply = ReplyKeyboardRemove(remove_keyboard=True)

    pieces = split_text(msg.text)
    if not pieces and (inline or reply):
        pieces = ["…"]  # a keyboard needs a message to hang on
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        markup: ReplyMarkup | None = None
        if last:
            markup = inline or reply
        calls.append(SendMessage(chat_id=chat_id, text=escape(piece),
                                 parse_mode=ParseMode.HTML, reply_markup=markup))
    return calls
