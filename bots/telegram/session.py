"""aiogram's HTTP session, with the per-request costs that do not depend on the request
taken out.

aiogram's ``check_response`` spells the response model as ``Response[T]`` for every
reply Telegram sends; pydantic answers that from a cache, but the cache key hashes the
typing form of ``T`` (a union of a dozen message types for most methods), which cost
more CPU than the validation itself. :class:`TsurSession` keeps one model per returned
type, and sends parameters as one JSON body (which the Bot API accepts) rather than
aiogram's form fields, each encoded on its own and then assembled — a request that
uploads a file still goes aiogram's way. Anything but a successful answer goes to
aiogram's own ``check_response``, so errors (flood waits, 403 from a citizen who blocked
the bot…) are raised exactly as aiogram raises them.

``getUpdates`` hands out again every update not yet confirmed, and the confirming poller
(:mod:`bots.telegram.polling`) confirms late on purpose, so while updates are in flight
most of a batch is updates it already runs. Within :func:`skip_updates_through` the
session drops those from the JSON before pydantic builds objects of them.

Callers that do not read Telegram's answer (the dialogue's replies, the outbox) build a
call's JSON body once — :func:`json_body`, or :func:`json_params` for the outbox, which
puts each chat's id into one body of a broadcast — and :func:`post_unparsed` posts it by
:meth:`TsurSession.post_json`: Telegram's ``result`` comes back as plain JSON, no aiogram
objects are built of the request or the answer (errors still raise exactly as aiogram
raises them), and the session's middlewares, which tsur does not use, are skipped. A call
without a body (an upload, another session) goes aiogram's way. :meth:`make_request`
builds its body the same way but parses the answer: aiogram's callers read it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Awaitable, Iterator
from typing import TYPE_CHECKING, Any, cast

from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import ClientDecodeError, TelegramNetworkError
from aiogram.methods import GetUpdates, Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiohttp import ClientError
from pydantic import ValidationError

if TYPE_CHECKING:
    from aiogram import Bot

_taken_through: contextvars.ContextVar[int] = contextvars.ContextVar(
    "tsur_updates_taken_through", default=0)


@contextlib.contextmanager
def skip_updates_through(update_id: int) -> Iterator[None]:
    """Within it, ``getUpdates`` answers leave out updates with ids ≤ ``update_id``."""
    token = _taken_through.set(update_id)
    try:
        yield
    finally:
        _taken_through.reset(token)


class TsurSession(AiohttpSession):
    """An :class:`AiohttpSession` that parses successful answers more cheaply."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._response_types: dict[type, type[Response[Any]]] = {}  # by method class

    def _response_type(self, method: TelegramMethod[Any]) -> type[Response[Any]]:
        found = self._response_types.get(type(method))
        if found is None:
            found = Response[method.__returning__]  # type: ignore[name-defined]
            self._response_types[type(method)] = found
        return found

    def json_params(self, bot: Bot, method: TelegramMethod[Any]) -> dict[str, Any] | None:
        """``method``'s parameters as one JSON object, as :meth:`make_request` sends them;
        ``None`` if the call uploads a file (that goes as a multipart form)."""
        files: dict[str, Any] = {}
        params: dict[str, Any] = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is not None:
                params[key] = prepared
        return None if files else params

    async def make_request(self, bot: Bot, method: TelegramMethod[TelegramType],
                           timeout: int | None = None) -> TelegramType:
        params = self.json_params(bot, method)
        if params is None:  # an upload: multipart form, as aiogram builds it
            # (super(), not post_unparsed's bot(method): that would come back here)
            return await super().make_request(bot, method, timeout)
        status, content = await self._post(bot, method, self.json_dumps(params), timeout)
        response = self.check_response(bot=bot, method=method, status_code=status,
                                       content=content)
        return cast(TelegramType, response.result)

    async def post_json(self, bot: Bot, method: TelegramMethod[Any], body: str | bytes,
                        timeout: int | None = None) -> Any:
        """Post ``body`` — ``method``'s parameters as JSON, built by the caller — and return
        Telegram's ``result`` as plain JSON, not validated into aiogram's types. Anything
        but a successful answer raises as :meth:`make_request` would for ``method``."""
        status, content = await self._post(bot, method, body, timeout)
        try:
            data = self.json_loads(content)
        except Exception:
            data = None
        if 200 <= status < 300 and isinstance(data, dict) and data.get("ok"):
            return data.get("result")
        return super().check_response(bot, method, status, content).result  # raises

    async def _post(self, bot: Bot, method: TelegramMethod[Any], body: str | bytes,
                    timeout: int | None) -> tuple[int, str]:
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            async with session.post(
                    url, data=body, headers={"Content-Type": "application/json"},
                    timeout=self.timeout if timeout is None else timeout) as resp:
                return resp.status, await resp.text()
        except TimeoutError as exc:
            raise TelegramNetworkError(method=method, message="Request timeout error") from exc
        except ClientError as exc:
            raise TelegramNetworkError(method=method,
                                       message=f"{type(exc).__name__}: {exc}") from exc

    def check_response(self, bot: Bot, method: TelegramMethod[TelegramType],
                       status_code: int, content: str) -> Response[TelegramType]:
        try:
            data = self.json_loads(content)
        except Exception:  # aiogram raises its own error for it
            return super().check_response(bot, method, status_code, content)
        if not (200 <= status_code < 300 and isinstance(data, dict) and data.get("ok")):
            return super().check_response(bot, method, status_code, content)
        through = _taken_through.get()
        if through and isinstance(method, GetUpdates) and isinstance(data.get("result"), list):
            data["result"] = [u for u in data["result"]
                              if not (isinstance(u, dict)
                                      and isinstance(u.get("update_id"), int)
                                      and u["update_id"] <= through)]
        try:
            return self._response_type(method).model_validate(
                data, context={"bot": bot})
        except ValidationError as exc:
            raise ClientDecodeError("Failed to deserialize object", exc, data) from exc


def json_params(bot: Bot, method: TelegramMethod[Any]) -> dict[str, Any] | None:
    """``method``'s parameters for :func:`post_unparsed` (see
    :meth:`TsurSession.json_params`); ``None`` if they cannot go as JSON: an upload, or
    ``bot`` not on a :class:`TsurSession`."""
    session = bot.session
    return session.json_params(bot, method) if isinstance(session, TsurSession) else None


def json_body(bot: Bot, method: TelegramMethod[Any]) -> str | None:
    """:func:`json_params` as the JSON body :func:`post_unparsed` posts, or ``None``."""
    params = json_params(bot, method)
    return None if params is None else bot.session.json_dumps(params)


def post_unparsed(bot: Bot, method: TelegramMethod[Any], body: str | None) -> Awaitable[Any]:
    """Make the call ``method`` for a caller that does not read the answer: ``body`` (its
    parameters as JSON, built by :func:`json_body` or from :func:`json_params`) posted
    by :meth:`TsurSession.post_json`, the answer checked, not parsed; without a body,
    aiogram's own ``bot(method)``. Errors raise as aiogram raises them for ``method``.

    Not a coroutine function: it hands back the call's own awaitable, so the hot paths
    (a broadcast's every chat) pay no extra coroutine for it."""
    if body is None:
        return bot(method)
    return cast(TsurSession, bot.session).post_json(bot, method, body)
