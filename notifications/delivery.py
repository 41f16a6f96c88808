"""Delivery workers: claim due outbox rows of one channel, send them, mark the outcome.

Never inside a transaction: claim (commit) → send → mark (commit). A claim is a lease; a
worker that dies mid-batch leaves its rows to be claimed again when the lease ends, so
at most the messages that were in flight (claimed, sent, not yet marked) are sent twice,
and none is lost.

Throughput (for the kinds in ``batch_kinds``, broadcasts; every other message is sent on
its own and marked at once, so a crash re-sends at most that one) comes from three things,
none of which loosens the pacing: sends run
concurrently (up to ``window`` requests in flight; the limiter still books every slot, in
order, and an optional :class:`~notifications.ratelimit.SendWindow` keeps the platform's
window even when sends are delayed on the way); outcomes are marked in batches (one
``UPDATE … WHERE id IN (…)`` per outcome, every ``flush_seconds`` or ``flush_size``
outcomes); and :meth:`DeliveryWorker.run` claims the next batch while the current one is
still being sent. Messages of the kinds in ``batch_kinds`` (broadcasts) go through a
messenger's ``send_many`` when it has one (VK: up to 100 ``peer_ids`` per
``messages.send``, one request of the rate limit). Each such request's key is written to
its rows by the claim that takes them, before it is sent
(:func:`~notifications.delivery_batch.request_pins`), so rows sent and never marked (the
worker died) are retried under that key however a later claim groups them, and VK,
which drops a repeated ``random_id`` per recipient, shows nobody the broadcast twice.

Order per chat: messages to one chat are sent one after the other, in claim order; when one
is given back to be retried, the rest of the batch to that chat is given back too, and the
outbox claims nothing more for that chat until the retried one is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from domain.ports import OutboxMessage, OutboxStatus, UnitOfWork
from notifications.delivery_batch import (
    Outcome,
    as_request,
    flush_outcomes,
    group_units,
    request_pins,
    round_robin,
)
from notifications.delivery_send import Backoff, Sending
from notifications.messenger import Messenger
from notifications.ratelimit import RateLimiter, SendWindow, Slot

__all__ = ["Backoff", "DeliveryWorker", "round_robin", "utc_now"]

log = logging.getLogger(__name__)
DEFAULT_BACKOFF = Backoff()
YIELD_EVERY = 8  # broadcast sends dispatched in a row, at most, before the loop gets a turn


def utc_now() -> datetime:
    return datetime.now(UTC)


# The last quarter of a claim's lease starts no send: one started just before has that
# long to end, so its platform client must give up within it (send_timeout).
SEND_MARGIN = 0.25


def send_timeout(lease: timedelta) -> float:
    """Seconds an outbox worker's platform client may wait for one request: a send started
    just before the lease's margin then ends (or fails) while the claim still holds its
    message, so no other claim sends it meanwhile."""
    return lease.total_seconds() * SEND_MARGIN * 0.8


class DeliveryWorker(Sending):
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
                 backoff: Backoff = DEFAULT_BACKOFF, max_attempts: int = 10,
                 batch_size: int = 100, lease: timedelta = timedelta(minutes=2),
                 idle_seconds: float = 1.0, window: int = 64, flush_seconds: float = 0.1,
                 flush_size: int = 500, batch_kinds: Iterable[str] = ("broadcast",),
                 max_peers: int = 100, send_window: SendWindow | None = None) -> None:
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
        self.flush_seconds = flush_seconds
        self.flush_size = flush_size
        self.batch_kinds = frozenset(batch_kinds)
        self.max_peers = max_peers
        self.send_window = send_window
        self._window = asyncio.Semaphore(max(1, window))
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._flush_now = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._outcomes: list[Outcome] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: dict[str, asyncio.Task[None]] = {}  # chat → its latest send task
        self._held: set[tuple[str, str]] = set()  # (claim token, chat) given back to retry
        self._gone: set[int] = set()  # citizens found unreachable since the last idle spell

    # --- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Deliver until :meth:`stop`; between batches wait ``idle_seconds`` or a wake-up.
        The next batch is claimed while the last quarter of the current one is sent."""
        log.info("outbox worker for %s started", self.channel)
        flusher = asyncio.create_task(self._flush_loop())
        prefetch: asyncio.Task[tuple[list[list[OutboxMessage]], str, datetime]] | None = None

        def claim_next() -> None:
            nonlocal prefetch
            if prefetch is None and not self._stop.is_set():
                prefetch = asyncio.create_task(self._claim())

        try:
            while not self._stop.is_set():
                try:
                    task, prefetch = prefetch, None
                    units, token, claimed_at = await (task if task else self._claim())
                    full = sum(map(len, units)) >= self._claim_limit()
                    if units:
                        await self._dispatch(units, token, claimed_at,
                                             on_low=claim_next if full else None)
                except Exception:  # the database went away, say: keep the worker alive
                    log.exception("outbox worker for %s failed; retrying", self.channel)
                    units = []
                if not units and not self._stop.is_set():
                    await self._idle()
            if prefetch is not None:  # stopped while claiming: give that batch back
                with contextlib.suppress(Exception):
                    units, token, _ = await prefetch
                    self._record(*(Outcome(m, token) for u in units for m in u))
        finally:
            await self._drain()
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            with contextlib.suppress(Exception):
                await self.flush()
        log.info("outbox worker for %s stopped", self.channel)

    def stop(self) -> None:
        """Finish the sends in flight, give the rest of the batch back, and return."""
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Look for due messages now instead of after the idle wait."""
        self._wake.set()

    async def run_once(self) -> int:
        """Claim one batch, deliver it and mark it; returns how many were claimed."""
        units, token, claimed_at = await self._claim()
        try:
            if units:
                await self._dispatch(units, token, claimed_at)
            await self._drain()
        finally:
            await self.flush()
        self._held = {held for held in self._held if held[0] != token}
        return sum(map(len, units))

    async def flush(self) -> None:
        """Mark every outcome collected so far, in one transaction."""
        async with self._flush_lock:
            outcomes, self._outcomes = self._outcomes, []
            if not outcomes:
                return
            try:
                async with self.uow_factory() as uow:
                    await flush_outcomes(uow, outcomes, self.clock(), self.channel)
                    await uow.commit()
            except BaseException:
                self._outcomes[:0] = outcomes  # keep them for the next flush
                raise

    # --- claiming and dispatching -----------------------------------------------------------
    def _claim_limit(self) -> int:
        """``batch_size``, but at most what the limiter lets out in half a lease, so
        nothing claimed waits until its lease runs out.

        Not more where broadcasts go ``max_peers`` to a request (VK): a claim runs on the
        event loop (SQLite statements run inline), so it holds the sends up while it
        builds its rows. Claims of 500 rows took 15–40 ms on a loaded test machine, within
        the 50 ms between two of VK's requests at 20/s; claims of 2,000 took 50–150 ms and
        each cost a request's slot or two."""
        per_request = self.max_peers if hasattr(self.messenger, "send_many") else 1
        wanted = self.batch_size
        rate = getattr(getattr(self.limiter, "limit", None), "per_second", None)
        if not rate:
            return wanted
        fits = int(rate * self.lease.total_seconds() / 2) * per_request
        return max(1, min(wanted, fits))

    def _grouped_kinds(self) -> frozenset[str]:
        """The kinds sent as requests to many chats: none without ``send_many``."""
        return self.batch_kinds if hasattr(self.messenger, "send_many") else frozenset()

    async def _claim(self) -> tuple[list[list[OutboxMessage]], str, datetime]:
        """Claim a batch and cut it into units of sending; the key of each request to
        many chats is pinned to its rows by the claim's own UPDATE (delivery_batch), so
        the rows of a request sent and never marked (the worker died) are retried under
        its key however a later claim groups them."""
        token = uuid.uuid4().hex
        claimed_at = self.clock()
        kinds = self._grouped_kinds()
        units: list[list[OutboxMessage]] = []

        def pins(batch: Sequence[OutboxMessage]) -> list[tuple[list[int], str]]:
            units[:] = group_units(round_robin(list(batch)), kinds, self.max_peers)
            return request_pins(units, kinds, self.max_peers)

        async with self.uow_factory() as uow:
            await uow.outbox.claim(self.channel, claimed_at, limit=self._claim_limit(),
                                   lease=self.lease, token=token, notes=pins)
            await uow.commit()
        return units, token, claimed_at

    async def _dispatch(self, units: list[list[OutboxMessage]], token: str,
                        claimed_at: datetime,
                        on_low: Callable[[], None] | None = None) -> None:
        """Book a limiter slot for each send, in order, and start it when its slot comes."""
        # leave a margin so a message is never sent after its lease has run out
        deadline = claimed_at + self.lease * (1 - SEND_MARGIN)
        low_at = len(units) * 3 // 4
        behind = YIELD_EVERY - 1  # the first send gets a turn at once
        for index, unit in enumerate(units):
            if index == low_at and on_low is not None:
                on_low()
            first = unit[0]
            if len(unit) == 1 and self._skip(first, token):
                continue
            wait = self.limiter.reserve(first.chat_id) if self.limiter else 0.0
            if inspect.isawaitable(wait):  # a limiter shared through Redis books remotely
                wait = await wait
            if self._stop.is_set() or self.clock() + timedelta(seconds=wait) > deadline:
                self._record(*(Outcome(m, token) for u in units[index:] for m in u))
                break
            if wait > 0:
                await self.sleep(wait)
                behind = 0
            slot = await self.send_window.acquire(first.chat_id) if self.send_window else None
            await self._window.acquire()
            previous = self._last.get(first.chat_id)
            task = asyncio.create_task(self._send_unit(unit, token, previous, slot, deadline))
            self._last[first.chat_id] = task
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._forget, first.chat_id))
            if first.kind in self.batch_kinds:
                behind += 1
                if behind >= YIELD_EVERY:
                    # running behind the limiter's slots, it dispatches without sleeping;
                    # every few sends it lets them start (an instant failure is then seen
                    # by the next), but not after each: at 1000/s a turn of a busy event
                    # loop per send was a slot lost per send
                    behind = 0
                    await asyncio.sleep(0)
            else:
                # a message a citizen waits for (a notice, an answer) goes alone and is
                # marked at once, so a crash re-sends at most that one; broadcasts trade
                # this for speed (a crash re-sends at most what was claimed)
                await asyncio.wait([task])
                await self.flush()

    def _forget(self, chat_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._last.get(chat_id) is task:
            del self._last[chat_id]

    def _skip(self, message: OutboxMessage, token: str) -> bool:
        """Record the outcome of a message that must not be sent now; ``True`` if so."""
        if (token, message.chat_id) in self._held:  # an older one to this chat failed
            self._record(Outcome(message, token))
            return True
        if message.citizen_id is not None and message.citizen_id in self._gone:
            # claimed with the message that found them gone: never try them again
            self._record(Outcome(message, token, OutboxStatus.UNREACHABLE))
            return True
        return False

    async def _send_unit(self, unit: list[OutboxMessage], token: str,
                         previous: asyncio.Task[None] | None, slot: Slot | None,
                         deadline: datetime) -> None:
        try:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])  # the chat's earlier message goes first
            if self.clock() > deadline:
                # the windows or the chat's earlier message kept it past the lease's margin:
                # another claim may hold it by now, so it is given back, not sent
                self._record(*(Outcome(m, token) for m in unit))
            elif len(unit) == 1 and self._skip(unit[0], token):
                pass
            elif len(unit) > 1 or as_request(unit, self._grouped_kinds(), self.max_peers):
                # a row pinned to a request to many goes as that request, alone too
                await self._deliver_many(unit, token)
            else:
                await self.deliver(unit[0], token)
        except Exception:
            log.exception("%s: delivering %s failed", self.channel, [m.id for m in unit])
            self._record(*(Outcome(m, token) for m in unit))
        finally:
            if slot is not None and self.send_window is not None:
                slot.done(self.send_window.clock())
            self._window.release()

    async def _drain(self) -> None:
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def _idle(self) -> None:
        await self._drain()
        await self.flush()
        self._held.clear()
        self._gone.clear()
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.idle_seconds)

    async def _flush_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), self.flush_seconds)
            self._flush_now.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("outbox worker for %s cannot mark its sends; retrying",
                              self.channel)
                await asyncio.sleep(self.flush_seconds)

    def _record(self, *outcomes: Outcome) -> None:
        for outcome in outcomes:
            if outcome.status is None:  # given back: later ones to the chat wait for it
                self._held.add((outcome.token, outcome.message.chat_id))
            elif outcome.status is OutboxStatus.UNREACHABLE and outcome.message.citizen_id:
                self._gone.add(outcome.message.citizen_id)
        self._outcomes.extend(outcomes)
        if len(self._outcomes) >= self.flush_size:
            self._flush_now.set()
