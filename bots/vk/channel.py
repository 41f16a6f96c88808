"""The citizens' VK community channel: vkbottle handlers around the dialogue engine.

Private dialogues only (group chats are ignored). Bots Long Poll by default
(:mod:`bots.vk.polling`: the ``ts`` is saved under ``data_dir``, and only past events
that were handled, so a restart answers what came while the bot was down and what a
kill interrupted); the Callback API in :mod:`bots.vk.callback`. vkbottle runs every
event as its own task, so the channel keeps order itself: one lock per peer around "ask
the engine, send the replies", taken in arrival order. vkbottle's state dispenser is not
used; the conversation lives in the core's store.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiohttp import ClientTimeout
from vkbottle import API, AiohttpClient, Bot, GroupEventType
from vkbottle.api.request_rescheduler import ABCRequestRescheduler
from vkbottle.bot import Message

from bots.receipt import persisted
from dialogue.engine import KeyedLocks
from dialogue.messages import IncomingMessage, OutgoingMessage

from .messenger import VkMessenger, VkUnavailableError
from .polling import SettledPolling
from .translate import incoming_from_event, incoming_from_message, is_private

log = logging.getLogger(__name__)

DEFAULT_WAIT = 25
STOP_GRACE = 10.0  # seconds to let in-flight replies finish on stop


class DialogueEngine(Protocol):
    """What the channel needs from the dialogue core."""

    async def handle(self, msg: IncomingMessage) -> list[OutgoingMessage]:
        """Handle one citizen action and return the replies, in order."""
        ...


class GiveUpRescheduler(ABCRequestRescheduler):
    """vkbottle's default answer to a non-JSON reply (an HTML 502) is to retry forever,
    blocking the caller; this raises instead, and :class:`VkMessenger` retries a bounded
    number of times."""

    async def reschedule(self, ctx_api: Any, method: str, data: dict[str, Any],
                         recent_response: Any) -> dict[str, Any]:
        raise VkUnavailableError(f"{method}: VK answered with no JSON")


@dataclass(frozen=True)
class ButtonPress:
    """The parts of a ``message_event`` the channel uses; the payload as VK sent it (an
    object, or anything a forger put there: :func:`incoming_from_event` copes)."""

    user_id: int
    peer_id: int
    event_id: str
    payload: Any

    @classmethod
    def of(cls, event: Any) -> ButtonPress | None:
        obj = event.get("object") if isinstance(event, dict) else None
        if not isinstance(obj, dict):
            return None
        user_id, peer_id, event_id = obj.get("user_id"), obj.get("peer_id"), obj.get("event_id")
        if (type(user_id) is not int or type(peer_id) is not int
                or not isinstance(event_id, str) or not event_id):
            return None
        return cls(user_id, peer_id, event_id, obj.get("payload"))


class VkChannel:
    """The handlers; one instance per bot."""

    def __init__(self, engine: DialogueEngine, messenger: VkMessenger) -> None:
        self.engine = engine
        self.messenger = messenger
        self.locks = KeyedLocks()
        self._tasks: set[asyncio.Task[Any]] = set()

    def register(self, bot: Bot) -> None:
        bot.on.message()(self.on_message)
        # raw: vkbottle's model refuses a payload that is not an object before any handler
        # runs, and the citizen's spinner would never stop
        bot.on.raw_event(GroupEventType.MESSAGE_EVENT, dataclass=dict)(self.on_event)

    async def on_message(self, message: Message) -> None:
        peer = message.peer_id
        if not is_private(peer):
            return
        await self._converse(peer, lambda: incoming_from_message(
            message, self.messenger.take_choices(peer)))

    async def on_event(self, event: dict[str, Any]) -> None:
        """A pressed callback button; ``event`` is the raw ``message_event`` update."""
        press = ButtonPress.of(event)
        if press is None:
            log.info("vk: a message_event without user, peer or event id: %.200r", event)
            return
        # Answered at once and unconditionally (the citizen's spinner stops whatever
        # happens next), but in the background: the press must queue for the peer's lock
        # before any later message does.
        self._spawn(self._answer(press))
        if not is_private(press.peer_id):
            return
        await self._converse(press.peer_id, lambda: incoming_from_event(
            press.user_id, press.peer_id, press.payload, press.event_id))

    async def _answer(self, press: ButtonPress) -> None:
        try:
            await self.messenger.call("messages.sendMessageEventAnswer", {
                "event_id": press.event_id, "user_id": press.user_id,
                "peer_id": press.peer_id})
        except Exception as exc:
            log.info("vk: could not answer event %s: %r", press.event_id, exc)

    async def _converse(self, peer: int, translate: Any) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            async with self.locks.hold(("vk", str(peer))):
                incoming = translate()  # inside the lock: the numbered choices are current
                if incoming is not None:
                    await self._reply(incoming)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _reply(self, incoming: IncomingMessage) -> None:
        try:
            replies = await self.engine.handle(incoming)
        except Exception:  # the engine apologises itself; this is the last line of defence
            log.exception("vk: the engine failed on a message from %s", incoming.user_id)
            return
        persisted()  # VK may now be told the event was taken
        for reply in replies:
            try:
                delivered = await self.messenger.send(incoming.address, reply)
            except Exception:
                log.exception("vk: sending a reply to %s failed", incoming.address)
                return
            if not delivered:
                return  # denied or gone: the rest would fail the same way

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = STOP_GRACE) -> None:
        """Wait (up to ``timeout``) for replies in flight."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


def make_api(token: str, api_url: str | None = None, *,
             timeout: float | None = None) -> API:
    """An API on the public VK API, or on ``api_url`` (a test fake), with its own HTTP
    session (vkbottle's default one is shared by the whole process); ``timeout``: seconds
    a request may take in all (default aiohttp's; never for a long poll's API)."""
    client = (AiohttpClient() if timeout is None
              else AiohttpClient(timeout=ClientTimeout(total=timeout)))
    api = API(token, http_client=client, request_rescheduler=GiveUpRescheduler())
    if api_url:
        api.API_URL = api_url
    return api


def build_bot(engine: DialogueEngine, api: API, *, data_dir: Path | None = None,
              group_id: int | None = None, wait: int = DEFAULT_WAIT,
              channel: VkChannel | None = None) -> Bot:
    """A vkbottle Bot with the citizens' handlers (``channel``, or a new one over a
    :class:`VkMessenger` of ``api``), polling with its ``ts`` file under ``data_dir``.

    Without ``data_dir`` the file goes to the working directory, as vkbottle does, and a
    restart skips what came while the bot was down.
    """
    polling = SettledPolling(api, state_dir=data_dir or Path.cwd(), group_id=group_id,
                             wait=wait)
    bot = Bot(api=api, polling=polling, skip_old_events=data_dir is None)
    (channel or VkChannel(engine, VkMessenger(api))).register(bot)
    return bot


async def serve_vk(engine: DialogueEngine, *, token: str, group_id: int, api_url: str | None,
                   data_dir: Path, stop: asyncio.Event, wait: int = DEFAULT_WAIT,
                   retry_delay: float = 5.0) -> None:
    """Long-poll the community until ``stop`` is set, then stop cleanly.

    The working directory is left alone; the polling state goes to ``data_dir``. If
    polling dies (vkbottle lets the first ``groups.getLongPollServer`` error escape), it
    is started again after ``retry_delay`` seconds. On stop the pending long-poll request
    is cancelled and events in flight get :data:`STOP_GRACE` seconds to finish (the
    ``ts`` moves past them as they settle; whatever does not is handed out again).
    """
    api = make_api(token, api_url)
    channel = VkChannel(engine, VkMessenger(api))
    bot = build_bot(engine, api, data_dir=data_dir, group_id=group_id, wait=wait,
                    channel=channel)
    stopping = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            polling = bot.polling
            assert isinstance(polling, SettledPolling)
            task = asyncio.create_task(polling.run(bot))
            try:
                await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                polling.stop()
                if not task.done():
                    task.cancel()
                [outcome] = await asyncio.gather(task, return_exceptions=True)
            if not stop.is_set():
                log.error("vk: polling stopped (%r); restarting in %.0fs", outcome, retry_delay)
                await asyncio.wait({stopping}, timeout=retry_delay)
    finally:
        stopping.cancel()
        await channel.drain()
        await api.http_client.close()
