"""What the text buttons of a citizen's reply keyboard stand for: label → payload, per chat.

A Telegram reply keyboard (the one under the input field, the only kind that can ask for
the location) has no payloads: pressing one of its text buttons sends the label as an
ordinary message. So when the channel shows a message's buttons on a reply keyboard
(:func:`bots.telegram.render.text_buttons`), it remembers here which payload each label
stands for, and the citizen's next message that is exactly one of those labels becomes
that button's press (:class:`bots.telegram.channel.TelegramChannel`). The core never sees
the label.

A keyboard answers the step that showed it: once the dialogue has taken another step, a
label typed is the citizen's words again.

:class:`SqlReplyKeyboards` keeps the labels in the conversation store (channel
:data:`CHANNEL`, key: the chat id, which in a private chat is the citizen's id), next to
the dialogue itself, so a press after a restart, or one that reaches another webhook
worker, is still a press. It needs no write to forget: a keyboard is stale once the
citizen's dialogue conversation was saved after it (the engine saves it on every step,
in whichever process). Its row is saved, and looked up, in the dialogue step's own unit
of work (the engine's ``also_save`` and ``rewrite``), under the step's locks: no
transaction of its own. :class:`MemoryReplyKeyboards` keeps
them in this process and forgets a chat's keyboard when the dialogue replies without one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Protocol

from domain.ports import Conversation, ConversationStore

CHANNEL = "tg-keyboard"  # the conversation store's "channel" of these rows
STATE = "keyboard"
MAX_CHATS = 100_000  # chats whose keyboard a process keeps in memory (the oldest go)


class ReplyKeyboards(Protocol):
    """Per chat, the labels of the reply keyboard's text buttons and their payloads."""

    def keep(self, chat_id: str, labels: Mapping[str, str]) -> list[Conversation]:
        """The dialogue's replies to ``chat_id`` end with a keyboard of these text buttons
        (label → payload); empty: with none. Returns the conversation-store rows that keep
        it, for the dialogue step to save in its own unit of work (the engine's
        ``also_save``): committed with the step, or not at all."""
        ...

    async def payload(self, chat_id: str, text: str, *, dialogue: Conversation,
                      store: ConversationStore) -> str | None:
        """The payload of the button labelled ``text`` on ``chat_id``'s keyboard, read in
        the dialogue step's own unit of work (the engine's ``rewrite``): ``dialogue`` is
        the citizen's conversation as the step loaded it, ``store`` that unit's store."""
        ...


class MemoryReplyKeyboards:
    """In this process only (lost on restart); for tests and single-process set-ups."""

    def __init__(self, max_chats: int = MAX_CHATS) -> None:
        self._labels: OrderedDict[str, dict[str, str]] = OrderedDict()
        self._max = max_chats

    def keep(self, chat_id: str, labels: Mapping[str, str]) -> list[Conversation]:
        self._labels.pop(chat_id, None)
        if labels:
            self._labels[chat_id] = dict(labels)
            while len(self._labels) > self._max:
                self._labels.popitem(last=False)
        return []  # kept here, nothing to save

    async def payload(self, chat_id: str, text: str, *, dialogue: Conversation,
                      store: ConversationStore) -> str | None:
        return self._labels.get(chat_id, {}).get(text)


class SqlReplyKeyboards:
    """In the conversation store (see the module doc): survives a restart, shared by
    every worker process on one database."""

    def keep(self, chat_id: str, labels: Mapping[str, str]) -> list[Conversation]:
        if not labels:
            return []  # the step saves the dialogue: the last keyboard is stale already
        # saved after the dialogue's row in the same unit, so stamped no earlier than it
        return [Conversation(CHANNEL, chat_id, STATE, {"labels": dict(labels)})]

    async def payload(self, chat_id: str, text: str, *, dialogue: Conversation,
                      store: ConversationStore) -> str | None:
        # a plain read of one row: it locks nothing and writes nothing (it runs for every
        # short text a citizen sends); the dialogue's row is the step's, already loaded
        found = (await store.peek(chat_id, CHANNEL)).get(CHANNEL)
        if found is None or found.state != STATE or found.updated_at is None:
            return None
        labels = (found.data or {}).get("labels")
        payload = labels.get(text) if isinstance(labels, dict) else None
        if not isinstance(payload, str):
            return None
        if dialogue.updated_at is not None and dialogue.updated_at > found.updated_at:
            return None  # a later step: the keyboard answered an earlier question
        return payload
