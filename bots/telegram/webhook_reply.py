"""A Bot API call carried by the answer to a webhook request.

Telegram lets a bot answer a webhook update with one method call instead of a bare 200:
the response body (JSON) names the method in ``method`` and carries its parameters, and
Telegram makes the call ("Making requests when getting updates" in the Bot API docs). Its
result is never known, so only a call whose failure costs nothing goes this way: the
answer to a button press (``answerCallbackQuery``), which only stops the spinner on the
citizen's button. In webhook mode that is one HTTP request to Telegram fewer for every
press (:mod:`bots.telegram.webhook` answers the update once it is settled, a few
milliseconds after the press was read). A step still running after :data:`CARRY_WAIT`
seconds (a slow classifier, a database under load) takes its call back and makes it
itself, so the spinner never waits on a slow step for longer than that.

The webhook route opens a :class:`WebhookReply` for each update it hands to the dispatcher;
a handler offers its call with :func:`carry` and makes the call itself when that returns
``None`` (polling, a second call, or the route has answered already).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from aiogram import Bot
from aiogram.methods import TelegramMethod
from aiohttp import web

from .session import json_params

#: Seconds a handler leaves its call in the webhook answer; after that it withdraws it and
#: makes the call itself (see :meth:`WebhookReply.withdraw`).
CARRY_WAIT = 1.0

_CURRENT: ContextVar[WebhookReply | None] = ContextVar("tsur_webhook_reply", default=None)


class WebhookReply:
    """The answer to one webhook request: ``ok``, or at most one method call."""

    def __init__(self) -> None:
        self.params: dict[str, Any] | None = None
        self.closed = False

    def offer(self, bot: Bot, method: TelegramMethod[Any]) -> bool:
        if self.closed or self.params is not None:
            return False
        params = json_params(bot, method)
        if params is None:  # an upload, or a bot not on tsur's session
            return False
        self.params = {"method": method.__api_method__, **params}
        return True

    def withdraw(self) -> bool:
        """Take the offered call back, if the answer has not been sent yet: ``True`` if the
        caller must now make it itself, ``False`` if it has gone with the answer."""
        if self.closed or self.params is None:
            return False
        self.params = None
        return True

    def response(self) -> web.Response:
        """The answer to send (the call, if one was offered); nothing can be offered after."""
        self.closed = True
        if self.params is None:
            return web.Response(text="ok")
        return web.json_response(self.params)

    def close(self) -> None:
        """Answered otherwise (an error status): an offered call is dropped."""
        self.closed = True


@contextmanager
def opened_reply() -> Iterator[WebhookReply]:
    """A reply for the update about to be handled, current inside the block: a task
    created there (its context a copy) sees it, the caller's context after does not."""
    reply = WebhookReply()
    token = _CURRENT.set(reply)
    try:
        yield reply
    finally:
        _CURRENT.reset(token)


def carry(bot: Bot, method: TelegramMethod[Any]) -> WebhookReply | None:
    """Offer ``method`` to the webhook answer of the update being handled: the answer it
    went into (Telegram makes the call, unless the caller withdraws it), or ``None`` if the
    caller must make it."""
    reply = _CURRENT.get()
    return reply if reply is not None and reply.offer(bot, method) else None
