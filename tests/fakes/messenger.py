"""A recording ``Messenger`` with scriptable failures, and a clock for delivery workers.

``FakeMessenger.sent`` lists every delivered (address, message); ``fail(chat_id, *outcomes)``
queues what the next sends to that chat do instead: an exception instance is raised
(``TransientError``, ``RetryAfter``), ``SendResult.UNREACHABLE`` or ``REJECTED`` is
returned. Every attempt, failed or not, is in ``attempts``, and the ``key`` it came with
in ``keys``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from dialogue.messages import Address, OutgoingMessage
from notifications.messenger import SendResult

Outcome = BaseException | SendResult


class FakeMessenger:
    def __init__(self) -> None:
        self.sent: list[tuple[Address, OutgoingMessage]] = []
        self.attempts: list[Address] = []
        self.keys: list[str | None] = []
        self._script: dict[str, list[Outcome]] = {}
        self.before_send: Callable[[Address], Awaitable[None]] | None = None

    def fail(self, chat_id: str, *outcomes: Outcome) -> None:
        """The next sends to ``chat_id`` raise or return these, in order."""
        self._script.setdefault(chat_id, []).extend(outcomes)

    def blocked_by(self, chat_id: str) -> None:
        """From now on ``chat_id`` has blocked the bot."""
        self._script[chat_id] = [SendResult.UNREACHABLE] * 1_000

    async def send(self, to: Address, msg: OutgoingMessage, *,
                   key: str | None = None) -> SendResult:
        self.attempts.append(to)
        self.keys.append(key)
        if self.before_send is not None:
            await self.before_send(to)
        script = self._script.get(to.chat_id)
        if script:
            outcome = script.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            if outcome is not SendResult.OK:
                return outcome
        self.sent.append((to, msg))
        return SendResult.OK

    def texts(self, chat_id: str | None = None) -> list[str]:
        return [m.text for a, m in self.sent if chat_id is None or a.chat_id == chat_id]


class FakeClock:
    """Wall time for the worker (``now()``), monotonic time for the rate limiter
    (``monotonic()``) and a ``sleep`` that advances both instead of waiting."""

    def __init__(self, start: datetime = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)) -> None:
        self.start = start
        self.elapsed = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return self.elapsed

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)
