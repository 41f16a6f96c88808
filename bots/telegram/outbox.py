"""The Telegram ``Messenger`` of the outbox: one try per message, outcomes for the worker.

:class:`~bots.telegram.messenger.TelegramMessenger` serves the dialogue: it waits out flood
control and retries by itself, and answers ``True``/``False``. The outbox worker needs the
opposite — it paces the channel, holds it back on a 429 and reschedules with backoff — so
:class:`TelegramOutboxMessenger` makes each Bot API call once and says what happened:

=========================================================  ================================
Telegram's answer                                           outcome
=========================================================  ================================
200                                                         ``SendResult.OK``
403 (blocked, deactivated, can't initiate conversation),    ``SendResult.UNREACHABLE``
400 "chat not found" / "PEER_ID_INVALID" (the citizen's
private chat existed: the account is gone)
429 ``retry_after``                                         ``RetryAfter(retry_after)``
5xx, timeouts, dropped connections, unparsable replies,     ``TransientError``
401/404/409 (configuration: fixed by an admin, not by
giving up on the message)
any other 400, 413 (the message itself is bad)              ``SendResult.REJECTED``
=========================================================  ================================

A photo Telegram refuses is logged and skipped, as in the dialogue; the text still goes.
Telegram has no idempotency key, so a message split into several calls remembers (per
``key``, in this process) how many of its calls went through, and a retry after a failure
on part 2 does not send part 1 again.

A broadcast is one message to thousands of chats, so the calls of a message are rendered
and turned into JSON once (the last few messages are remembered) and each chat's request
body is that JSON with its ``chat_id`` put in, posted by
:func:`~bots.telegram.session.post_unparsed`; the answer is checked, not parsed
into aiogram's types. Errors are raised as aiogram raises them, for the chat's own call.

With ``paid_broadcast`` (``TSUR_TELEGRAM_RATE`` above the free 30 msg/s), a broadcast's
calls carry ``allow_paid_broadcast``: Telegram then lets them through at up to 1000 msg/s
and bills 0.1 Star for each message over the free limits. Status notices, answers and
surveys never carry it.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    AiogramError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
)
from aiogram.methods import SendPhoto

from dialogue.messages import Address, Channel, OutgoingMessage
from notifications.broadcast_message import is_broadcast_key
from notifications.messenger import RetryAfter, SendResult, TransientError

from .render import render
from .session import json_params, post_unparsed

log = logging.getLogger(__name__)

# 400 descriptions that mean "this chat is gone", not "this request is malformed"
GONE = ("chat not found", "peer_id_invalid", "user not found")
MAX_KEYS_REMEMBERED = 10_000
MAX_MESSAGES_PREPARED = 32
# Bot API: "allow up to 1000 messages per second, ignoring broadcasting limits for a fee of
# 0.1 Telegram Stars per message" (sendMessage, sendPhoto, …; billed only over the limits)
PAID = "allow_paid_broadcast"
PAID_MEMBER = f',"{PAID}":true'
FREE_RATE = 30.0  # messages/s Telegram allows a bot's bulk notifications without the fee


@dataclass(frozen=True, slots=True)
class Prepared:
    """One call of a message, rendered for no chat in particular: ``call`` (with
    ``chat_id`` 0) and, unless it uploads a file, its JSON body less the ``chat_id``."""

    call: Any
    rest: str | None  # the JSON object's members after chat_id ("" if none), or None

    def for_chat(self, chat_id: int, *, paid: bool = False) -> Any:
        update: dict[str, Any] = {"chat_id": chat_id}
        if paid and PAID in type(self.call).model_fields:
            update[PAID] = True
        return self.call.model_copy(update=update)

    def body(self, chat_id: int, *, paid: bool = False) -> str:
        assert self.rest is not None
        return f'{{"chat_id":{chat_id}{PAID_MEMBER if paid else ""}{self.rest}}}'


class TelegramOutboxMessenger:
    """Implements :class:`notifications.messenger.Messenger` for Telegram; holds an aiogram
    :class:`~aiogram.Bot` (never subclasses it) and renders with
    :func:`bots.telegram.render.render`, like the dialogue's messenger."""

    def __init__(self, bot: Bot, *, paid_broadcast: bool = False) -> None:
        self.bot = bot
        # broadcasts go with allow_paid_broadcast (see paid_broadcast_for); nothing else does
        self.paid_broadcast = paid_broadcast
        self._progress: OrderedDict[str, int] = OrderedDict()
        self._prepared: OrderedDict[OutgoingMessage, list[Prepared]] = OrderedDict()

    async def send(self, to: Address, msg: OutgoingMessage, *,
                   key: str | None = None) -> SendResult:
        if to.channel is not Channel.TELEGRAM:
            log.error("telegram outbox: %s is not a Telegram address", to)
            return SendResult.REJECTED
        try:
            chat_id = int(to.chat_id)
        except ValueError:
            log.error("telegram outbox: not a chat id: %r", to.chat_id)
            return SendResult.REJECTED
        calls = self._prepare(msg)
        paid = self.paid_broadcast and is_broadcast_key(key)
        done = self._progress.get(key, 0) if key is not None else 0
        for index, call in enumerate(calls):
            if index < done:
                continue  # went through on an earlier try of this message
            result = await self._call(chat_id, call, paid=paid)
            if result is SendResult.REJECTED and isinstance(call.call, SendPhoto):
                continue  # a refused photo is skipped; the text still matters
            if result is not SendResult.OK:
                return result
            if key is not None:
                self._remember(key, index + 1)
        if key is not None:
            self._progress.pop(key, None)
        return SendResult.OK

    @staticmethod
    def paid_broadcast_for(rate: float) -> bool:
        """Whether broadcasts at ``rate`` messages/s need ``allow_paid_broadcast``: above
        the free 30/s Telegram answers bulk messages without it with 429s."""
        return rate > FREE_RATE

    def _prepare(self, msg: OutgoingMessage) -> list[Prepared]:
        """The calls of ``msg`` for any chat, from the cache when it was sent lately."""
        try:
            found = self._prepared.get(msg)
        except TypeError:  # an unhashable field: render it afresh
            return self._render(msg)
        if found is None:
            found = self._prepared[msg] = self._render(msg)
            while len(self._prepared) > MAX_MESSAGES_PREPARED:
                self._prepared.popitem(last=False)
        else:
            self._prepared.move_to_end(msg)
        return found

    def _render(self, msg: OutgoingMessage) -> list[Prepared]:
        prepared = []
        for call in render(0, msg):
            rest = None
            params = json_params(self.bot, call)
            if params is not None:
                params.pop("chat_id", None)
                rest = json.dumps(params, ensure_ascii=False)[1:-1]
                rest = "," + rest if rest else ""
            prepared.append(Prepared(call, rest))
        return prepared

    async def _call(self, chat_id: int, prepared: Prepared, *, paid: bool = False) -> SendResult:
        """One Bot API call: OK, UNREACHABLE or REJECTED, or raise for the worker."""
        # a shallow copy: what errors are raised for, and what an upload sends
        call = prepared.for_chat(chat_id, paid=paid)
        method = type(call).__name__
        body = prepared.body(chat_id, paid=paid) if prepared.rest is not None else None
        try:
            await post_unparsed(self.bot, call, body)
        except TelegramRetryAfter as exc:
            raise RetryAfter(exc.retry_after, f"telegram: {exc.message}") from exc
        except TelegramForbiddenError as exc:
            log.info("telegram outbox: chat %s is unreachable: %s", chat_id, exc.message)
            return SendResult.UNREACHABLE
        except TelegramEntityTooLarge as exc:  # a network error by aiogram's hierarchy
            log.error("telegram outbox: %s to %s refused: %s", method, chat_id, exc.message)
            return SendResult.REJECTED
        except TelegramBadRequest as exc:
            if any(gone in exc.message.lower() for gone in GONE):
                log.info("telegram outbox: chat %s is gone: %s", chat_id, exc.message)
                return SendResult.UNREACHABLE
            log.error("telegram outbox: %s to %s refused: %s", method, chat_id, exc.message)
            return SendResult.REJECTED
        except TelegramNetworkError as exc:
            raise TransientError(f"telegram: {method}: {exc.message}") from exc
        except AiogramError as exc:  # 5xx, 401/404/409, an HTML page instead of JSON
            raise TransientError(f"telegram: {method}: {type(exc).__name__}: {exc}") from exc
        return SendResult.OK

    def _remember(self, key: str, done: int) -> None:
        self._progress[key] = done
        self._progress.move_to_end(key)
        while len(self._progress) > MAX_KEYS_REMEMBERED:
            self._progress.popitem(last=False)
