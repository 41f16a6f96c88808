"""Delivery workers: claim due outbox rows of one channel, send them, mark the outcome.

Never inside a transaction: claim (commit) → send → mark (commit). A claim is a lease; a
worker that dies mid-batch leaves its rows to be claimed again when the lease ends, so
at most the messages that were in flight are sent twice, and none is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.ports import OutboxMessage, OutboxStatus, UnitOfWork
from notifications.messenger import Messenger, RetryAfter, SendResult, TransientError
from notifications.outbox import address_of, message_of
from notifications.ratelimit import RateLimiter

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


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


def round_robin(batch: list[OutboxMessage]) -> list[OutboxMessage]:
    """The batch with each chat's messages spread out: within a priority, every chat's
    first message, then every chat's second, and so on. Each chat keeps its own order, but
    a chat waiting out its per-chat pace no longer holds the other chats back."""
    nth: dict[str, int] = {}
    keyed = []
    for index, message in enumerate(batch):
        keyed.append((-message.priority, nth.get(message.chat_id, 0), index, message))
        nth[message.chat_id] = nth.get(message.chat_id, 0) + 1
    return [message for *_, message in sorted(keyed, key=lambda k: k[:3])]


class DeliveryWorker:
    """Delivers one channel's outbox through its :class:`Messenger`.

    Several workers (in one process or many) may serve the same channel; those in one
    process should share the channel's :class:`RateLimiter`. ``clock`` and ``sleep`` are
    injected so tests run without waiting; ``jitter`` returns floats in [0, 1).
    """

    def __init__(self, uow_factory: Callable[[], UnitOfWork], channel: str,
                 messenger: Messenger, *, limiter: RateLimiter | None = None,
                 clock: Callable[[], datetime] = utc_now,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 jitter: Callable[[], float] = random.random,
                 backoff: Backoff = Backoff(), max_attempts: int = 10,
                 batch_size: int = 20, lease: timedelta = timedelta(minutes=2),
                 idle_seconds: float = 1.0) -> None:
        self.uow_factory = uow_factory
        self.channel = str(channel)
        self.messenger = messenger
        self.limiter = limiter
        self.clock = clock
        self.sleep = sleep
        self.jitter = jitter
        self.backoff = backoff
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self.lease = lease
        self.idle_seconds = idle_seconds
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._gone: set[int] = set()  # citizens found unreachable in the current batch

    # --- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Deliver until :meth:`stop`; between batches wait ``idle_seconds`` or a wake-up."""
        log.info("outbox worker for %s started", self.channel)
        while not self._stop.is_set():
            try:
                done = await self.run_once()
            except Exception:  # the database went away, say: keep the worker alive
                log.exception("outbox worker for %s failed; retrying", self.channel)
                done = 0
            if done == 0 and not self._stop.is_set():
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.idle_seconds)
        log.info("outbox worker for %s stopped", self.channel)

    def stop(self) -> None:
        """Finish the message being sent, give the rest of the batch back, and return."""
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Look for due messages now instead of after the idle wait."""
        self._wake.set()

    async def run_once(self) -> int:
        """Claim one batch and deliver it; returns how many messages were claimed."""
        token = uuid.uuid4().hex
        claimed_at = self.clock()
        async with self.uow_factory() as uow:
            batch = await uow.outbox.claim(self.channel, claimed_at, limit=self.batch_size,
                                           lease=self.lease, token=token)
            await uow.commit()
        batch = round_robin(batch)
        # leave a margin so a message is never sent after its lease has run out
        deadline = claimed_at + self.lease * 0.75
        self._gone = set()
        for index, message in enumerate(batch):
            if message.citizen_id is not None and message.citizen_id in self._gone:
                # claimed with the message that found them gone: never try them again
                await self._finish(message, token, OutboxStatus.UNREACHABLE)
                continue
            wait = self.limiter.reserve(message.chat_id) if self.limiter else 0.0
            if inspect.isawaitable(wait):  # a limiter shared through Redis books remotely
                wait = await wait
            late = self.clock() + timedelta(seconds=wait) > deadline
            if self._stop.is_set() or late:
                await self._release(batch[index:], token)
                break
            if wait > 0:
                await self.sleep(wait)
            await self.deliver(message, token)
        return len(batch)

    # --- one message ------------------------------------------------------------------------
    async def deliver(self, message: OutboxMessage, token: str) -> None:
        """Send one claimed message and record the outcome."""
        assert message.id is not None
        try:
            result = await self.messenger.send(address_of(message), message_of(message.payload),
                                               key=message.dedup_key)
        except RetryAfter as exc:
            if self.limiter is not None:
                paused = self.limiter.pause(exc.seconds)
                if inspect.isawaitable(paused):
                    await paused
            log.warning("%s: flood control, retry after %s s", self.channel, exc.seconds)
            await self._reschedule(message, token, self.clock()
                                   + timedelta(seconds=exc.seconds), str(exc))
        except Exception as exc:
            if isinstance(exc, TransientError):
                log.info("%s: message %s not sent: %s", self.channel, message.id, exc)
            else:
                log.exception("%s: messenger failed on message %s", self.channel, message.id)
            error = f"{type(exc).__name__}: {exc}"
            if message.attempts >= self.max_attempts:
                await self._finish(message, token, OutboxStatus.FAILED, error)
            else:
                delay = self.backoff.delay(message.attempts, self.jitter())
                await self._reschedule(message, token,
                                       self.clock() + timedelta(seconds=delay), error)
        else:
            if result is SendResult.UNREACHABLE:
                await self._unreachable(message, token)
            elif result is SendResult.REJECTED:
                # a bad request stays bad: retrying it would only fail again until
                # max_attempts, hiding the bug behind hours of backoff
                log.warning("%s: message %s rejected by the platform; not retried",
                            self.channel, message.id)
                await self._finish(message, token, OutboxStatus.FAILED,
                                   "rejected by the platform")
            else:
                await self._finish(message, token, OutboxStatus.SENT)

    async def _finish(self, message: OutboxMessage, token: str, status: OutboxStatus,
                      error: str = "") -> None:
        assert message.id is not None
        async with self.uow_factory() as uow:
            if not await uow.outbox.finish(message.id, token, status, now=self.clock(),
                                           error=error):
                log.warning("%s: lost the claim on message %s", self.channel, message.id)
            await uow.commit()

    async def _reschedule(self, message: OutboxMessage, token: str, not_before: datetime,
                          error: str) -> None:
        assert message.id is not None
        async with self.uow_factory() as uow:
            await uow.outbox.reschedule(message.id, token, not_before=not_before, error=error)
            await uow.commit()

    async def _release(self, messages: list[OutboxMessage], token: str) -> None:
        async with self.uow_factory() as uow:
            await uow.outbox.release([m.id for m in messages if m.id is not None], token)
            await uow.commit()

    async def _unreachable(self, message: OutboxMessage, token: str) -> None:
        """The citizen blocked the bot: mark them, and drop what else waits for them."""
        assert message.id is not None
        now = self.clock()
        async with self.uow_factory() as uow:
            await uow.outbox.finish(message.id, token, OutboxStatus.UNREACHABLE, now=now)
            if message.citizen_id is not None:
                self._gone.add(message.citizen_id)
                citizen = await uow.citizens.get(message.citizen_id)
                if citizen is not None and citizen.reachable:
                    citizen.reachable = False
                    await uow.citizens.save(citizen)
                await uow.outbox.drop_pending_for(message.citizen_id,
                                                  OutboxStatus.UNREACHABLE, now=now)
            await uow.commit()
        log.info("%s: citizen %s is unreachable", self.channel, message.citizen_id)
