"""Turning aiogram updates into :class:`IncomingMessage` (pure functions, no network).

Only private chats become dialogue: anything from a group, supergroup or channel gives
``None``. A Telegram private chat's id equals the user's id, so ``address.chat_id`` and
``user_id`` are the same string.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime

from aiogram.enums import ChatType
from aiogram.types import CallbackQuery, Chat, Message, User

from dialogue.messages import (
    Address,
    Attachment,
    AttachmentKind,
    Channel,
    IncomingMessage,
    Location,
)

LANGUAGES = frozenset({"ru", "en"})
# "/start@tsur_bot payload" → "/start": the core knows bare commands only
_COMMAND = re.compile(r"^(/[A-Za-z0-9_]+)(?:@\w+)?(\s.*)?$", re.DOTALL)
_BARE_COMMANDS = frozenset({"/start"})  # deep-link payloads are not used (yet)


def language_hint(user: User | None) -> str | None:
    """``"ru"`` or ``"en"`` from the user's Telegram language (``"en-US"`` → ``"en"``)."""
    code = (user.language_code or "") if user else ""
    primary = code.split("-")[0].lower()
    return primary if primary in LANGUAGES else None


def is_private(chat: Chat | None) -> bool:
    return chat is not None and chat.type == ChatType.PRIVATE


def attachments_of(message: Message) -> tuple[Attachment, ...]:
    """What the citizen sent besides text: photos as PHOTO (the largest size), documents
    by their MIME type (images count as photos), everything else as OTHER."""
    if message.photo:
        largest = max(message.photo, key=lambda s: (s.width * s.height, s.file_size or 0))
        return (Attachment(AttachmentKind.PHOTO, largest.file_id, "image/jpeg"),)
    if message.document is not None:
        doc = message.document
        mime = doc.mime_type or ""
        kind = AttachmentKind.PHOTO if mime.startswith("image/") else AttachmentKind.DOCUMENT
        return (Attachment(kind, doc.file_id, mime, doc.file_name or ""),)
    for other in (message.sticker, message.voice, message.video, message.video_note,
                  message.audio, message.animation):
        if other is not None:
            return (Attachment(AttachmentKind.OTHER, other.file_id),)
    if message.contact is not None or message.poll is not None or message.venue is not None \
            or message.dice is not None:
        return (Attachment(AttachmentKind.OTHER, ""),)
    return ()


def message_text(message: Message) -> str:
    """Text or caption; a leading ``/command@bot`` loses the mention, and ``/start`` its
    deep-link argument."""
    text = message.text if message.text is not None else (message.caption or "")
    match = _COMMAND.match(text.strip())
    if match is None:
        return text
    command, rest = match.group(1), match.group(2) or ""
    return command if command.lower() in _BARE_COMMANDS else command + rest


def incoming_from_message(message: Message) -> IncomingMessage | None:
    """A message (or an edited one, treated as new) from a private chat, else ``None``.

    A message with nothing the core understands (a service message, say) gives ``None``.
    """
    if not is_private(message.chat) or message.from_user is None:
        return None
    text = message_text(message)
    attachments = attachments_of(message)
    location = None
    if message.location is not None and message.venue is None:
        location = Location(message.location.latitude, message.location.longitude)
    elif message.venue is not None:
        location = Location(message.venue.location.latitude, message.venue.location.longitude)
        attachments = ()
    if not text and not attachments and location is None:
        return None
    user = message.from_user
    return IncomingMessage(
        address=Address(Channel.TELEGRAM, str(message.chat.id)),
        user_id=str(user.id), text=text, attachments=attachments, location=location,
        received_at=_when(message), language_hint=language_hint(user),
        display_name=user.full_name)


def incoming_from_callback(query: CallbackQuery) -> IncomingMessage | None:
    """A pressed inline button in a private chat, else ``None``. ``payload`` is the raw
    ``callback_data`` (the core re-checks it); ``callback_id`` the query's id, the same
    when Telegram hands the press out again (the engine does not take it twice)."""
    message = query.message
    if message is None or not is_private(message.chat) or query.data is None:
        return None
    return IncomingMessage(
        address=Address(Channel.TELEGRAM, str(message.chat.id)),
        user_id=str(query.from_user.id), payload=query.data,
        language_hint=language_hint(query.from_user), display_name=query.from_user.full_name,
        callback_id=query.id)


def pressed_text_button(incoming: IncomingMessage, message: Message,
                        payload: str) -> IncomingMessage:
    """``incoming`` (the text of ``message``) as the press of the reply keyboard's text
    button with that label: ``payload`` instead of the text, as an inline button's press
    carries it. ``callback_id`` is the message's id, which Telegram keeps when it hands
    the message out again (a press is recorded once, like an inline one)."""
    return replace(incoming, text="", payload=payload,
                   callback_id=f"text:{message.message_id}")


def _when(message: Message) -> datetime | None:
    return message.edit_date if isinstance(message.edit_date, datetime) else message.date
