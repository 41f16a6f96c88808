"""The operators' side of the back-office group: buttons on the cards and messages in
complaint topics.

Every button press is re-checked (the complaint exists, the topic it was pressed in is
that complaint's, the operator may act, the transition is legal) and always answered.
A step that needs text (answer-and-close, reject, duplicate) is remembered in the
conversation store, keyed by operator and topic, so it survives a restart; the operator's
next message in that topic completes it. Any other message in a complaint's topic goes
to the citizen. Outside complaint topics only ``/help`` is answered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from aiogram import Bot, Router
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, Message, User

from bots.telegram.render import escape, inline_keyboard
from dialogue.messages import Button
from domain.catalogue import Catalogue
from domain.complaint import Complaint, IllegalTransition, Status
from domain.ports import Conversation
from domain.services import change_status, reclassify
from domain.storage.topics import SqlTopicStore
from domain.storage.uow import Database, SqlUnitOfWork

from .card import Action, data, parse
from .operator_photo import SEEN, SEEN_KEPT, relay_photo
from .photos import PhotoRelay
from .pickers import NoLongerValid, Rows, category_picker, sector_picker, status_picker
from .steps import Refusal, check, complete_step
from .texts import _, help_text, refused, status_name

log = logging.getLogger(__name__)
STORE_CHANNEL = "backoffice"
ANSWERABLE = frozenset({Status.NEW, Status.REOPENED, Status.IN_PROGRESS})


def _actor(user: User) -> str:
    return f"{user.full_name} (tg:{user.id})"[:128]


def _command(text: str) -> str:
    return text.split()[0].split("@")[0].lower() if text.startswith("/") else ""


class Backoffice:
    def __init__(self, database: Database, catalogue: Catalogue,
                 clock: Callable[[], datetime], chat_id: int,
                 operators: dict[int, str], photos: PhotoRelay | None = None) -> None:
        self.photos = photos or PhotoRelay()
        self.database = database
        self.catalogue = catalogue
        self.clock = clock
        self.chat_id = chat_id
        self.operators = dict(operators)
        self.router = Router(name="tsur-backoffice")
        # coroutine filters: aiogram runs a plain (magic) filter in a worker thread
        self.router.message.register(self.on_message, self._in_backoffice)
        self.router.callback_query.register(self.on_callback, self._pressed_in_backoffice)
        self.router.shutdown.register(self.photos.close)

    async def _in_backoffice(self, message: Message) -> bool:
        return message.chat.id == self.chat_id

    async def _pressed_in_backoffice(self, query: CallbackQuery) -> bool:
        return query.message is not None and query.message.chat.id == self.chat_id

    # --- messages ----------------------------------------------------------------------------
    async def on_message(self, message: Message, bot: Bot) -> None:
        user = message.from_user
        if user is None or user.is_bot:
            return
        text = (message.text or message.caption or "").strip()
        thread = message.message_thread_id if message.is_topic_message else None
        complaint_id = await self._complaint_of(thread)
        role = self.operators.get(user.id)
        if complaint_id is None:  # General, or a topic that is not a complaint's
            if _command(text) == "/help":
                await self._say(bot, thread, help_text() if role else refused())
            return
        if role is None:
            await self._say(bot, thread, refused())
            return
        if message.photo:
            reply = await relay_photo(self.database, self.photos, bot, message,
                                      complaint_id=complaint_id,
                                      key=(STORE_CHANNEL, f"{user.id}:{thread or 0}"),
                                      actor=_actor(user), now=self.clock())
            if reply:
                await self._say(bot, thread, reply)
            return
        if text.startswith("/"):
            await self._say(bot, thread, help_text())
            return
        if not text:
            await self._say(bot, thread, _("Only text messages are sent to the citizen."))
            return
        try:
            reply = await self._operator_text(user, role, thread or 0, complaint_id, text,
                                              message.message_id)
        except Refusal as refusal:
            reply = str(refusal)
        if reply:
            await self._say(bot, thread, reply)

    async def _operator_text(self, user: User, role: str, thread: int, complaint_id: int,
                             text: str, message_id: int) -> str:
        now = self.clock()
        actor = _actor(user)
        async with self.database.uow() as uow:
            pending = await self._pending(uow, user.id, thread)
            # Telegram hands a message out again if the process died before confirming
            # it: the ids of the last ones taken, saved in the same commit, tell.
            seen = list((pending.data or {}).get(SEEN, ()))
            if message_id in seen:
                return ""
            step = pending.state if (pending.data or {}).get("complaint_id") == complaint_id \
                else "idle"
            reply = await complete_step(uow, step, role, complaint_id, text, actor=actor,
                                        now=now)
            if step != "idle":
                pending.state, pending.data = "idle", {}
            pending.data = {**(pending.data or {}), SEEN: [*seen[1 - SEEN_KEPT:], message_id]}
            await uow.conversations.save(pending)
            await uow.commit()
        return reply

    # --- buttons -----------------------------------------------------------------------------
    async def on_callback(self, query: CallbackQuery, bot: Bot) -> None:
        answer, alert = "", False
        try:
            answer = await self._press(query, bot)
        except Refusal as refusal:
            answer, alert = str(refusal), True
        except Exception:
            log.exception("backoffice: button %r failed", query.data)
            answer, alert = _("Something went wrong; please try again."), True
        finally:
            try:
                await query.answer(answer[:200] or None, show_alert=alert)
            except TelegramAPIError as exc:
                log.info("backoffice: could not answer callback %s: %s", query.id, exc)

    async def _press(self, query: CallbackQuery, bot: Bot) -> str:
        role = self.operators.get(query.from_user.id)
        if role is None:
            raise Refusal(refused())
        action = parse(query.data)
        if action is None:
            raise Refusal(_("This button is no longer valid."))
        message = query.message
        thread = (message.message_thread_id
                  if isinstance(message, Message) and message.is_topic_message else None)
        if await self._complaint_of(thread) != action.complaint_id:
            raise Refusal(_("⛔ This button does not belong to this topic."))
        return await self._act(action, query.from_user, role, bot, thread or 0)

    async def _act(self, action: Action, user: User, role: str, bot: Bot,
                   thread: int) -> str:
        cid, name, args = action.complaint_id, action.name, action.args
        async with self.database.uow() as uow:
            complaint = await uow.complaints.get(cid)
        if complaint is None:
            raise Refusal(_("Complaint not found."))
        if name == "take":
            return await self._change(user, role, complaint, Status.IN_PROGRESS)
        if name == "st":
            return await self._pick(bot, thread, lambda: status_picker(complaint, role))
        if name == "to" and len(args) == 1 and args[0] in Status.__members__.values():
            new = Status(args[0])
            if new is Status.REJECTED:
                return await self._ask(user, role, thread, complaint, "reject", bot)
            if new is Status.DUPLICATE:
                return await self._ask(user, role, thread, complaint, "duplicate", bot)
            return await self._change(user, role, complaint, new)
        if name == "sec" and not args:
            return await self._pick(bot, thread, lambda: sector_picker(self.catalogue, cid))
        if name == "s" and len(args) == 1:
            return await self._pick(
                bot, thread, lambda: category_picker(self.catalogue, cid, args[0]))
        if name == "c" and len(args) == 2:
            return await self._reclassify(user, complaint, *args)
        if name == "ans":
            return await self._ask(user, role, thread, complaint, "answer", bot)
        if name == "rej":
            return await self._ask(user, role, thread, complaint, "reject", bot)
        if name == "dup":
            return await self._ask(user, role, thread, complaint, "duplicate", bot)
        if name == "x":
            await self._set_step(user.id, thread, "idle", {})
            return _("Cancelled.")
        raise Refusal(_("This button is no longer valid."))

    async def _change(self, user: User, role: str, complaint: Complaint, new: Status) -> str:
        assert complaint.id is not None
        async with self.database.uow() as uow:
            await check(uow, role, complaint.id, new)
            try:
                await change_status(uow, complaint.id, new, actor=_actor(user), now=self.clock())
            except (IllegalTransition, ValueError) as exc:
                raise Refusal(_("⛔ Not possible now: {reason}", reason=str(exc))) from exc
            await uow.commit()
        return _("Status: {status}", status=status_name(new))

    async def _ask(self, user: User, role: str, thread: int, complaint: Complaint,
                   step: str, bot: Bot) -> str:
        if step == "answer":
            if complaint.status not in ANSWERABLE:
                raise Refusal(_("⛔ Not allowed now: {old} → {new}.",
                                old=status_name(complaint.status),
                                new=status_name(Status.ANSWERED)))
            prompt = _("✍️ Write the answer to the citizen in this topic: it will be sent "
                       "and the complaint closed.")
        else:
            new = Status.REJECTED if step == "reject" else Status.DUPLICATE
            assert complaint.id is not None
            async with self.database.uow() as uow:
                await check(uow, role, complaint.id, new)
            prompt = (_("✍️ Write the reason for rejecting the complaint.") if step == "reject"
                      else _("✍️ Write the number of the original complaint, e.g. "
                             "2026-000012."))
        assert complaint.id is not None
        await self._set_step(user.id, thread, step, {"complaint_id": complaint.id})
        await self._say(bot, thread, prompt,
                        ((Button(_("✖️ Cancel"), data(complaint.id, "x")),),))
        return ""

    async def _reclassify(self, user: User, complaint: Complaint, sector: str,
                          category: str) -> str:
        assert complaint.id is not None
        try:
            self.catalogue.category(sector, category)
        except KeyError:
            raise Refusal(_("This button is no longer valid.")) from None
        async with self.database.uow() as uow:
            await reclassify(uow, self.catalogue, complaint.id, sector, category,
                             actor=_actor(user), now=self.clock())
            await uow.commit()
        return _("Done.")

    # --- helpers -----------------------------------------------------------------------------
    async def _pick(self, bot: Bot, thread: int, picker: Callable[[], tuple[str, Rows]]
                    ) -> str:
        try:
            prompt, rows = picker()
        except NoLongerValid as exc:
            raise Refusal(str(exc)) from None
        await self._say(bot, thread, prompt, rows)
        return ""

    async def _complaint_of(self, thread: int | None) -> int | None:
        if thread is None:
            return None
        async with self.database.uow() as uow:
            topic = await SqlTopicStore(uow.session).by_thread(self.chat_id, thread)
        return topic.complaint_id if topic else None

    async def _set_step(self, user_id: int, thread: int, state: str,
                        data: dict[str, object]) -> None:
        """The operator's step in the topic; the ids of messages taken are kept."""
        async with self.database.uow() as uow:
            pending = await self._pending(uow, user_id, thread)
            seen = (pending.data or {}).get(SEEN)
            pending.state, pending.data = state, {**data, **({SEEN: seen} if seen else {})}
            await uow.conversations.save(pending)
            await uow.commit()

    @staticmethod
    async def _pending(uow: SqlUnitOfWork, user_id: int, thread: int) -> Conversation:
        return await uow.conversations.load(STORE_CHANNEL, f"{user_id}:{thread}")

    async def _say(self, bot: Bot, thread: int | None, text: str,
                   buttons: Rows = ()) -> None:
        try:
            await bot.send_message(self.chat_id, escape(text), parse_mode=ParseMode.HTML,
                                   message_thread_id=thread or None,
                                   reply_markup=inline_keyboard(buttons))
        except TelegramAPIError as exc:
            log.info("backoffice: could not reply in topic %s: %s", thread, exc)


def build_backoffice_router(database: Database, catalogue: Catalogue,
                            clock: Callable[[], datetime], chat_id: int,
                            operators: dict[int, str], photos: PhotoRelay | None = None
                            ) -> Router:
    """The back-office router, for ``dispatcher.include_router`` next to the citizens'.
    ``photos`` relays operators' photos to VK and web citizens too (by default only to
    Telegram ones)."""
    return Backoffice(database, catalogue, clock, chat_id, operators, photos).router
