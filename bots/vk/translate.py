"""Turning vkbottle events into :class:`IncomingMessage` (pure functions, no network).

Only private dialogues become dialogue: a peer id from 2,000,000,000 on is a group chat
and gives ``None``. In a private dialogue the peer id is the user's id, so
``address.chat_id`` and ``user_id`` are the same string. VK does not tell a community
the user's language, so ``language_hint`` is always ``None``.

Payloads: our buttons (callback ones, and the text ones of a location keyboard) carry
``{"p": "<payload>"}``; VK's own "Start" button sends ``{"command": "start"}``, which
becomes the text ``/start``. A payload of any other shape is handed to the core as its
raw JSON, so the core answers it as a stale button.
"""

from __future__ import annotations

import json
from typing import Any

from vkbottle_types.objects import MessagesMessage, MessagesMessageAttachment

from dialogue.messages import (
    Address,
    Attachment,
    AttachmentKind,
    Channel,
    IncomingMessage,
    Location,
)

CHAT_PEER_BASE = 2_000_000_000
START = "/start"


def is_private(peer_id: int | None) -> bool:
    return peer_id is not None and 0 < peer_id < CHAT_PEER_BASE


def payload_of(raw: Any) -> tuple[str | None, str | None]:
    """``(payload, command_text)`` from a button payload (a JSON string or an object)."""
    if raw is None or raw == "":
        return None, None
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            return raw, None
    if isinstance(value, dict):
        if isinstance(value.get("p"), str) and len(value) == 1:
            return value["p"], None
        if value.get("command") == "start":
            return None, START
    return raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False), None


def attachment_of(item: MessagesMessageAttachment) -> Attachment:
    """A photo as PHOTO with ref ``photo<owner>_<id>[_<access_key>]``; a document as
    DOCUMENT; anything else (sticker, audio, video, wall post, voice…) as OTHER."""
    kind = str(getattr(item.type, "value", item.type))
    photo = item.photo
    if kind == "photo" and photo is not None:
        ref = f"photo{photo.owner_id}_{photo.id}"
        if photo.access_key:
            ref += f"_{photo.access_key}"
        return Attachment(AttachmentKind.PHOTO, ref, "image/jpeg")
    if kind == "doc" and item.doc is not None:
        doc = item.doc
        ref = f"doc{doc.owner_id}_{doc.id}"
        return Attachment(AttachmentKind.DOCUMENT, ref, "", doc.title or "")
    return Attachment(AttachmentKind.OTHER, kind)


def location_of(message: MessagesMessage) -> Location | None:
    geo = message.geo
    if geo is None or geo.coordinates is None:
        return None
    return Location(geo.coordinates.latitude, geo.coordinates.longitude)


def incoming_from_message(message: MessagesMessage,
                          choices: dict[str, str] | None = None) -> IncomingMessage | None:
    """A ``message_new`` in a private dialogue, else ``None``.

    :param choices: the numbered options last shown to this peer (typed number →
        payload); a message that is exactly one of those numbers becomes that payload.
    """
    if not is_private(message.peer_id) or message.from_id != message.peer_id:
        return None
    text = message.text or ""
    payload, command = payload_of(message.payload)
    if command is not None:
        text = command
    elif payload is not None:
        text = ""  # a text button's label is ours, not the citizen's words
    attachments = tuple(attachment_of(a) for a in message.attachments or ())
    location = location_of(message)
    if (payload is None and choices and not attachments and location is None
            and text.strip() in choices):
        payload, text = choices[text.strip()], ""
    if not text and payload is None and not attachments and location is None:
        return None
    peer = str(message.peer_id)
    return IncomingMessage(
        address=Address(Channel.VK, peer), user_id=str(message.from_id), text=text,
        payload=payload, attachments=attachments, location=location,
        received_at=message.date)


def incoming_from_event(user_id: int, peer_id: int, raw_payload: Any,
                        event_id: str | None = None) -> IncomingMessage | None:
    """A pressed callback button (``message_event``) in a private dialogue, else ``None``.
    ``event_id`` becomes ``callback_id``: VK hands a press out again with the same one."""
    if not is_private(peer_id) or user_id != peer_id:
        return None
    address = Address(Channel.VK, str(peer_id))
    payload, command = payload_of(raw_payload)
    if command is not None:
        return IncomingMessage(address, str(user_id), text=command, callback_id=event_id)
    if payload is None:
        payload = ""  # an empty press is still a press: the core answers it as stale
    return IncomingMessage(address, str(user_id), payload=payload, callback_id=event_id)
