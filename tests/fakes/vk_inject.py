"""Test-side helpers of the fake VK: users, chats and injected long-poll events."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from tests.fakes.vk_keyboard import callback_payloads
from tests.fakes.vk_state import CLIENT_INFO, VkSentMessage, VkWorld

# The smallest bytes the fake accepts as a JPEG photo (it checks the magic only).
SAMPLE_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(64)


class VkInjector:
    """Mixed into :class:`FakeVK`. Events injected before the bot's first
    ``groups.getLongPollServer`` are never delivered (as on VK): ``await vk.wait_polling()``."""

    world: VkWorld

    def _changed(self) -> None:  # pragma: no cover - provided by FakeVK
        raise NotImplementedError

    def add_user(self, user_id: int, first_name: str | None = None, last_name: str = "") -> dict:
        """A user who allowed messages from the community."""
        self.world.allowed.add(user_id)
        return self.world.user(user_id, first_name, last_name)

    def add_chat(self, peer_id: int) -> None:
        """A group chat (peer_id >= 2000000000) the community is a member of."""
        self.world.allowed.add(peer_id)

    def deny(self, peer_id: int) -> None:
        """The user denied messages from the community (sends fail with 901)."""
        self.world.denied.add(peer_id)

    def allow(self, peer_id: int) -> None:
        self.world.denied.discard(peer_id)
        self.world.allowed.add(peer_id)

    def send_text(
        self,
        from_id: int,
        text: str = "",
        payload: Any = None,
        attachments: list[bytes | dict[str, Any]] | None = None,
        geo: tuple[float, float] | dict[str, Any] | None = None,
        *,
        peer_id: int | None = None,
    ) -> dict[str, Any]:
        """A ``message_new`` event: a user writes to the community (or in chat ``peer_id``).

        ``attachments`` items are photo bytes (stored and served by the fake) or raw
        attachment dicts; ``payload`` (a keyboard button's) is sent as a JSON string.
        """
        if from_id not in self.world.denied:
            self.world.allowed.add(from_id)
        self.world.user(from_id)
        peer = from_id if peer_id is None else peer_id
        message_id, cmid = self.world.next_ids(peer)
        message: dict[str, Any] = {
            "date": int(time.time()),
            "from_id": from_id,
            "id": message_id if peer == from_id else 0,
            "out": 0,
            "version": 10_000_000 + message_id,
            "attachments": [self._attachment(from_id, a) for a in attachments or []],
            "conversation_message_id": cmid,
            "fwd_messages": [],
            "important": False,
            "is_hidden": False,
            "peer_id": peer,
            "random_id": 0,
            "text": text,
        }
        if payload is not None:
            message["payload"] = payload if isinstance(payload, str) else json.dumps(payload)
        if geo is not None:
            message["geo"] = geo if isinstance(geo, dict) else self._geo(*geo)
        event = self.world.push_event(
            "message_new", {"message": message, "client_info": dict(CLIENT_INFO)}
        )
        self._changed()
        return event

    def send_photo(self, from_id: int, data: bytes = SAMPLE_JPEG, text: str = "") -> dict:
        return self.send_text(from_id, text, attachments=[data])

    def _attachment(self, owner_id: int, item: bytes | dict[str, Any]) -> dict[str, Any]:
        if isinstance(item, dict):
            return item
        photo = self.world.add_photo(owner_id, item)
        return {"type": "photo", "photo": self.world.photo_object(photo)}

    @staticmethod
    def _geo(latitude: float, longitude: float) -> dict[str, Any]:
        return {
            "type": "point",
            "coordinates": {"latitude": latitude, "longitude": longitude},
            "place": {"country": "Россия", "city": "Махачкала", "title": "Махачкала, Россия"},
        }

    def press(
        self,
        from_id: int,
        payload: Any,
        conversation_message_id: int | None = None,
        *,
        peer_id: int | None = None,
        forge: bool = False,
    ) -> dict[str, Any]:
        """A ``message_event``: the user presses a callback button of a community message.

        Without ``conversation_message_id`` the latest message to the peer is used. The
        button must be on that message unless ``forge=True``.
        """
        peer = from_id if peer_id is None else peer_id
        sent = self._message(peer, conversation_message_id)
        if not forge and payload not in callback_payloads(sent.keyboard):
            raise ValueError(f"message {sent.conversation_message_id} has no button {payload!r}")
        obj = {
            "user_id": from_id,
            "peer_id": peer,
            "event_id": secrets.token_hex(6),
            "payload": payload,
            "conversation_message_id": sent.conversation_message_id,
        }
        self.world.pending_events[obj["event_id"]] = obj
        event = self.world.push_event("message_event", obj)
        self._changed()
        return event

    def _message(self, peer: int, cmid: int | None) -> VkSentMessage:
        candidates = [s for s in self.world.sent if s.peer_id == peer]
        if cmid is not None:
            candidates = [s for s in candidates if s.conversation_message_id == cmid]
        if not candidates:
            raise ValueError(f"the community sent no message {cmid or ''} to {peer}")
        return candidates[-1]
