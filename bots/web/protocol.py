"""The web chat's WebSocket protocol: JSON text frames, one object per frame.

Client → server (``hello`` must come first; every other frame is one citizen action)::

    {"type": "hello", "client_id": "<uuid kept in localStorage>", "lang": "ru"}
    {"type": "text", "text": "На улице Ленина яма"}
    {"type": "button", "payload": "sector:roads"}
    {"type": "location", "latitude": 42.98, "longitude": 47.5}
    {"type": "photo", "upload_id": "<id from POST /chat/upload>", "text": "optional caption"}

Any action frame may carry ``"id"`` (1-64 characters ``A-Za-z0-9_-``, unique within the
client) and ``"sent_at"`` (when the browser sent it, milliseconds since the epoch). A frame
with an ``id`` is acknowledged once the dialogue core has persisted it and its replies
were sent::

    {"type": "ack", "id": "<the frame's id>"}

The page keeps every frame until its ``ack`` — in memory and in the tab's
``sessionStorage`` (bounded), so across a reload too — and sends the unacknowledged ones
again, with the same ``id`` and ``sent_at``, after a reconnect or a reload (right after
``hello``, before anything new; a reloaded page holding such frames does not send its
``/start`` greeting): a frame sent just before the server died is not lost. ``sent_at``
is the frame's time stamp for the engine, which recognises a frame it had already
persisted by its time stamp and content and does not record it twice (a ``sent_at`` more
than :data:`MAX_CLOCK_SKEW` away from the server's clock is replaced by the server's
time). The engine remembers the last five messages of a conversation, so the page keeps
at most four frames unacknowledged on the socket. The server itself does not remember
frame ids: a repeat is always handed to the engine, which answers it again.

Server → client::

    {"type": "message", "text": "...", "buttons": [[{"label": "...", "payload": "..."}]],
     "request_location": false, "remove_keyboard": false,
     "attachments": [{"kind": "photo", "ref": "web:<id>", "mime": "image/png", "name": "",
                      "url": "/chat/uploads/<id>"}]}
    {"type": "error", "code": "bad_json", "text": "human-readable explanation"}

``client_id`` becomes both ``user_id`` and ``Address(Channel.WEB, client_id).chat_id``.
A bad frame is answered with an ``error`` frame and the socket stays open; a frame over
64 KiB closes the socket with code 1009 (message too big). A bad frame carrying a
well-formed ``id`` is acknowledged after its ``error``: sent again, it would fail again
(the page would otherwise send it after every reconnect and reload). Text longer than
:data:`LONG_TEXT` is *not* cut here: the engine answers it politely.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from typing import Any

from bots.texts import N_, translate
from dialogue.messages import OutgoingMessage

MAX_FRAME_BYTES = 64 * 1024
LONG_TEXT = 10_000
MAX_PAYLOAD = 256
MAX_CLOCK_SKEW = 24 * 3600.0  # seconds a browser's sent_at may be off the server's clock
_FRAME_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
_LANG_RE = re.compile(r"[a-z]{2}(-[A-Za-z]{2,4})?")

_ERRORS: dict[str, str] = {
    "bad_json": N_("The frame is not a JSON object."),
    "unknown_type": N_("Unknown frame type: {value}."),
    "bad_field": N_("Field '{value}' is missing or invalid."),
    "empty_text": N_("The message is empty."),
    "no_hello": N_("Send a hello frame first."),
    "bad_client_id": N_("Invalid client id."),
    "client_changed": N_("The client id cannot change within one connection."),
    "unknown_upload": N_("Photo not found, please upload it again."),
    "binary": N_("Binary frames are not supported."),
    "too_large": N_("The file is too large: at most {value} MB."),
    "not_image": N_("Only photos can be sent (JPEG, PNG, WebP or GIF)."),
    "bad_upload": N_("The upload could not be read. Please try again."),
    "internal": N_("Something went wrong. Please try again a bit later."),
}


class FrameError(Exception):
    """A frame the server cannot act on; ``code`` names the problem."""

    def __init__(self, code: str, value: str = "") -> None:
        super().__init__(f"{code}: {value}" if value else code)
        self.code = code
        self.value = value


def error_frame(code: str, lang: str = "ru", value: str = "") -> dict[str, Any]:
    """Build an ``error`` frame in ``lang`` (Russian unless it is English)."""
    text = translate(_ERRORS.get(code, _ERRORS["internal"]), lang).format(value=value)
    return {"type": "error", "code": code, "text": text}


@dataclass(frozen=True, slots=True)
class Hello:
    client_id: str
    lang: str | None


@dataclass(frozen=True, slots=True)
class Action:
    """One citizen action decoded from a frame (photo frames still hold the raw upload id)."""

    type: str
    text: str = ""
    payload: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    upload_id: str | None = None
    id: str | None = None  # to acknowledge, and to recognise when sent again
    sent_at: float | None = None  # seconds since the epoch, as the browser said


def _tagged(action: Action, data: dict[str, Any]) -> Action:
    """``action`` with the frame's ``id`` and ``sent_at``, if it has them."""
    frame_id = data.get("id")
    if frame_id is None:
        return action
    if not isinstance(frame_id, str) or not _FRAME_ID_RE.fullmatch(frame_id):
        raise FrameError("bad_field", "id")
    sent_at = data.get("sent_at")
    if sent_at is not None:
        if isinstance(sent_at, bool) or not isinstance(sent_at, int | float) \
                or not math.isfinite(sent_at) or sent_at <= 0:
            raise FrameError("bad_field", "sent_at")
        sent_at = float(sent_at) / 1000
    return replace(action, id=frame_id, sent_at=sent_at)


def frame_id_of(raw: str) -> str | None:
    """The well-formed ``id`` a frame carries, if any, even when the frame is otherwise
    not one :func:`parse_frame` accepts (to acknowledge it: it would not read better sent
    again)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    frame_id = data.get("id") if isinstance(data, dict) else None
    if isinstance(frame_id, str) and _FRAME_ID_RE.fullmatch(frame_id):
        return frame_id
    return None


def parse_frame(raw: str) -> Hello | Action:
    """Decode one text frame.

    :raises FrameError: for anything that is not a well-formed known frame.
    """
    try:
        data = json.loads(raw)
    except ValueError:
        raise FrameError("bad_json") from None
    if not isinstance(data, dict):
        raise FrameError("bad_json")
    kind = data.get("type")
    if kind == "hello":
        return _hello(data)
    return _tagged(_action(kind, data), data)


def _action(kind: Any, data: dict[str, Any]) -> Action:
    if kind == "text":
        text = _str(data, "text")
        if not text.strip():
            raise FrameError("empty_text")
        return Action("text", text=text)
    if kind == "button":
        payload = _str(data, "payload")
        if not payload or len(payload) > MAX_PAYLOAD:
            raise FrameError("bad_field", "payload")
        return Action("button", payload=payload)
    if kind == "location":
        lat = _coordinate(data, "latitude", 90)
        lon = _coordinate(data, "longitude", 180)
        return Action("location", latitude=lat, longitude=lon)
    if kind == "photo":
        upload_id = _str(data, "upload_id")
        caption = _str(data, "text") if "text" in data else ""
        return Action("photo", text=caption, upload_id=upload_id)
    raise FrameError("unknown_type", str(kind)[:40])


def _hello(data: dict[str, Any]) -> Hello:
    client_id = data.get("client_id")
    if not isinstance(client_id, str) or not _CLIENT_ID_RE.fullmatch(client_id):
        raise FrameError("bad_client_id")
    lang = data.get("lang")
    if not isinstance(lang, str) or not _LANG_RE.fullmatch(lang):
        lang = None
    return Hello(client_id, lang)


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise FrameError("bad_field", key)
    return value


def _coordinate(data: dict[str, Any], key: str, limit: float) -> float:
    value = data.get(key)
    # bool is an int subclass; true/false are not coordinates
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FrameError("bad_field", key)
    number = float(value)
    if not math.isfinite(number) or abs(number) > limit:
        raise FrameError("bad_field", key)
    return number


def render_message(msg: OutgoingMessage, uploads_url: str) -> dict[str, Any]:
    """Turn an :class:`OutgoingMessage` into a ``message`` frame.

    Attachments whose ``ref`` is ``web:<id>`` get a ``url`` under ``uploads_url``; others
    (files of another channel) are listed without one.
    """
    attachments = []
    for a in msg.attachments:
        item: dict[str, Any] = {"kind": str(a.kind), "ref": a.ref, "mime": a.mime,
                                "name": a.name}
        if a.ref.startswith("web:"):
            item["url"] = f"{uploads_url}/{a.ref[4:]}"
        attachments.append(item)
    return {
        "type": "message",
        "text": msg.text,
        "buttons": [[{"label": b.label, "payload": b.payload} for b in row]
                    for row in msg.buttons],
        "request_location": msg.request_location,
        "remove_keyboard": msg.remove_keyboard,
        "attachments": attachments,
    }
