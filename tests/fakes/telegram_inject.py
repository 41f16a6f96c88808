"""Test-side helpers of the fake Telegram: chats, topics and injected updates."""

from __future__ import annotations

import time
from typing import Any

from tests.fakes.telegram_checks import callback_datas
from tests.fakes.telegram_state import ChatState, SentMessage, TelegramWorld, Topic

# The smallest bytes the fake accepts as a JPEG photo (it checks the magic only).
SAMPLE_JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + b"\x00" * 64
    + b"\xff\xd9"
)


class TelegramInjector:
    """Mixed into :class:`FakeTelegram`; every helper returns the update it queued."""

    world: TelegramWorld

    def _changed(self) -> None:  # pragma: no cover - provided by FakeTelegram
        raise NotImplementedError

    # --- chats and topics ----------------------------------------------------------------
    def add_user(self, user_id: int, first_name: str | None = None, **fields: Any) -> dict:
        return self.world.user(user_id, first_name=first_name, **fields)

    def add_group(self, chat_id: int, title: str = "ЦУР: операторы", *, forum: bool = True) -> None:
        """A supergroup the bot is a member of (a forum by default, like the back office)."""
        self.world.group(chat_id, title, forum=forum)

    def add_topic(self, chat_id: int, name: str) -> int:
        """A topic created by a human in a forum group; returns its message_thread_id."""
        state = self.world.chat(chat_id)
        topic = Topic(state.next_message_id, name)
        state.topics[topic.thread_id] = topic
        state.allocate_id()
        return topic.thread_id

    def delete_topic(self, chat_id: int, thread_id: int) -> None:
        """Someone deleted the topic: sends to it now fail with "message thread not found"."""
        self.world.chat(chat_id).topics[thread_id].deleted = True

    def close_topic(self, chat_id: int, thread_id: int) -> None:
        self.world.chat(chat_id).topics[thread_id].closed = True

    def topic(self, chat_id: int, thread_id: int) -> Topic:
        return self.world.chat(chat_id).topics[thread_id]

    # --- updates -------------------------------------------------------------------------
    def _where(self, user_id: int, chat_id: int | None, thread_id: int | None) -> ChatState:
        self.world.user(user_id)
        state = self.world.chat(user_id if chat_id is None else chat_id)
        if thread_id is not None and thread_id not in state.topics:
            raise ValueError(f"no topic {thread_id} in chat {state.chat['id']}")
        return state

    def _user_message(
        self, user_id: int, chat_id: int | None, thread_id: int | None, **content: Any
    ) -> dict[str, Any]:
        state = self._where(user_id, chat_id, thread_id)
        message = self.world.new_message(state, self.world.users[user_id], thread_id, **content)
        update = self.world.push_update("message", message)
        self._changed()
        return update

    def send_text(
        self,
        user_id: int,
        text: str,
        chat_id: int | None = None,
        thread_id: int | None = None,
        **user_fields: Any,
    ) -> dict[str, Any]:
        """A user writes ``text`` (to the bot's private chat unless ``chat_id``)."""
        if user_fields:
            self.world.user(user_id, **user_fields)
        entities = None
        if text.startswith("/"):
            command = text.split()[0]
            entities = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self._user_message(user_id, chat_id, thread_id, text=text, entities=entities)

    def send_photo(
        self,
        user_id: int,
        data: bytes = SAMPLE_JPEG,
        caption: str | None = None,
        chat_id: int | None = None,
        thread_id: int | None = None,
        *,
        width: int = 1280,
        height: int = 960,
    ) -> dict[str, Any]:
        """A user sends a photo; ``getFile`` and the file download serve ``data``."""
        stored = self.world.add_file(data)
        sizes = self.world.photo_sizes(stored, width, height)
        return self._user_message(user_id, chat_id, thread_id, photo=sizes, caption=caption)

    def send_location(
        self,
        user_id: int,
        latitude: float,
        longitude: float,
        chat_id: int | None = None,
        thread_id: int | None = None,
    ) -> dict[str, Any]:
        location = {"latitude": latitude, "longitude": longitude}
        return self._user_message(user_id, chat_id, thread_id, location=location)

    def press(
        self,
        user_id: int,
        message: SentMessage | dict[str, Any] | int,
        data: str,
        *,
        chat_id: int | None = None,
        forge: bool = False,
    ) -> dict[str, Any]:
        """A user presses an inline button of a bot message.

        ``message`` is a :class:`SentMessage` (from ``sent_to``/``wait_for_message``),
        a raw message dict or a message id (then pass ``chat_id``). The button must be
        on the message's current keyboard unless ``forge=True`` (a stale or crafted
        payload, which a bot must re-check).
        """
        sent = self._find_sent(message, user_id if chat_id is None else chat_id)
        if not forge and data not in callback_datas(sent.reply_markup):
            raise ValueError(f"message {sent.message_id} has no button with data {data!r}")
        self.world.user(user_id)
        query = {
            "id": self.world.new_query_id(),
            "from": self.world.users[user_id],
            "chat_instance": f"-{abs(sent.chat_id)}77",
            "message": sent.raw,
            "data": data,
        }
        self.world.callback_queries[query["id"]] = query
        update = self.world.push_update("callback_query", query)
        self._changed()
        return update

    def press_text_button(
        self, user_id: int, message: SentMessage | dict[str, Any] | int, label: str
    ) -> dict[str, Any]:
        """A user presses a text button of a bot message's reply keyboard: Telegram sends
        its label as the user's text message (no payload). The button must be on the
        message's keyboard."""
        sent = self._find_sent(message, user_id)
        markup = sent.reply_markup or {}
        labels = {b.get("text") for row in markup.get("keyboard", ()) for b in row
                  if not b.get("request_location") and not b.get("request_contact")}
        if label not in labels:
            raise ValueError(f"message {sent.message_id} has no text button {label!r}")
        return self.send_text(user_id, label)

    def _find_sent(self, message: SentMessage | dict[str, Any] | int, chat_id: int) -> SentMessage:
        if isinstance(message, SentMessage):
            chat_id, mid = message.chat_id, message.message_id
        elif isinstance(message, dict):
            chat_id, mid = message["chat"]["id"], message["message_id"]
        else:
            mid = message
        for sent in self.world.sent:
            if sent.chat_id == chat_id and sent.message_id == mid and not sent.deleted:
                return sent
        raise ValueError(f"the bot has no message {mid} in chat {chat_id}")

    def edit_text(self, user_id: int, message: dict[str, Any], text: str) -> dict[str, Any]:
        """A user edits their message (``message`` is an update or message dict)."""
        original = message.get("message", message)
        state = self.world.chat(original["chat"]["id"])
        stored = state.messages[original["message_id"]]
        if stored["from"]["id"] != user_id:
            raise ValueError("users can edit only their own messages")
        stored.update(text=text, edit_date=int(time.time()))
        update = self.world.push_update("edited_message", dict(stored))
        self._changed()
        return update
