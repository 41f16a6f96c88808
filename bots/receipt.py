"""When a platform may be told that an update was taken: once it is *settled*.

Telegram and VK hand an update out again until they hear it was taken (a higher
``getUpdates`` offset, a saved long-poll ``ts``, a 2xx to a webhook, ``ok`` to a
callback). Telling them before the dialogue core has persisted the update loses it if
the process dies in between, so every adapter confirms an update only once it is
settled:

* its handler has finished (the engine committed and the replies went out), or
* the engine has committed (:func:`persisted`) and the replies have been on their way
  for ``grace`` seconds — a reply stuck behind a platform's flood wait must not hold
  back the confirmation of everything after it, nor time out a webhook request.

Until then a kill makes the platform hand the update out again, and the engine answers
it without recording it twice (its stored fingerprints of recent messages; a button
press has none and is checked against the current step, like any stale press). So an update
is confirmed at most ``grace`` seconds before its replies were sent; a kill inside that
window leaves the citizen without an answer but loses nothing they sent.

The receipt travels in a context variable: the adapter that receives an update runs its
handler under :func:`receipt_for`, and the channel handler, which knows when the engine
has returned, calls :func:`persisted`. Handlers that never reach the engine (a group
message, an unsupported update) simply finish.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
REPLY_GRACE = 5.0  # seconds a persisted update's replies may take before it is confirmed

_current: contextvars.ContextVar[Receipt | None] = contextvars.ContextVar(
    "tsur_receipt", default=None)


class Receipt:
    """The fate of one update: settled once handled, or persisted ``grace`` seconds ago.

    ``on_settled`` is called once, when it settles (from the event loop). With ``grace``
    ``None`` only the end of the handler settles it.
    """

    __slots__ = ("_grace", "_on_settled", "_timer", "abandoned", "is_persisted", "settled")

    def __init__(self, on_settled: Callable[[], None] | None = None, *,
                 grace: float | None = REPLY_GRACE) -> None:
        self.settled = asyncio.Event()
        self.is_persisted = False
        self.abandoned = False  # the handler was cancelled before it settled
        self._grace = grace
        self._on_settled = on_settled
        self._timer: asyncio.TimerHandle | None = None

    def persisted(self) -> None:
        """The dialogue core has committed the update; the replies may follow."""
        if self.is_persisted or self.settled.is_set():
            return
        self.is_persisted = True
        if self._grace is not None:
            self._timer = asyncio.get_running_loop().call_later(self._grace, self.finished)

    def finished(self) -> None:
        """The handler is done (or gave up): the update is settled."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.settled.is_set():
            return
        self.settled.set()
        if self._on_settled is not None:
            self._on_settled()


    def abandon(self) -> None:
        """The handler was cancelled (a shutdown): not settled, so the platform must not be
        told it was taken; waiters wake up and see :attr:`abandoned`."""
        if self.settled.is_set():
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.abandoned = True
        self.settled.set()


def persisted() -> None:
    """Tell the receipt of the update being handled (if any) that the engine committed."""
    receipt = _current.get()
    if receipt is not None:
        receipt.persisted()


def receipt_for(handler: Awaitable[T], receipt: Receipt) -> asyncio.Task[T]:
    """Run ``handler`` as a task under ``receipt``; the receipt settles when it ends."""
    context = contextvars.copy_context()
    context.run(_current.set, receipt)
    task: asyncio.Task[T] = asyncio.get_running_loop().create_task(
        _settle_after(handler, receipt), context=context)
    return task


async def _settle_after(handler: Awaitable[T], receipt: Receipt) -> T:
    try:
        result = await handler
    except asyncio.CancelledError:
        receipt.abandon()
        raise
    except BaseException:
        receipt.finished()
        raise
    receipt.finished()
    return result
