"""The sending side of the delivery worker: one message or one request to many chats,
and what its answer means for the outbox row (sent, unreachable, failed, or due again
after a backoff or the platform's flood wait)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dialogue.messages import OutgoingMessage
from domain.ports import OutboxMessage, OutboxStatus
from notifications.delivery_batch import Outcome, batch_key, pinned, pinned_key
from notifications.messenger import Messenger, RetryAfter, SendResult, TransientError
from notifications.outbox import address_of

log = logging.getLogger("notifications.delivery")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with "equal jitter": attempt ``n`` waits between half and all
    of ``min(cap, base * factor ** (n - 1))`` seconds, so retries of many messages that
    failed together (a 5xx storm) spread out instead of returning in one wave."""

    base: float = 5.0
    factor: float = 2.0
    cap: float = 3600.0

    def delay(self, attempt: int, jitter: float) -> float:
        """Seconds before retry number ``attempt`` (1-based); ``jitter`` is in [0, 1)."""
        step = min(self.cap, self.base * self.factor ** max(0, attempt - 1))
        return step / 2 + step / 2 * jitter


class Sending:
    """Mixed into :class:`~notifications.delivery.DeliveryWorker`, which sets these."""

    channel: str
    messenger: Messenger
    limiter: Any
    clock: Callable[[], datetime]
    jitter: Callable[[], float]
    backoff: Backoff
    max_attempts: int

    def _record(self, *outcomes: Outcome) -> None:
        raise NotImplementedError

    async def deliver(self, message: OutboxMessage, token: str) -> None:
        """Send one claimed message and record the outcome (marked at the next flush)."""
        assert message.id is not None
        try:
            result = await self.messenger.send(
                address_of(message), OutgoingMessage.from_json(message.payload),
                key=message.dedup_key)
        except Exception as exc:
            self._record(await self._failed(message, token, exc))
        else:
            self._record(self._outcome(message, token, result))

    async def _deliver_many(self, unit: list[OutboxMessage], token: str) -> None:
        """One request to many chats: the same message to each (a broadcast on VK)."""
        send_many = self.messenger.send_many  # type: ignore[attr-defined]
        key = batch_key(unit)
        try:
            results = await send_many([address_of(m) for m in unit],
                                      OutgoingMessage.from_json(unit[0].payload), key=key)
        except Exception as exc:
            outcomes = [await self._failed(m, token, exc, pause=index == 0)
                        for index, m in enumerate(unit)]
            # the platform may have applied it (flood control says it did not): the rows
            # keep this request's key (delivery_batch), and come due together
            pin = not isinstance(exc, RetryAfter) or pinned_key(unit[0]) is not None
            due = max((o.not_before for o in outcomes if o.not_before), default=None)
            for o in outcomes:
                if o.status is None and o.not_before is not None:
                    o.not_before = due
                    o.error = pinned(o.error, key) if pin else o.error
            self._record(*outcomes)
        else:
            self._record(*(self._outcome(m, token, r) for m, r in zip(unit, results,
                                                                       strict=True)))

    def _outcome(self, message: OutboxMessage, token: str, result: SendResult) -> Outcome:
        if result is SendResult.UNREACHABLE:
            log.info("%s: citizen %s is unreachable", self.channel, message.citizen_id)
            return Outcome(message, token, OutboxStatus.UNREACHABLE)
        if result is SendResult.REJECTED:
            # a bad request stays bad: retrying it would only fail again until
            # max_attempts, hiding the bug behind hours of backoff
            log.warning("%s: message %s rejected by the platform; not retried",
                        self.channel, message.id)
            return Outcome(message, token, OutboxStatus.FAILED,
                           error="rejected by the platform")
        return Outcome(message, token, OutboxStatus.SENT)

    async def _failed(self, message: OutboxMessage, token: str, exc: Exception, *,
                      pause: bool = True) -> Outcome:
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, RetryAfter):
            if pause:
                log.warning("%s: flood control, retry after %s s", self.channel, exc.seconds)
                if self.limiter is not None:
                    paused = self.limiter.pause(exc.seconds)
                    if inspect.isawaitable(paused):
                        await paused
            return Outcome(message, token, not_before=self.clock()
                           + timedelta(seconds=exc.seconds), error=str(exc))
        if isinstance(exc, TransientError):
            log.info("%s: message %s not sent: %s", self.channel, message.id, exc)
        else:
            log.error("%s: messenger failed on message %s", self.channel, message.id,
                      exc_info=exc)
        if message.attempts >= self.max_attempts:
            return Outcome(message, token, OutboxStatus.FAILED, error=error)
        delay = self.backoff.delay(message.attempts, self.jitter())
        return Outcome(message, token, not_before=self.clock() + timedelta(seconds=delay),
                       error=error)
