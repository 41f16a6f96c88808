"""What the fake VK knows: users, peers, messages, photos and long-poll events."""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

API_VERSION = "5.199"
CHAT_PEER_BASE = 2_000_000_000
CLIENT_INFO = {
    "button_actions": [
        "text",
        "vkpay",
        "open_app",
        "location",
        "open_link",
        "callback",
        "intent_subscribe",
        "intent_unsubscribe",
    ],
    "keyboard": True,
    "inline_keyboard": True,
    "carousel": True,
    "lang_id": 0,
}


@dataclass
class VkCall:
    """One API request the fake received (``status``: 200, an HTTP error, or 0 = dropped)."""

    method: str
    params: dict[str, Any]
    time: float
    error_code: int | None = None
    status: int = 200


@dataclass
class VkSentMessage:
    """A message the community sent; ``messages.edit`` updates it in place."""

    peer_id: int
    message_id: int
    conversation_message_id: int
    random_id: int
    text: str
    keyboard: dict[str, Any] | None = None
    attachments: list[str] = field(default_factory=list)
    payload: str | None = None
    edits: list[str] = field(default_factory=list)

    @property
    def buttons(self) -> list[list[dict[str, Any]]]:
        return (self.keyboard or {}).get("buttons", [])


@dataclass
class VkPhoto:
    id: int
    owner_id: int
    access_key: str
    data: bytes

    def attachment(self) -> str:
        return f"photo{self.owner_id}_{self.id}"


class VkWorld:
    """State shared by the API methods, the long poll and the injection helpers."""

    def __init__(self, group_id: int, base_url: str = "") -> None:
        self.group_id = group_id
        self.base_url = base_url
        self.users: dict[int, dict[str, Any]] = {}
        self.allowed: set[int] = set()  # users who wrote or allowed messages; chats added
        self.denied: set[int] = set()
        self.sent: list[VkSentMessage] = []
        self.by_random_id: dict[int, Any] = {}
        self.photos: dict[str, VkPhoto] = {}
        self.uploads: dict[str, bytes] = {}
        self.events: list[dict[str, Any]] = []  # event i has ts = first_ts + i
        self.first_ts = 1
        self.keys: set[str] = set()
        self.pending_events: dict[str, dict[str, Any]] = {}
        self.event_answers: dict[str, dict[str, Any]] = {}
        self._message_ids = itertools.count(1001)
        self._cmids: dict[int, itertools.count] = {}
        self._photo_ids = itertools.count(457239017)

    @property
    def next_ts(self) -> int:
        return self.first_ts + len(self.events)

    def user(self, user_id: int, first_name: str | None = None, last_name: str = "") -> dict:
        user = self.users.setdefault(
            user_id,
            {
                "id": user_id,
                "first_name": f"User{user_id}",
                "last_name": last_name,
                "can_access_closed": True,
                "is_closed": False,
            },
        )
        if first_name:
            user["first_name"] = first_name
        return user

    def next_ids(self, peer_id: int) -> tuple[int, int]:
        cmid = next(self._cmids.setdefault(peer_id, itertools.count(1)))
        return next(self._message_ids), cmid

    def new_key(self) -> str:
        key = secrets.token_hex(20)
        self.keys.add(key)
        return key

    def push_event(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = {
            "group_id": self.group_id,
            "type": kind,
            "event_id": secrets.token_hex(20),
            "v": API_VERSION,
            "object": obj,
        }
        self.events.append(event)
        return event

    def add_photo(self, owner_id: int, data: bytes) -> VkPhoto:
        photo = VkPhoto(next(self._photo_ids), owner_id, secrets.token_hex(9), data)
        self.photos[photo.attachment()] = photo
        return photo

    def photo_object(self, photo: VkPhoto) -> dict[str, Any]:
        url = f"{self.base_url}/photos/{photo.owner_id}_{photo.id}.jpg"
        sizes = [
            {"type": kind, "width": w, "height": w * 3 // 4, "url": f"{url}?size={kind}"}
            for kind, w in (("s", 75), ("m", 130), ("x", 604), ("y", 807), ("z", 1280))
        ]
        return {
            "album_id": -3,
            "date": int(time.time()),
            "id": photo.id,
            "owner_id": photo.owner_id,
            "access_key": photo.access_key,
            "sizes": sizes,
            "text": "",
            "has_tags": False,
        }

    def find_photo(self, owner_id: int, photo_id: int) -> VkPhoto | None:
        return self.photos.get(f"photo{owner_id}_{photo_id}")

    def find_sent(
        self, peer_id: int, message_id: int | None = None, cmid: int | None = None
    ) -> VkSentMessage | None:
        for sent in self.sent:
            if sent.peer_id == peer_id and (
                sent.message_id == message_id or sent.conversation_message_id == cmid
            ):
                return sent
        return None
