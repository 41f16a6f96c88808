"""Delivering back-office rows into the operators' forum group.

A row's address is a complaint's topic (:func:`~bots.backoffice.notifier.topic_address`).
The topic is created on first need and remembered in ``complaint_topics``; the card is
rendered from the database when it is posted, so it shows the complaint as it is then,
and edited in place (``editMessageText``; where it is is kept by
:mod:`bots.backoffice.card_store`) when its status, sector or agency change.
If someone deleted or closed the topic (Bot API 400 "message thread not found",
``TOPIC_DELETED``, ``TOPIC_CLOSED``), a closed topic is reopened, a deleted one recreated
with a fresh card, and the message sent again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import (
    CreateForumTopic,
    EditMessageText,
    ReopenForumTopic,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.types import Message

from bots.telegram.render import render
from dialogue.messages import Address, Channel, OutgoingMessage
from domain.catalogue import Catalogue
from domain.complaint import Complaint
from domain.ports import OutboxMessage
from domain.storage.topics import SqlTopicStore
from domain.storage.uow import Database
from notifications.delivery import DeliveryWorker
from notifications.messenger import RetryAfter, SendResult, TransientError

from .card import render_card, topic_name
from .card_store import PostedCard, posted_card, remember_card
from .notifier import Op, parse_topic_op

log = logging.getLogger(__name__)
_GONE = ("message thread not found", "topic_deleted", "topic_id_invalid", "thread not found")
_CLOSED = ("topic_closed",)
_NO_MESSAGE = ("message to edit not found", "message_id_invalid", "message can't be edited")


def utc_now() -> datetime:
    return datetime.now(UTC)


class TopicGone(Exception):
    """The topic a message was sent to is deleted (or closed: ``closed``)."""

    def __init__(self, thread_id: int, closed: bool) -> None:
        super().__init__(f"topic {thread_id} is {'closed' if closed else 'gone'}")
        self.thread_id = thread_id
        self.closed = closed


class BackofficeMessenger:
    """The ``Messenger`` of channel ``backoffice``; holds an aiogram ``Bot`` (not the
    polling one's session necessarily) and the database, for topics and cards."""

    def __init__(self, bot: Bot, database: Database, catalogue: Catalogue, chat_id: int, *,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.bot = bot
        self.database = database
        self.catalogue = catalogue
        self.chat_id = chat_id
        self.clock = clock

    async def send(self, to: Address, msg: OutgoingMessage, *,
                   key: str | None = None) -> SendResult:
        """Post ``msg`` in the topic ``to.chat_id`` names (or post or edit the card, if it
        says so)."""
        complaint_id, op = parse_topic_op(to.chat_id)
        complaint = await self._complaint(complaint_id)
        if complaint is None:
            log.warning("backoffice: complaint %s is gone; message dropped", complaint_id)
            return SendResult.OK
        thread_id = await self._thread(complaint_id)
        if thread_id is None:
            thread_id = await self._open_topic(complaint)  # with the card as it is now
            if op != Op.FORWARD:
                return SendResult.OK
        try:
            await self._act(op, thread_id, complaint, msg)
        except TopicGone as gone:
            revived = await self._revive(complaint, gone)
            if revived == gone.thread_id or op not in (Op.CARD, Op.CARD_EDIT):
                await self._act(op, revived, complaint, msg)  # a new topic has a new card
        return SendResult.OK

    async def _act(self, op: str, thread_id: int, complaint: Complaint,
                   msg: OutgoingMessage) -> None:
        if op == Op.CARD:
            await self._post_card(thread_id, complaint)
        elif op == Op.CARD_EDIT:
            await self._edit_card(thread_id, complaint)
        else:
            await self._post(thread_id, msg)

    # --- topics ------------------------------------------------------------------------------
    async def _complaint(self, complaint_id: int) -> Complaint | None:
        async with self.database.uow() as uow:
            return await uow.complaints.get(complaint_id)

    async def _thread(self, complaint_id: int) -> int | None:
        async with self.database.uow() as uow:
            topic = await SqlTopicStore(uow.session).for_complaint(complaint_id)
        return topic.thread_id if topic and topic.chat_id == self.chat_id else None

    async def _open_topic(self, complaint: Complaint) -> int:
        """Create the complaint's topic, remember it, and post the card in it."""
        assert complaint.id is not None
        created = await self._call(CreateForumTopic(
            chat_id=self.chat_id, name=topic_name(self.catalogue, complaint)))
        thread_id = created.message_thread_id
        # stored before anything else is sent: a retry then finds it instead of making
        # a second topic
        async with self.database.uow() as uow:
            await SqlTopicStore(uow.session).put(complaint.id, self.chat_id, thread_id,
                                                 self.clock())
            await uow.commit()
        log.info("backoffice: topic %s opened for complaint %s", thread_id, complaint.number)
        await self._post_card(thread_id, complaint)
        return thread_id

    async def _revive(self, complaint: Complaint, gone: TopicGone) -> int:
        """Reopen a closed topic, or replace a deleted one (with a new card)."""
        if gone.closed:
            try:
                await self._call(ReopenForumTopic(chat_id=self.chat_id,
                                                  message_thread_id=gone.thread_id))
                log.info("backoffice: topic %s reopened", gone.thread_id)
                return gone.thread_id
            except TelegramBadRequest as exc:
                log.info("backoffice: cannot reopen topic %s (%s); recreating it",
                         gone.thread_id, exc.message)
        return await self._open_topic(complaint)

    # --- the card ----------------------------------------------------------------------------
    async def _post_card(self, thread_id: int, complaint: Complaint, *,
                         photos: bool = True) -> None:
        """Post the card (its photos first, unless ``photos`` is off) and remember where."""
        assert complaint.id is not None
        card = render_card(self.catalogue, complaint)
        if not photos:
            card = OutgoingMessage(card.text, buttons=card.buttons)
        ids = await self._post(thread_id, card)
        if ids:
            await remember_card(self.database, complaint.id, PostedCard(thread_id, ids))

    async def _edit_card(self, thread_id: int, complaint: Complaint) -> None:
        """Show the complaint as it is now in its card, edited in place (the card is text:
        its photos go before it as messages of their own). A card that is not there any
        more — deleted, in a topic that was replaced, never remembered — is posted anew."""
        assert complaint.id is not None
        posted = await posted_card(self.database, complaint.id)
        card = render_card(self.catalogue, complaint)
        pieces = [m for m in render(self.chat_id, OutgoingMessage(card.text,
                                                                  buttons=card.buttons),
                                    language="ru") if isinstance(m, SendMessage)]
        if posted is None or posted.thread_id != thread_id \
                or len(posted.message_ids) != len(pieces):
            await self._post_card(thread_id, complaint, photos=posted is None)
            return
        for message_id, piece in zip(posted.message_ids, pieces, strict=True):
            try:
                await self._call(EditMessageText(
                    chat_id=self.chat_id, message_id=message_id, text=piece.text,
                    parse_mode=piece.parse_mode, reply_markup=piece.reply_markup))
            except TelegramBadRequest as exc:
                text = exc.message.lower()
                if "message is not modified" in text:
                    continue  # already shows this (a repeated or an overtaken edit)
                if any(marker in text for marker in _NO_MESSAGE):
                    log.info("backoffice: the card of %s is gone (%s); posting it again",
                             complaint.number, exc.message)
                    await self._post_card(thread_id, complaint, photos=False)
                    return
                raise

    # --- sending -----------------------------------------------------------------------------
    async def _post(self, thread_id: int, msg: OutgoingMessage) -> tuple[int, ...]:
        """Send ``msg`` into the topic; the ids of its text messages."""
        ids: list[int] = []
        for method in render(self.chat_id, msg, language="ru"):
            method = method.model_copy(update={"message_thread_id": thread_id})
            try:
                sent = await self._call(method)
            except TelegramBadRequest as exc:
                text = exc.message.lower()
                if any(marker in text for marker in _CLOSED):
                    raise TopicGone(thread_id, closed=True) from exc
                if any(marker in text for marker in _GONE):
                    raise TopicGone(thread_id, closed=False) from exc
                if isinstance(method, SendPhoto):
                    log.warning("backoffice: photo refused in topic %s: %s", thread_id,
                                exc.message)
                    continue
                raise
            if isinstance(method, SendMessage) and isinstance(sent, Message):
                ids.append(sent.message_id)
        return tuple(ids)

    async def _call(self, method: TelegramMethod[Any]) -> Any:
        """One Bot API call, its failures translated for the delivery worker."""
        try:
            return await self.bot(method)
        except TelegramRetryAfter as exc:
            raise RetryAfter(exc.retry_after, exc.message) from exc
        except (TelegramNetworkError, TelegramServerError) as exc:
            raise TransientError(str(exc)) from exc
        except TelegramForbiddenError as exc:
            # the bot was removed from the group: keep the rows until it is back
            raise TransientError(f"not allowed in the back-office group: {exc.message}") \
                from exc


class BackofficeDeliveryWorker(DeliveryWorker):
    """A :class:`DeliveryWorker` for channel ``backoffice``.

    The outbox turns a row's channel into a citizen ``Address``, which knows only the
    citizens' channels; a back-office row is addressed to a topic of a Telegram group, so
    it is handed on as a Telegram address (whose ``chat_id`` names the topic).
    """

    def __init__(self, uow_factory: Callable[[], Any], messenger: BackofficeMessenger,
                 **kwargs: Any) -> None:
        super().__init__(uow_factory, "backoffice", messenger, **kwargs)

    async def deliver(self, message: OutboxMessage, token: str) -> None:
        await super().deliver(dataclasses.replace(message, channel=Channel.TELEGRAM.value),
                              token)
