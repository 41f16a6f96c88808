"""The citizens' Telegram channel: aiogram handlers around the dialogue engine.

Private chats only. The router handles private messages (new and edited), inline button
presses, and ``/start`` in groups (answered with a hint to write in private); every other
group update falls through untouched, so a back-office router can be included next to
this one. Per-citizen ordering is the engine's job (it locks per user); aiogram's FSM is
not used, the conversation lives in the core's store.

A reply keyboard's text button (the location question's "Skip") sends its label as a
plain text; the channel remembers what each label stands for and hands the engine that
button's press instead (:mod:`bots.telegram.keyboards`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from aiogram import Bot, Dispatcher, Router
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ChatType, ParseMode
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import CommandStart
from aiogram.methods import AnswerCallbackQuery, SendMessage
from aiogram.types import CallbackQuery, Message

from bots.receipt import persisted
from bots.texts import N_, translate
from dialogue.engine import AlsoSave, Rewrite
from dialogue.messages import IncomingMessage, OutgoingMessage
from domain.ports import Conversation, ConversationStore

from . import webhook_reply
from .keyboards import MemoryReplyKeyboards, ReplyKeyboards
from .messenger import TelegramMessenger
from .polling import POLL_TIMEOUT, ConfirmingPolling
from .render import MAX_TEXT_BUTTON, escape, merge_replies, text_buttons
from .session import TsurSession
from .translate import (
    incoming_from_callback,
    incoming_from_message,
    language_hint,
    pressed_text_button,
)
from .webhook_reply import carry

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
PRIVATE_ONLY = N_("I take complaints only in private messages — please write to me "
                  "directly.")
_GROUPS = (ChatType.GROUP, ChatType.SUPERGROUP)


class DialogueEngine(Protocol):
    """What the channel needs from the dialogue core."""

    async def handle(self, msg: IncomingMessage, *, also_save: AlsoSave | None = None,
                     rewrite: Rewrite | None = None) -> list[OutgoingMessage]:
        """Handle one citizen action and return the replies, in order; ``also_save`` gives
        rows to save with the step, ``rewrite`` the message it handles (see
        :meth:`dialogue.engine.Engine.handle`)."""
        ...


async def in_private(message: Message) -> bool:
    return message.chat.type == ChatType.PRIVATE


async def in_group(message: Message) -> bool:
    return message.chat.type in _GROUPS


async def pressed_in_private(query: CallbackQuery) -> bool:
    """A button under a message in a private chat (not an inline-mode one, which has no
    message, nor one in a group)."""
    return query.message is not None and query.message.chat.type == ChatType.PRIVATE


class TelegramChannel:
    """The handlers; one instance per dispatcher. Messengers are made per bot, lazily.

    :param keyboards: where the labels of the reply keyboards shown are remembered; by
        default in this process only (``config`` gives the SQL one).
    """

    def __init__(self, engine: DialogueEngine,
                 keyboards: ReplyKeyboards | None = None) -> None:
        self.engine = engine
        self.keyboards: ReplyKeyboards = keyboards or MemoryReplyKeyboards()
        self._messengers: dict[int, TelegramMessenger] = {}
        self.router = Router(name="tsur-citizens")
        # Filters are coroutine functions, not magic filters (``F.chat.type == …``): aiogram
        # runs a synchronous filter in a thread (``asyncio.to_thread``), a thread hop per
        # update that cost more CPU than the rest of the routing.
        self.router.message.register(self.on_message, in_private)
        self.router.edited_message.register(self.on_message, in_private)
        # buttons in groups (the back office) are left to the routers that own them
        self.router.callback_query.register(self.on_callback, pressed_in_private)
        self.router.message.register(self.on_group_start, in_group, CommandStart())

    def messenger(self, bot: Bot) -> TelegramMessenger:
        found = self._messengers.get(id(bot))
        if found is None or found.bot is not bot:
            found = self._messengers[id(bot)] = TelegramMessenger(bot)
        return found

    async def on_message(self, message: Message, bot: Bot) -> None:
        incoming = incoming_from_message(message)
        if incoming is None:
            return
        label = self._pressed_label(message) if _maybe_a_label(message, incoming) else None
        await self._converse(incoming, bot, rewrite=label)

    def _pressed_label(self, message: Message) -> Rewrite:
        """The engine's ``rewrite`` of a text that may be a label of the citizen's reply
        keyboard: that button's press if it is one, else the citizen's words."""

        async def rewrite(incoming: IncomingMessage, dialogue: Conversation,
                          store: ConversationStore) -> IncomingMessage:
            payload = await self.keyboards.payload(incoming.address.chat_id, incoming.text,
                                                   dialogue=dialogue, store=store)
            return incoming if payload is None else pressed_text_button(incoming, message,
                                                                       payload)

        return rewrite

    async def on_callback(self, query: CallbackQuery, bot: Bot) -> None:
        # Answered unconditionally: the citizen's spinner stops whatever happens next. On a
        # webhook the answer rides on the webhook's own answer (bots.telegram.webhook_reply),
        # sent once the step is done, or is taken back and made as a call of its own if the
        # step is still running after CARRY_WAIT; else it is a call of its own, made at once
        # and travelling while the engine works (the step does not wait for its round trip).
        method = query.answer()
        reply = carry(bot, method)
        answer: asyncio.Future[None] | None = None
        late: asyncio.TimerHandle | None = None
        if reply is None:
            answer = asyncio.ensure_future(self._answer(query.id, method, bot))
        else:
            def withdraw() -> None:
                nonlocal answer
                if reply.withdraw():
                    answer = asyncio.ensure_future(self._answer(query.id, method, bot))

            late = asyncio.get_running_loop().call_later(webhook_reply.CARRY_WAIT, withdraw)
        try:
            incoming = incoming_from_callback(query)
            if incoming is not None:
                await self._converse(incoming, bot)
        finally:
            if late is not None:
                late.cancel()
            if answer is not None:
                await answer

    async def _answer(self, query_id: str, method: AnswerCallbackQuery, bot: Bot) -> None:
        try:
            await self.messenger(bot).post(method)
        except TelegramAPIError as exc:
            log.info("telegram: could not answer callback query %s: %s", query_id, exc)

    async def on_group_start(self, message: Message, bot: Bot) -> None:
        lang = language_hint(message.from_user) or "ru"
        text = translate(PRIVATE_ONLY, lang)
        try:
            await self.messenger(bot).call(SendMessage(
                chat_id=message.chat.id, text=escape(text), parse_mode=ParseMode.HTML,
                message_thread_id=message.message_thread_id if message.is_topic_message
                else None))
        except TelegramAPIError as exc:
            log.info("telegram: could not answer /start in group %s: %s", message.chat.id, exc)

    async def _converse(self, incoming: IncomingMessage, bot: Bot, *,
                        rewrite: Rewrite | None = None) -> None:
        chat_id = incoming.address.chat_id

        def keyboard(replies: list[OutgoingMessage]) -> list[Conversation]:
            # remembered with the step, before the replies are sent: the citizen cannot
            # press a button whose label is not remembered yet
            return self.keyboards.keep(chat_id, _text_buttons_left(replies))

        try:
            replies = await self.engine.handle(incoming, also_save=keyboard, rewrite=rewrite)
        except Exception:  # the engine apologises itself; this is the last line of defence
            log.exception("telegram: the engine failed on a message from %s", incoming.user_id)
            return
        persisted()  # the platform may now be told the update was taken
        messenger = self.messenger(bot)
        for reply in merge_replies(replies):
            try:
                delivered = await messenger.send(incoming.address, reply)
            except Exception:
                log.exception("telegram: sending a reply to %s failed", incoming.address)
                return
            if not delivered:
                return  # blocked or gone: the rest would fail the same way


def _text_buttons_left(replies: list[OutgoingMessage]) -> dict[str, str]:
    """The text buttons (label → payload) of the reply keyboard the replies leave on
    screen: the last location question's, or none."""
    labels: dict[str, str] = {}
    for reply in replies:
        if reply.request_location:
            labels = text_buttons(reply)
    return labels


def _maybe_a_label(message: Message, incoming: IncomingMessage) -> bool:
    """Whether the message could be a press of a reply keyboard's text button: a new
    message of nothing but a text that a label could be (see :func:`text_buttons`)."""
    text = incoming.text
    return (message.text is not None and message.edit_date is None and bool(text)
            and len(text) <= MAX_TEXT_BUTTON and not text.startswith("/")
            and not incoming.attachments and incoming.location is None)


def build_dispatcher(engine: DialogueEngine, *,
                     keyboards: ReplyKeyboards | None = None) -> Dispatcher:
    """A dispatcher with the citizens' router; include more routers before polling.
    ``keyboards``: see :class:`TelegramChannel`."""
    # aiogram's FSM is off: the conversation lives in the core's store (see the module
    # doc), and its middleware would look up an unused state for every update
    dp = Dispatcher(name="tsur-telegram", disable_fsm=True)
    dp.include_router(TelegramChannel(engine, keyboards).router)
    return dp


def make_bot(token: str, api_url: str | None = None, *,
             timeout: float | None = None) -> Bot:
    """A Bot on the public Bot API, or on ``api_url`` (a local server, a test fake);
    ``timeout``: seconds a request may take (default aiogram's)."""
    options: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    session = (TsurSession(api=TelegramAPIServer.from_base(api_url), **options) if api_url
               else TsurSession(**options))
    return Bot(token, session=session)


async def serve_telegram(engine: DialogueEngine, *, token: str, api_url: str | None,
                         stop: asyncio.Event, dispatcher: Dispatcher | None = None,
                         poll_timeout: int = POLL_TIMEOUT) -> None:
    """Long-poll Telegram until ``stop`` is set, then stop cleanly and close the session.

    Updates are confirmed to Telegram only once handled (:mod:`bots.telegram.polling`),
    so a crash loses none of them; on stop the updates in flight settle and are confirmed.
    """
    dp = dispatcher or build_dispatcher(engine)
    bot = make_bot(token, api_url)
    try:
        await ConfirmingPolling(dp, bot, allowed_updates=ALLOWED_UPDATES,
                                timeout=poll_timeout).run(stop)
    finally:
        await bot.session.close()
