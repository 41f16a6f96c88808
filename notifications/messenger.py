"""What a delivery worker needs from a channel: the ``Messenger`` protocol and its outcomes.

One implementation per channel (``TelegramMessenger``, ``VkMessenger``, the web chat's)
holds the platform client and translates its answers into these outcomes:

- return :attr:`SendResult.OK` — delivered;
- return :attr:`SendResult.UNREACHABLE` — the citizen blocked the bot or does not allow
  messages (Telegram 403, VK 901/902): the worker marks them unreachable and stops;
- raise :class:`RetryAfter` — flood control (Telegram 429 ``retry_after``, VK error 6):
  the worker holds the whole channel back for that long and retries the message;
- return :attr:`SendResult.REJECTED` — the platform refused this message for good (a bad
  request: malformed text or keyboard, too long): retrying cannot help, so the worker marks
  the row failed at once; the messenger logs the platform's reason;
- raise :class:`TransientError` — 5xx, timeouts, connection errors: retried with backoff.

``key`` names the logical message (the worker passes the outbox row's ``dedup_key``): a
platform with an idempotency key (VK's ``random_id``) derives it from ``key``, so sending
the same row again after a crash or a lost reply never shows it twice. Messengers of
platforms without one may ignore it.

Anything else a messenger raises is treated as transient and logged with its traceback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Protocol

from dialogue.messages import Address, OutgoingMessage


class SendResult(StrEnum):
    OK = "ok"
    UNREACHABLE = "unreachable"
    REJECTED = "rejected"


class TransientError(Exception):
    """Sending failed for a reason that may pass (5xx, timeout, client offline)."""


class RetryAfter(TransientError):
    """The platform asked us to wait ``seconds`` before sending anything again."""

    def __init__(self, seconds: float, message: str = "") -> None:
        super().__init__(message or f"retry after {seconds:g} s")
        self.seconds = max(0.0, float(seconds))


class Messenger(Protocol):
    async def send(self, to: Address, msg: OutgoingMessage, *,
                   key: str | None = None) -> SendResult:
        """Deliver ``msg`` to ``to``; see the module docstring for the outcomes."""
        ...


class OnlineOnlyMessenger:
    """Adapts a messenger whose ``send`` returns ``bool`` (``False``: the client is not
    connected now, as with the web chat's ``WebMessenger``) to :class:`Messenger`: a
    ``False`` becomes a :class:`TransientError`, so the outbox tries again later."""

    def __init__(self, send: Callable[[Address, OutgoingMessage], Awaitable[bool]]) -> None:
        self._send = send

    async def send(self, to: Address, msg: OutgoingMessage, *,
                   key: str | None = None) -> SendResult:
        if not await self._send(to, msg):
            raise TransientError(f"{to} is not connected")
        return SendResult.OK
