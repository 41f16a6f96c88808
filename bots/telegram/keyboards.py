"""What the text buttons of a citizen's reply keyboard stand for: label → payload, per chat.

A Telegram reply keyboard (the one under the input field, the only kind that can ask for
the location) has no payloads: pressing one of its text buttons sends the label as an
ordinary message. So when the channel shows a message's buttons on a reply keyboard
(:func:`bots.telegram.render.text_buttons`), it remembers here which payload each label
stands for, and the citizen's next message that is exactly one of those labels becomes
that button's press (:class:`bots.telegram.channel.TelegramChannel`). The core never sees
the label.

A keyboard answers the step that showed it: the channel forgets it (``shown(chat, {})``)
once the dialogue has replied without one, so a label typed later is taken as text.

:class:`SqlReplyKeyboards` keeps the labels in the conversation store (channel
:data:`CHANNEL`, key: the chat id), next to the dialogue itself, so a press after a
restart, or one that reaches another webhook worker, is still a press. It forgets what it
knows to be stored: what this process wrote or read. A keyboard another process showed
may outlive its step in the store when this process handles the next, non-text, update;
a label typed much later is then taken as that (stale) button, which the core re-checks
and answers as stale. :class:`MemoryReplyKeyboards` is the same within one process.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Protocol

from domain.ports import Conversation, UnitOfWorkFactory

CHANNEL = "tg-keyboard"  # the conversation store's "channel" of these rows
STATE = "keyboard"
MAX_CHATS = 100_000  # chats whose keyboard a process keeps in memory (the oldest go)


class ReplyKeyboards(Protocol):
    """Per chat, the labels of the reply keyboard's text buttons and their payloads."""

    async def shown(self, chat_id: str, labels: Mapping[str, str]) -> None:
        """The dialogue's replies to ``chat_id`` ended with a keyboard of these text
        buttons (label → payload); empty: with none."""
        ...

    async def payload(self, chat_id: str, text: str) -> str | None:
        """The payload of the button labelled ``text`` on ``chat_id``'s keyboard."""
        ...


class MemoryReplyKeyboards:
    """In this process only (lost on restart); for tests and single-process set-ups."""

    def __init__(self, max_chats: int = MAX_CHATS) -> None:
        self._labels: OrderedDict[str, dict[str, str]] = OrderedDict()
        self._max = max_chats

    async def shown(self, chat_id: str, labels: Mapping[str, str]) -> None:
        self._labels.pop(chat_id, None)
        if labels:
            self._labels[chat_id] = dict(labels)
            while len(self._labels) > self._max:
                self._labels.popitem(last=False)

    async def payload(self, chat_id: str, text: str) -> str | None:
        return self._labels.get(chat_id, {}).get(text)


class SqlReplyKeyboards:
    """In the conversation store (see the module doc): survives a restart, shared by
    every worker process on one database."""

    def __init__(self, uow_factory: UnitOfWorkFactory, max_chats: int = MAX_CHATS) -> None:
        self._uow_factory = uow_factory
        # chats with labels stored, as far as this process knows: the ones to forget
        self._stored: OrderedDict[str, None] = OrderedDict()
        self._max = max_chats

    async def shown(self, chat_id: str, labels: Mapping[str, str]) -> None:
        if not labels and chat_id not in self._stored:
            return  # nothing stored that this process knows of: no write per step
        async with self._uow_factory() as uow:
            await uow.conversations.save(Conversation(
                CHANNEL, chat_id, STATE, {"labels": dict(labels)} if labels else {}))
            await uow.commit()
        self._note(chat_id, bool(labels))

    async def payload(self, chat_id: str, text: str) -> str | None:
        async with self._uow_factory() as uow:
            found = await uow.conversations.load(CHANNEL, chat_id)
        labels = (found.data or {}).get("labels") if found.state == STATE else None
        if not isinstance(labels, dict) or not labels:
            return None
        self._note(chat_id, True)
        payload = labels.get(text)
        return payload if isinstance(payload, str) else None

    def _note(self, chat_id: str, stored: bool) -> None:
        self._stored.pop(chat_id, None)
        if stored:
            self._stored[chat_id] = None
            while len(self._stored) > self._max:
                self._stored.popitem(last=False)
