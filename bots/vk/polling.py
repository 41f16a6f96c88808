"""Bots Long Poll that saves its ``ts`` only past events that have settled.

VK keeps a community's events for a while and hands out whatever follows the ``ts`` a
client asks with; the client's saved ``ts`` is its only "confirmation". vkbottle saves
the new ``ts`` as soon as it has started a task per event, so a ``kill -9`` while
events are handled skips them on the restart. Here the ``ts`` after a batch is saved only
once every event of that batch and of every earlier batch has settled
(:mod:`bots.receipt`: handled, or persisted by the engine with its replies under way);
the next batches are fetched meanwhile (the ``ts`` in memory moves on), so one slow
event holds nobody up — it only holds back the saved ``ts``. After a kill the events
from the saved ``ts`` on come again and the engine answers those it had already
persisted without recording them twice.

vkbottle keeps the ``ts`` file in ``.vkbottle/bot-polling/<group_id>.json`` under the
*working directory*; :class:`SettledPolling` puts it under ``state_dir`` instead (changing
the working directory of ``tsur run`` is not acceptable).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from pathlib import Path
from typing import Any

from vkbottle import API, Bot
from vkbottle.polling import BotPolling

from bots.dedup import RecentIds
from bots.receipt import REPLY_GRACE, Receipt, receipt_for

log = logging.getLogger(__name__)


class _Batch:
    __slots__ = ("open", "ts")

    def __init__(self) -> None:
        self.ts: Any = None  # the ts after this batch, once listen() has moved past it
        self.open = 0  # events not settled yet


class DataDirPolling(BotPolling):
    """Bots Long Poll that keeps its ``ts`` file under ``state_dir`` instead of the
    working directory (the one property vkbottle derives from ``Path.cwd()``)."""

    def __init__(self, api: API, *, state_dir: Path, **kwargs: Any) -> None:
        super().__init__(api, **kwargs)
        self.state_dir = state_dir

    @property
    def ts_state_path(self) -> Path:
        if self.group_id is None:
            raise RuntimeError("the polling state path is unknown before the group id")
        return self.state_dir / ".vkbottle" / "bot-polling" / f"{self.group_id}.json"


class SettledPolling(DataDirPolling):
    """:class:`DataDirPolling` whose ``ts`` file moves only past settled events; run it
    with :meth:`run` (not ``bot.run_polling``, which knows nothing of settling)."""

    def __init__(self, api: API, *, state_dir: Path, grace: float = REPLY_GRACE,
                 **kwargs: Any) -> None:
        super().__init__(api, state_dir=state_dir, **kwargs)
        self.grace = grace
        self.saved: Any = None  # the ts last written
        self._batches: deque[_Batch] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        # polling restarted after an error resumes from the saved ts, which may lie
        # before events this process has taken already (in flight, or settled since)
        self._taken = RecentIds(10_000)

    async def run(self, bot: Bot) -> None:
        """Fetch events and hand each to ``bot``'s handlers in its own task, forever
        (until :meth:`stop` or cancellation)."""
        self._loop = asyncio.get_running_loop()
        async for event in self.listen():
            batch = _Batch()
            self._batches.append(batch)
            for update in event.get("updates", []):
                event_id = update.get("event_id")
                if isinstance(event_id, str) and event_id and not self._taken.add(event_id):
                    continue
                batch.open += 1
                receipt = Receipt(lambda b=batch: self._settled(b), grace=self.grace)
                task = receipt_for(self._handle(bot, update), receipt)
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _handle(self, bot: Bot, update: dict[str, Any]) -> None:
        try:
            await bot.process_event(update, self.api)
        except Exception:  # settled anyway: handing it out again would fail the same way
            log.exception("vk: handling an event failed: %s", str(update)[:200])

    def restore_server_ts(self, server: dict[str, Any]) -> dict[str, Any]:
        """Where to start: the saved ``ts`` — and on the very first start the server's,
        written at once, so that events coming before the first one is handled are not
        skipped by a restart."""
        server = super().restore_server_ts(server)
        if self._loop is not None and not self.skip_old_events:
            self._write(server["ts"])
        return server

    def save_server_ts(self, server: dict[str, Any]) -> None:
        """Called by ``listen()`` (in a worker thread) after each answer of the long-poll
        server: the ``ts`` it gives belongs to the last batch handed out."""
        if self._loop is None:  # run by vkbottle's own run_polling: its behaviour
            super().save_server_ts(server)
            return
        self._loop.call_soon_threadsafe(self._offer, server["ts"])

    def _offer(self, ts: Any) -> None:
        if not self._batches:
            self._write(ts)
            return
        self._batches[-1].ts = ts  # a later answer with no events moves it on
        self._flush()

    def _settled(self, batch: _Batch) -> None:
        batch.open -= 1
        self._flush()

    def _flush(self) -> None:
        ts = None
        while self._batches and self._batches[0].open == 0 and self._batches[0].ts is not None:
            ts = self._batches.popleft().ts
        if ts is not None:
            self._write(ts)

    def _write(self, ts: Any) -> None:
        if ts == self.saved:
            return
        self.saved = ts
        BotPolling.save_server_ts(self, {"ts": ts})

    async def drain(self, timeout: float) -> None:
        """Wait (up to ``timeout``) for the events in flight; their ``ts`` is then saved."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)
