"""What the fake Telegram knows: users, chats, topics, messages, files, updates."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.telegram_checks import ApiError, bad_request

IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"RIFF")


@dataclass
class Call:
    """One request the fake received (recorded before it is answered)."""

    method: str
    params: dict[str, Any]
    time: float
    files: dict[str, bytes] = field(default_factory=dict)
    status: int = 200  # what the fake answered; 0 = connection dropped
    via_webhook: bool = False  # made by Telegram from a webhook's answer, not requested


@dataclass
class SentMessage:
    """A message the bot sent (or copied) into a chat; edits update it in place."""

    chat_id: int
    message_id: int
    method: str
    raw: dict[str, Any]
    text: str | None = None
    caption: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None
    thread_id: int | None = None
    photo: list[str] = field(default_factory=list)  # file_ids, largest last
    media_group_id: str | None = None
    parse_mode: str | None = None
    paid_broadcast: bool = False  # sent with allow_paid_broadcast (up to 1000 msg/s, billed)
    deleted: bool = False
    edits: list[str] = field(default_factory=list)  # previous texts

    @property
    def buttons(self) -> list[list[dict[str, Any]]]:
        markup = self.reply_markup or {}
        return markup.get("inline_keyboard") or markup.get("keyboard") or []


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str


@dataclass
class Topic:
    thread_id: int
    name: str
    icon_color: int = 0x6FB9F0
    closed: bool = False
    deleted: bool = False


@dataclass
class ChatState:
    chat: dict[str, Any]
    forum: bool = False
    topics: dict[int, Topic] = field(default_factory=dict)
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_message_id: int = 1

    def allocate_id(self) -> int:
        mid = self.next_message_id
        self.next_message_id += 1
        return mid


class TelegramWorld:
    """State shared by the HTTP methods and the test-side injection helpers."""

    def __init__(self, bot_id: int, bot_username: str) -> None:
        self.bot_user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "ЦУР тест",
            "username": bot_username,
        }
        self.users: dict[int, dict[str, Any]] = {}
        self.chats: dict[int, ChatState] = {}
        self.files: dict[str, StoredFile] = {}
        self.updates: list[dict[str, Any]] = []
        self.sent: list[SentMessage] = []
        self.blocked: set[int] = set()
        self.callback_queries: dict[str, dict[str, Any]] = {}
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.commands: list[dict[str, Any]] = []
        self.webhook_url = ""
        self.allowed_updates: list[str] = []
        self._update_ids = itertools.count(700_000_001)
        self._file_seq = itertools.count(1)
        self._query_seq = itertools.count(4_000_000_000_001)

    # --- users and chats ---------------------------------------------------------------
    def user(self, user_id: int, **fields: Any) -> dict[str, Any]:
        user = self.users.setdefault(
            user_id,
            {"id": user_id, "is_bot": False, "first_name": f"User{user_id}", "language_code": "ru"},
        )
        user.update({k: v for k, v in fields.items() if v is not None})
        if user_id not in self.chats:
            chat = {"id": user_id, "type": "private", "first_name": user["first_name"]}
            self.chats[user_id] = ChatState(chat)
        return user

    def group(self, chat_id: int, title: str, *, forum: bool) -> ChatState:
        chat = {"id": chat_id, "type": "supergroup", "title": title}
        if forum:
            chat["is_forum"] = True
        state = self.chats.setdefault(chat_id, ChatState(chat, forum=forum))
        return state

    def chat(self, chat_id: Any) -> ChatState:
        """Resolve ``chat_id`` (int or ``@username``) or raise "chat not found"."""
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            for state in self.chats.values():
                if state.chat.get("username") == chat_id[1:]:
                    return state
            raise bad_request("chat not found")
        try:
            return self.chats[int(chat_id)]
        except (KeyError, TypeError, ValueError):
            raise bad_request("chat not found") from None

    def check_thread(self, state: ChatState, thread_id: int | None) -> None:
        if thread_id is None:
            return
        topic = state.topics.get(thread_id)
        if topic is None or topic.deleted:
            raise bad_request("message thread not found")
        if topic.closed:
            raise bad_request("TOPIC_CLOSED")

    def check_not_blocked(self, chat_id: int) -> None:
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")

    # --- messages ------------------------------------------------------------------------
    def new_message(
        self, state: ChatState, sender: dict[str, Any], thread_id: int | None, **content: Any
    ) -> dict[str, Any]:
        mid = state.allocate_id()
        message: dict[str, Any] = {
            "message_id": mid,
            "from": sender,
            "chat": state.chat,
            "date": int(time.time()),
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        message.update({k: v for k, v in content.items() if v is not None})
        state.messages[mid] = message
        return message

    # --- files ---------------------------------------------------------------------------
    def add_file(self, data: bytes, kind: str = "photos", ext: str = "jpg") -> StoredFile:
        n = next(self._file_seq)
        stored = StoredFile(
            file_id=f"AgACAgIAAxkBAAI{n:08d}fake",
            file_unique_id=f"AQAD{n:06d}",
            data=data,
            file_path=f"{kind}/file_{n}.{ext}",
        )
        self.files[stored.file_id] = stored
        return stored

    def photo_sizes(self, stored: StoredFile, width: int = 1280, height: int = 960) -> list[dict]:
        sizes = []
        for scale in (90, 320, 800, width):
            w = min(scale, width)
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "width": w,
                    "height": max(1, height * w // width),
                    "file_size": len(stored.data),
                }
            )
        return sizes

    def photo_from_upload(self, data: bytes) -> StoredFile:
        if not data:
            raise bad_request("file must be non-empty")
        if not data.startswith(IMAGE_MAGIC):
            raise bad_request("IMAGE_PROCESS_FAILED")
        return self.add_file(data)

    def photo_by_reference(self, ref: str) -> StoredFile:
        if ref in self.files:
            return self.files[ref]
        if ref.startswith(("http://", "https://")):
            return self.add_file(b"")  # the fake never fetches URLs
        raise bad_request("wrong file identifier/HTTP URL specified")

    # --- updates -------------------------------------------------------------------------
    def push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), kind: payload}
        self.updates.append(update)
        return update

    def new_query_id(self) -> str:
        return str(next(self._query_seq))
