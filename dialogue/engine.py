"""The dialogue engine: one entry point for every channel.

For each incoming message it takes the user's lock, opens one unit of work, loads the
conversation and the citizen, runs the current step, saves the conversation and commits.
A failure rolls everything back, so the citizen keeps the draft saved after the previous
step and gets a polite apology instead of silence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from dialogue.flows import PROMPTS, dispatch
from dialogue.flows.base import Context, Deps
from dialogue.i18n import LANGUAGES, get_translator, normalize_language
from dialogue.messages import IncomingMessage, OutgoingMessage
from dialogue.nlu import Classifier
from dialogue.text import clean
from domain.calendar import WorkingCalendar
from domain.catalogue import Catalogue
from domain.ports import Conversation, ConversationStore, UnitOfWork
from domain.services import get_or_create_citizen

log = logging.getLogger(__name__)
MAX_NAME = 200  # the citizens.name column; PostgreSQL refuses longer values and NUL


# see Engine.handle
AlsoSave = Callable[[list[OutgoingMessage]], Iterable[Conversation]]
Rewrite = Callable[[IncomingMessage, Conversation, ConversationStore],
                   Awaitable[IncomingMessage]]

SEEN = "seen"  # conversation data: the last messages handled, to know one redelivered
SEEN_KEPT = 5
ANSWERED = "answered"  # conversation data: the replies to the last of them, to give again
MAX_ANSWER_CHARS = 20_000  # longer replies are not kept: a repeat gets the step's question


def fingerprint(msg: IncomingMessage) -> list[Any] | None:
    """What tells a platform's redelivery of a message (after a crash, before the platform
    heard it was handled) from a new one: a button press's own id, else the message's time
    stamp and content. ``None`` with neither (a press from a channel without ids is
    checked against the step like any stale press)."""
    if msg.callback_id is not None:
        return ["press", msg.callback_id]
    if msg.received_at is None:
        return None
    location = [msg.location.latitude, msg.location.longitude] if msg.location else None
    return [msg.received_at.isoformat(), msg.text, msg.payload,
            [a.ref for a in msg.attachments], location]


def _kept_answer(replies: list[OutgoingMessage]) -> list[dict[str, Any]] | None:
    """The replies as stored with the conversation, or ``None`` when they are too long to
    be worth a copy there (a summary quoting a long complaint)."""
    if sum(len(r.text) for r in replies) > MAX_ANSWER_CHARS:
        return None
    return [r.to_json() for r in replies]


def _answer_to(data: dict[str, Any]) -> list[OutgoingMessage] | None:
    """The replies kept for the last message handled, if they were kept."""
    kept = data.get(ANSWERED)
    if not isinstance(kept, list):
        return None
    try:
        return [OutgoingMessage.from_json(r) for r in kept]
    except (KeyError, TypeError, ValueError, AttributeError):  # an older or damaged row
        return None


class KeyedLocks:
    """One :class:`asyncio.Lock` per key, dropped when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: tuple[str, str]) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class Engine:
    """The channel-agnostic dialogue core.

    :param uow_factory: makes a fresh unit of work per message.
    :param clock: the current time (timezone-aware); injected so tests control it.
    :param default_language: for new citizens whose channel gives no usable hint.
    :param confidence_threshold: from this top confidence on, the classifier's guess is
        offered as "looks like …, correct?"; below it the top three are listed.
    """

    def __init__(self, uow_factory: Callable[[], UnitOfWork], catalogue: Catalogue,
                 calendar: WorkingCalendar, classifier: Classifier,
                 clock: Callable[[], datetime], *, default_language: str = "ru",
                 confidence_threshold: float = 0.6) -> None:
        if default_language not in LANGUAGES:
            raise ValueError(f"unsupported default language {default_language!r}")
        self._uow_factory = uow_factory
        self._deps = Deps(catalogue, calendar, classifier, confidence_threshold)
        self._clock = clock
        self._default_language = default_language
        self.locks = KeyedLocks()

    async def handle(self, msg: IncomingMessage, *, also_save: AlsoSave | None = None,
                     rewrite: Rewrite | None = None) -> list[OutgoingMessage]:
        """Process one message from a citizen and return the replies to send.

        :param also_save: given the step's replies, the conversation-store rows a channel
            keeps about them (the Telegram channel: the labels of a reply keyboard); saved
            in the step's own unit of work, so they are committed with it or not at all.
        :param rewrite: given the message, the citizen's conversation and the store, the
            message the step is to handle (the Telegram channel: a reply keyboard's label
            typed becomes that button's press); read in the step's own unit of work, after
            the conversation, under its locks.
        """
        channel = msg.address.channel.value
        async with self.locks.hold((channel, msg.user_id)):
            return await self._handle_locked(msg, channel, also_save, rewrite)

    async def _handle_locked(self, msg: IncomingMessage, channel: str,
                             also_save: AlsoSave | None,
                             rewrite: Rewrite | None) -> list[OutgoingMessage]:
        now = self._clock()
        language = normalize_language(msg.language_hint, self._default_language)
        async with self._uow_factory() as uow:
            try:
                conversation = await uow.conversations.load(channel, msg.user_id)
                if rewrite is not None:
                    msg = await rewrite(msg, conversation, uow.conversations)
                citizen = await get_or_create_citizen(
                    uow, channel, msg.user_id, msg.address.chat_id, language=language,
                    now=now, name=clean(msg.display_name)[:MAX_NAME])
                language = normalize_language(citizen.language, self._default_language)
                ctx = Context(msg, uow, citizen, conversation, self._deps, now,
                              get_translator(language), PROMPTS)
                mark = fingerprint(msg)
                data = conversation.data or {}
                seen = list(data.get(SEEN, ()))
                if mark is not None and mark in seen:
                    # handled before the process died, and handed out again: answer, but
                    # do not record it twice (a photo, details added to a complaint); the
                    # last one gets its own answer again (a submit: the number), an older
                    # one the question of the step the dialogue is at
                    again = _answer_to(data) if mark == seen[-1] else None
                    if again is None:
                        await ctx.prompt()
                    else:
                        ctx.replies.extend(again)
                else:
                    await dispatch(ctx)
                    if mark is not None:  # after dispatch: a finished step clears the data
                        ctx.data[SEEN] = [*seen[1 - SEEN_KEPT:], mark]
                        ctx.data[ANSWERED] = _kept_answer(ctx.replies)
                conversation.updated_at = now
                await uow.conversations.save(conversation)
                if also_save is not None:
                    for row in also_save(ctx.replies):
                        await uow.conversations.save(row)
                await uow.commit()
                language = normalize_language(citizen.language, self._default_language)
                return [replace(r, language=language) for r in ctx.replies]
            except Exception:
                log.exception("dialogue step failed for %s:%s", channel, msg.user_id)
                await uow.rollback()
                return [self._apology(language)]

    @staticmethod
    def _apology(language: str) -> OutgoingMessage:
        _ = get_translator(language).gettext
        return OutgoingMessage(_("Sorry, something went wrong. Please try again a little "
                                 "later; what you had already entered is kept."),
                               language=language)
