"""Delivering messages to Telegram citizens (replies and, later, the outbox)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import SendPhoto, TelegramMethod

from dialogue.messages import Address, Channel, OutgoingMessage

from .render import render
from .session import json_body, post_unparsed

log = logging.getLogger(__name__)
T = TypeVar("T")


class TelegramMessenger:
    """The Telegram ``Messenger``: holds an aiogram :class:`~aiogram.Bot`, never subclasses it.

    aiogram neither paces nor retries, so this does: a 429 waits the ``retry_after`` it was
    given, a network or server error waits a short, growing delay; after ``attempts``
    tries the message counts as not delivered. A send may in rare cases be duplicated
    (the request went through but its reply was lost); Telegram has no idempotency key.

    On a :class:`~bots.telegram.session.TsurSession` (what ``make_bot`` gives) the calls of
    :meth:`send` go as JSON by :func:`~bots.telegram.session.post_unparsed`: nobody reads
    the ``Message`` Telegram answers with, so it is not parsed into aiogram's types
    (errors still raise as aiogram raises them).

    :param max_retry_after: a 429 asking to wait longer than this (seconds) is not waited
        for here: the send fails and the outbox tries again later.
    """

    def __init__(self, bot: Bot, *, attempts: int = 4, base_delay: float = 0.5,
                 max_retry_after: float = 30.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.bot = bot
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_retry_after = max_retry_after
        self._sleep = sleep

    async def send(self, to: Address, msg: OutgoingMessage, *,
                   language: str | None = None) -> bool:
        """Show ``msg`` in the chat ``to``.

        :param language: for the few words the adapter adds itself (the location button).
        :returns: ``True`` if every text part was delivered; ``False`` if ``to`` is not a
            Telegram address, the user blocked the bot (403), the chat does not exist, or
            retries ran out. A photo Telegram refuses is logged and skipped.
        """
        if to.channel is not Channel.TELEGRAM:
            return False
        try:
            chat_id = int(to.chat_id)
        except ValueError:
            log.warning("telegram: not a chat id: %r", to.chat_id)
            return False
        for call in render(chat_id, msg, language=language):
            try:
                await self.post(call)
            except TelegramForbiddenError as exc:
                log.info("telegram: chat %s is unreachable (blocked the bot?): %s",
                         chat_id, exc.message)
                return False
            except TelegramBadRequest as exc:
                if isinstance(call, SendPhoto):
                    log.warning("telegram: photo %s refused in chat %s: %s",
                                call.photo, chat_id, exc.message)
                    continue
                log.error("telegram: message refused in chat %s: %s", chat_id, exc.message)
                return False
            except (TelegramRetryAfter, TelegramNetworkError, TelegramServerError) as exc:
                log.warning("telegram: giving up on chat %s for now: %s", chat_id, exc)
                return False
        return True

    async def call(self, method: TelegramMethod[T]) -> T:
        """Make one Bot API call, retrying flood waits and transient failures."""
        return await self._retrying(method, self.bot)

    async def post(self, method: TelegramMethod[Any]) -> None:
        """:meth:`call` for a caller that does not read the answer: on a
        :class:`TsurSession` the parameters go as JSON (built once for every try) and the
        answer is checked, not parsed into aiogram's types (an upload still goes aiogram's
        way); see :func:`~bots.telegram.session.post_unparsed`."""
        body = json_body(self.bot, method)
        await self._retrying(method, lambda m: post_unparsed(self.bot, m, body))

    async def _retrying(self, method: TelegramMethod[T],
                        make: Callable[[TelegramMethod[T]], Awaitable[T]]) -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return await make(method)
            except TelegramEntityTooLarge:
                raise  # no retry makes a file smaller
            except TelegramRetryAfter as exc:
                if attempt == self.attempts or exc.retry_after > self.max_retry_after:
                    raise
                log.info("telegram: flood wait %ss on %s", exc.retry_after,
                         type(method).__name__)
                await self._sleep(exc.retry_after)
            except (TelegramNetworkError, TelegramServerError) as exc:
                if attempt == self.attempts:
                    raise
                delay = self.base_delay * 2 ** (attempt - 1)
                log.info("telegram: %s failed (%s); retrying in %.1fs",
                         type(method).__name__, exc, delay)
                await self._sleep(delay)
        raise AssertionError("unreachable")
