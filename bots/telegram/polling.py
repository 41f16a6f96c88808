"""Long polling that confirms an update to Telegram only once it is settled.

aiogram's own polling asks for the next batch (whose ``offset`` confirms the last one)
as soon as it has started a task per update, so a ``kill -9`` while updates are being
handled loses them: Telegram never hands them out again. Here ``offset`` only moves past
an update once it is settled (:mod:`bots.receipt`: handled, or persisted by the engine
with its replies under way), and it moves to the lowest update still in flight — every
update below it is settled, so a kill loses nothing; what was in flight is handed out
again after the restart and the engine answers it without recording it twice.

Different citizens still run concurrently: the loop hands each update to its own task
and keeps fetching. While updates are in flight a ``getUpdates`` returns them again at
once (they are not confirmed), so the loop does not poll in a tight circle: it fetches
again when everything in flight has settled, or after :data:`RECHECK` seconds (to take
in other citizens' new updates while one is slow; doubling up to :data:`MAX_RECHECK`
while those fetches bring nothing new), and skips the updates it already runs (with
:class:`~bots.telegram.session.TsurSession`, before they are parsed). One
citizen's updates run one after another, in order (their replies too).

Why not an inbox table written before confirming: that would be a second copy of every
update in the database, and a second worker to drain it; the engine already persists
each step and recognises a redelivered message by its time stamp and content (a
redelivered button press is checked against the current step like any stale press), so
confirming late gives the same guarantee with nothing new to store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.types import Update
from aiogram.utils.backoff import Backoff, BackoffConfig

from bots.receipt import REPLY_GRACE, Receipt, receipt_for

from .session import skip_updates_through

log = logging.getLogger(__name__)

POLL_TIMEOUT = 10  # seconds Telegram holds a getUpdates open when there is nothing new
RECHECK = 0.1  # seconds between fetches while updates are in flight...
MAX_RECHECK = 1.0  # ...doubling up to this while they bring nothing new
STOP_GRACE = 10.0  # seconds updates in flight get to settle on stop
BACKOFF = BackoffConfig(min_delay=1.0, max_delay=5.0, factor=1.3, jitter=0.1)


def citizen_of(update: Update) -> Hashable:
    """Whose update it is: the sender in a private chat; the chat and topic in a group
    (the back office: one topic's messages stay in order)."""
    event = update.event
    sender = getattr(event, "from_user", None)
    message = event if hasattr(event, "chat") else getattr(event, "message", None)
    chat = getattr(message, "chat", None)
    if chat is not None and chat.type != "private":
        return ("chat", chat.id, getattr(message, "message_thread_id", None))
    if sender is not None:
        return ("user", sender.id)
    return ("update", update.update_id)


class ConfirmingPolling:
    """Polls ``getUpdates`` for ``bot`` and feeds ``dispatcher``; see the module doc."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, *,
                 allowed_updates: list[str] | None = None, timeout: int = POLL_TIMEOUT,
                 grace: float = REPLY_GRACE, recheck: float = RECHECK) -> None:
        self.dispatcher = dispatcher
        self.bot = bot
        self.allowed_updates = allowed_updates
        self.timeout = timeout
        self.grace = grace
        self.recheck = recheck
        self._recheck = recheck  # the current wait; grows while fetches bring nothing new
        self.confirmed = 0  # the offset Telegram was last sent
        self._highest = 0  # the highest update id handed to a handler
        self._pending: dict[int, Receipt] = {}  # in flight, by update id
        self._last: dict[Hashable, asyncio.Task[Any]] = {}  # each citizen's last task
        self._tasks: set[asyncio.Task[Any]] = set()
        self._progress = asyncio.Event()

    @property
    def offset(self) -> int:
        """Every update below it is settled."""
        if self._pending:
            return min(self._pending)
        return self._highest + 1 if self._highest else self.confirmed

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; then let updates in flight settle and confirm them."""
        workflow = {"bots": [self.bot], "dispatcher": self.dispatcher,
                    **self.dispatcher.workflow_data}
        await self.dispatcher.emit_startup(bot=self.bot, **workflow)
        try:
            await self._poll(stop, workflow)
        finally:
            await self._drain()
            await self.dispatcher.emit_shutdown(bot=self.bot, **workflow)

    async def _poll(self, stop: asyncio.Event, workflow: dict[str, Any]) -> None:
        backoff = Backoff(BACKOFF)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                if self._pending:
                    await self._wait_for_progress(stopping)
                    if stop.is_set():
                        return
                timeout = 0 if self._pending else self.timeout
                fetch = asyncio.ensure_future(self._fetch(timeout))
                await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    fetch.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await fetch
                    return
                try:
                    updates = fetch.result()
                except Exception as exc:  # Telegram unreachable, 409 from another poller…
                    log.warning("telegram: getUpdates failed (%s: %s); again in %.1f s",
                                type(exc).__name__, exc, backoff.next_delay)
                    await asyncio.wait({stopping}, timeout=next(backoff))
                    continue
                backoff.reset()
                highest = self._highest
                for update in updates:
                    self._start(update, workflow)
                self._recheck = (self.recheck if self._highest > highest
                                 else min(self._recheck * 2, MAX_RECHECK))
        finally:
            stopping.cancel()

    async def _wait_for_progress(self, stopping: asyncio.Future[Any]) -> None:
        """Until everything in flight has settled, ``recheck`` seconds, or stop."""
        self._progress.clear()
        waiter = asyncio.ensure_future(self._progress.wait())
        try:
            await asyncio.wait({waiter, stopping}, timeout=self._recheck,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()

    async def _fetch(self, timeout: int) -> list[Update]:
        offset = self.offset
        method = GetUpdates(offset=offset or None, timeout=timeout,
                            allowed_updates=self.allowed_updates)
        # the updates already taken come back until confirmed: not worth parsing again
        with skip_updates_through(self._highest):
            updates = await self.bot(method, request_timeout=int(self.bot.session.timeout
                                                                 + timeout))
        self.confirmed = max(self.confirmed, offset)
        return updates

    def _start(self, update: Update, workflow: dict[str, Any]) -> None:
        uid = update.update_id
        if uid <= self._highest:
            return  # handed out again while in flight, or settled since
        self._highest = uid
        receipt = Receipt(lambda: self._settled(uid), grace=self.grace)
        self._pending[uid] = receipt
        key = citizen_of(update)
        task = receipt_for(self._handle(update, self._last.get(key), workflow), receipt)
        self._last[key] = task
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._finished(key, done))

    def _finished(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if self._last.get(key) is task:
            del self._last[key]

    def _settled(self, uid: int) -> None:
        self._pending.pop(uid, None)
        if not self._pending:
            self._progress.set()

    async def _handle(self, update: Update, before: asyncio.Task[Any] | None,
                      workflow: dict[str, Any]) -> None:
        if before is not None:
            await asyncio.wait({before})  # the citizen's previous update first
        try:
            response = await self.dispatcher.feed_update(self.bot, update, **workflow)
            if isinstance(response, TelegramMethod):
                await self.dispatcher.silent_call_request(self.bot, response)
        except Exception:  # settled anyway: handing it out again would fail the same way
            log.exception("telegram: handling update %s failed", update.update_id)

    async def _drain(self) -> None:
        """Let updates in flight settle (up to :data:`STOP_GRACE`), then tell Telegram."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=STOP_GRACE)
        if self.offset > self.confirmed:
            try:
                await self.bot(GetUpdates(offset=self.offset, limit=1, timeout=0,
                                          allowed_updates=self.allowed_updates))
                self.confirmed = self.offset
            except Exception as exc:  # handed out again on the next start: no loss
                log.info("telegram: could not confirm the last updates: %r", exc)
