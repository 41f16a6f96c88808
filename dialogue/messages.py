"""Boundary types: the only things that cross between channel adapters and the core."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    TELEGRAM = "telegram"
    VK = "vk"
    WEB = "web"


@dataclass(frozen=True, slots=True)
class Address:
    """Where a citizen can be reached: a channel and a chat id on it."""

    channel: Channel
    chat_id: str

    def __str__(self) -> str:
        return f"{self.channel.value}:{self.chat_id}"

    @classmethod
    def parse(cls, text: str) -> Address:
        channel, _, chat_id = text.partition(":")
        if not chat_id:
            raise ValueError(f"not an address: {text!r}")
        return cls(Channel(channel), chat_id)


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float


class AttachmentKind(StrEnum):
    PHOTO = "photo"
    DOCUMENT = "document"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file the citizen sent. ``ref`` is channel-specific (Telegram file_id, VK photo id,
    web upload id); ``mime`` is what the channel reported, if anything."""

    kind: AttachmentKind
    ref: str
    mime: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One thing a citizen did: wrote text, pressed a button (``payload``), sent files
    or a location. ``user_id`` identifies the person on the channel; ``address`` is where
    replies go (equal for private chats). ``callback_id`` is the platform's own id of a
    button press (Telegram's callback query id, VK's ``event_id``), the same when the
    platform hands the press out again."""

    address: Address
    user_id: str
    text: str = ""
    payload: str | None = None
    attachments: tuple[Attachment, ...] = ()
    location: Location | None = None
    received_at: datetime | None = None
    language_hint: str | None = None
    display_name: str = ""
    callback_id: str | None = None


@dataclass(frozen=True, slots=True)
class Button:
    """``payload`` is a short id such as ``"sector:roads"`` (well under 64 bytes); it is
    re-checked on arrival, never trusted."""

    label: str
    payload: str


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """What the core says. ``buttons`` are rows of buttons. Text is plain (adapters escape).
    ``language`` is the citizen's, for the few words an adapter adds itself (a location
    button's label, numbered options)."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    attachments: tuple[Attachment, ...] = ()
    request_location: bool = False
    remove_keyboard: bool = False
    language: str = "ru"

    def all_buttons(self) -> list[Button]:
        return [b for row in self.buttons for b in row]

    def to_json(self) -> dict[str, Any]:
        """A JSON object of everything but ``language`` (stored by the outbox, and by the
        engine for the answer it may have to give again); :meth:`from_json` reads it."""
        payload: dict[str, Any] = {"text": self.text}
        if self.buttons:
            payload["buttons"] = [[{"label": b.label, "payload": b.payload} for b in row]
                                  for row in self.buttons]
        if self.attachments:
            payload["attachments"] = [{"kind": a.kind.value, "ref": a.ref, "mime": a.mime,
                                       "name": a.name} for a in self.attachments]
        if self.request_location:
            payload["request_location"] = True
        if self.remove_keyboard:
            payload["remove_keyboard"] = True
        return payload

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> OutgoingMessage:
        """The message :meth:`to_json` stored (in the default language)."""
        return cls(
            text=str(payload.get("text", "")),
            buttons=tuple(tuple(Button(b["label"], b["payload"]) for b in row)
                          for row in payload.get("buttons", ())),
            attachments=tuple(Attachment(AttachmentKind(a["kind"]), a["ref"],
                                         a.get("mime", ""), a.get("name", ""))
                              for a in payload.get("attachments", ())),
            request_location=bool(payload.get("request_location", False)),
            remove_keyboard=bool(payload.get("remove_keyboard", False)),
        )
