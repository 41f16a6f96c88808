"""The operators' back-office chat end to end: the real aiogram Dispatcher (citizens' router
plus the back-office router) long-polling the fake Bot API, the real Engine on SQLite, and
real delivery workers: ``backoffice`` with the BackofficeMessenger, ``telegram`` for the
citizens, and recording messengers for VK and the web chat."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dialogue.engine import Engine
from dialogue.messages import Address, Channel, OutgoingMessage
from dialogue.nlu import KeywordClassifier
from domain.calendar import WorkingCalendar
from domain.services import ComplaintDraft, get_or_create_citizen, register_complaint
from domain.storage import Database, sqlite_url, upgrade_async
from notifications.delivery import DeliveryWorker
from notifications.handlers import StatusNotifier, combine
from notifications.messenger import SendResult
from tests.e2e.test_telegram import PROBLEM, USER, Citizen, rows
from tests.fakes.dialogue import catalogue
from tests.fakes.messenger import FakeMessenger
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_state import SentMessage
from tests.fakes.vk import FakeVK

GROUP = -1001234567890
OPERATOR = 7007001
SUPERVISOR = 7007002
STRANGER = 7007003
REFUSED = "только операторы центра"


def now() -> datetime:
    return datetime.now(UTC)


class CitizenTelegram:
    """A minimal outbox ``Messenger`` for Telegram citizens: one try per call, 403 means
    unreachable (the real outbox messenger is built elsewhere)."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot

    async def send(self, to: Address, msg: OutgoingMessage, *,
                   key: str | None = None) -> SendResult:
        from aiogram.exceptions import TelegramForbiddenError

        from bots.telegram.render import render

        for call in render(int(to.chat_id), msg):
            try:
                await self.bot(call)
            except TelegramForbiddenError:
                return SendResult.UNREACHABLE
        return SendResult.OK


@dataclass
class Office:
    tg: FakeTelegram
    database: Database
    db_path: Path
    vk: FakeMessenger
    web: FakeMessenger
    vk_api: FakeVK  # where operators' photos are uploaded for VK citizens
    uploads: Path  # the web chat's uploads, where they are stored for web citizens
    workers: list[DeliveryWorker] = field(default_factory=list)

    def wake(self) -> None:
        for worker in self.workers:
            worker.wake()

    async def card(self, number: str, count: int = 1) -> SentMessage:
        self.wake()
        return await self.tg.wait_for_message(
            GROUP, f"Обращение №{number}", count=count,
            predicate=lambda m: bool(m.buttons), timeout=8)

    async def topic_says(self, thread_id: int, text: str, count: int = 1) -> SentMessage:
        self.wake()
        return await self.tg.wait_for_message(
            GROUP, text, count=count, predicate=lambda m: m.thread_id == thread_id, timeout=8)

    async def press(self, user: int, message: SentMessage, data: str, *,
                    forge: bool = False) -> dict[str, Any]:
        update = self.tg.press(user, message, data, chat_id=GROUP, forge=forge)
        query_id = update["callback_query"]["id"]
        await self.tg.wait_for(lambda: query_id in self.tg.callback_answers)
        self.wake()
        return self.tg.callback_answers[query_id]

    def status(self, number: str) -> str:
        [row] = rows(self.db_path, f"SELECT status FROM complaints WHERE number = '{number}'")
        return str(row["status"])

    def history(self, number: str, kind: str) -> list[str]:
        return [r["text"] for r in rows(self.db_path, (
            "SELECT h.text FROM complaint_history h JOIN complaints c ON c.id = h.complaint_id "
            f"WHERE c.number = '{number}' AND h.kind = '{kind}' ORDER BY h.id"))]

    def topic_of(self, number: str) -> int:
        [row] = rows(self.db_path, (
            "SELECT t.thread_id FROM complaint_topics t JOIN complaints c "
            f"ON c.id = t.complaint_id WHERE c.number = '{number}'"))
        return int(row["thread_id"])

    async def file(self, channel: str, chat_id: str, text: str = "Яма на дороге") -> str:
        """A complaint filed by a citizen of ``channel`` (through the use cases)."""
        async with self.database.uow() as uow:
            citizen = await get_or_create_citizen(uow, channel, chat_id, chat_id,
                                                  language="ru", now=now())
            citizen.give_consent(now(), "v1")
            await uow.citizens.save(citizen)
            complaint = await register_complaint(
                uow, catalogue(), WorkingCalendar(), citizen, channel,
                ComplaintDraft(text, "roads", "potholes", municipality="makhachkala"), now())
            await uow.commit()
        return complaint.number


@pytest.fixture
async def office(tmp_path: Path) -> AsyncIterator[Office]:
    from bots.backoffice import BackofficeNotifier
    from bots.backoffice.messenger import BackofficeDeliveryWorker, BackofficeMessenger
    from bots.backoffice.photos import PhotoRelay
    from bots.backoffice.router import build_backoffice_router
    from bots.telegram import build_dispatcher, make_bot, serve_telegram

    db_path = tmp_path / "bo.db"
    url = sqlite_url(db_path)
    await upgrade_async(url)
    cat = catalogue()
    database = Database.from_url(url, clock=now, event_handler=combine(
        StatusNotifier(cat), BackofficeNotifier(cat)))
    engine = Engine(database.uow, cat, WorkingCalendar(), KeywordClassifier(cat), now)
    operators = {OPERATOR: "operator", SUPERVISOR: "supervisor"}
    async with FakeTelegram() as tg, FakeVK(group_id=218000099) as vk_api:
        tg.add_user(USER, "Патимат", language_code="ru")
        tg.add_group(GROUP, forum=True)
        for user, name in ((OPERATOR, "Ислам"), (SUPERVISOR, "Марьям"), (STRANGER, "Гость")):
            tg.add_user(user, name)
        dp = build_dispatcher(engine)
        uploads = tmp_path / "uploads"
        photos = PhotoRelay(uploads_dir=uploads, vk_token=vk_api.token,
                            vk_api_url=vk_api.api_url)
        dp.include_router(build_backoffice_router(database, cat, now, GROUP, operators,
                                                  photos))
        stop = asyncio.Event()
        polling = asyncio.create_task(serve_telegram(
            engine, token=tg.token, api_url=tg.base_url, stop=stop, dispatcher=dp))
        bot = make_bot(tg.token, tg.base_url)
        vk, web = FakeMessenger(), FakeMessenger()
        office = Office(tg, database, db_path, vk, web, vk_api, uploads)
        office.workers = [
            BackofficeDeliveryWorker(database.uow,
                                     BackofficeMessenger(bot, database, cat, GROUP, clock=now),
                                     clock=now, idle_seconds=0.05),
            DeliveryWorker(database.uow, "telegram", CitizenTelegram(bot), clock=now,
                           idle_seconds=0.05),
            DeliveryWorker(database.uow, "vk", vk, clock=now, idle_seconds=0.05),
            DeliveryWorker(database.uow, "web", web, clock=now, idle_seconds=0.05),
        ]
        running = [asyncio.create_task(w.run()) for w in office.workers]
        try:
            yield office
        finally:
            for worker in office.workers:
                worker.stop()
            await asyncio.wait_for(asyncio.gather(*running), 5)
            stop.set()
            await asyncio.wait_for(polling, 5)
            with contextlib.suppress(Exception):
                await bot.session.close()
            await database.dispose()


async def file_in_telegram(tg: FakeTelegram) -> tuple[Citizen, str]:
    me = Citizen(tg)
    await me.text(PROBLEM)
    await me.press("cls:yes")
    await me.photo()
    await me.press("photo:done")
    await me.location(42.8816, 47.6389)
    await me.press("mun:yes")
    await me.press("consent:yes")
    await me.press("cmp:submit")
    assert "зарегистрировано" in me.said
    [row] = rows_of(tg)
    return me, row


def rows_of(tg: FakeTelegram) -> list[str]:
    import re

    found = re.findall(r"№(\d{4}-\d{6})", "\n".join(m.text or "" for m in tg.sent_to(USER)))
    return sorted(set(found))


# --- the whole story in Telegram ------------------------------------------------------------

async def test_a_telegram_complaint_is_worked_from_its_topic(office: Office) -> None:
    tg = office.tg
    me, number = await file_in_telegram(tg)
    card = await office.card(number)
    thread = card.thread_id
    assert thread is not None and office.topic_of(number) == thread
    topic = tg.topic(GROUP, thread)
    assert topic.name.startswith(f"№{number} · ЖКХ") and "Каспийск" in topic.name
    assert len(topic.name) <= 128
    text = card.text or ""
    assert "Статус: Зарегистрировано" in text and "третий день нет воды" in text
    assert "42.881600, 47.638900" in text and "Каспийск" in text, text
    assert "Первый ответ до" in text and "Решение до" in text
    datas = {b["callback_data"] for row in card.buttons for b in row}
    assert all(len(d.encode()) <= 64 for d in datas)
    cid = datas.pop().split(":")[1]
    # the citizen's photo went into the topic by file id, before the card
    [photo] = [m for m in tg.sent_to(GROUP) if m.method == "sendPhoto"]
    [stored] = rows(office.db_path, "SELECT ref FROM complaint_photos")
    assert photo.thread_id == thread and photo.photo == [stored["ref"].split(":", 1)[1]]

    # a stranger in the group is refused and nothing changes
    answer = await office.press(STRANGER, card, f"bo:{cid}:take")
    assert REFUSED in answer["text"] and office.status(number) == "new"
    tg.send_text(STRANGER, "Я тоже хочу ответить", chat_id=GROUP, thread_id=thread)
    await office.topic_says(thread, REFUSED)
    assert office.history(number, "operator_message") == []

    # forged buttons: another complaint's id, an illegal transition
    answer = await office.press(OPERATOR, card, "bo:999:take", forge=True)
    assert "не относится к этой теме" in answer["text"]
    answer = await office.press(OPERATOR, card, f"bo:{cid}:to:closed", forge=True)
    assert "Сейчас нельзя" in answer["text"] and office.status(number) == "new"
    answer = await office.press(OPERATOR, card, "bo:abc:take:" + "x" * 40, forge=True)
    assert answer.get("text")

    # the operator takes it: the status moves and the citizen is told
    before = len(tg.sent_to(USER))
    await office.press(OPERATOR, card, f"bo:{cid}:take")
    assert office.status(number) == "in_progress"
    await tg.wait_for_message(USER, "взято в работу", timeout=8)
    await office.topic_says(thread, "Статус: Зарегистрировано → В работе")

    # whatever the operator writes in the topic reaches the citizen and the history
    tg.send_text(OPERATOR, "Бригада приедет завтра <утром>", chat_id=GROUP, thread_id=thread)
    reply = await tg.wait_for_message(USER, "Ответ оператора по обращению", timeout=8)
    assert f"№{number}: Бригада приедет завтра <утром>" in (reply.text or "")
    assert office.history(number, "operator_message") == ["Бригада приедет завтра <утром>"]
    assert len(tg.sent_to(USER)) > before

    # the citizen adds details: they land in the topic
    await me.text("/start")
    await me.press("menu:my")
    await me.press(f"add:{cid}")
    await me.text("Вода так и не появилась")
    forwarded = await office.topic_says(thread, "Вода так и не появилась")
    assert "Гражданин дополнил" in (forwarded.text or "")

    # the topic is deleted: the next message opens a new one with the card, then arrives
    tg.delete_topic(GROUP, thread)
    await me.text("Соседи тоже без воды")
    await office.card(number, count=2)
    new_thread = office.topic_of(number)
    assert new_thread != thread
    await office.topic_says(new_thread, "Соседи тоже без воды")

    # an operator writing in the new topic still reaches the citizen
    tg.send_text(OPERATOR, "Уточняем у водоканала", chat_id=GROUP, thread_id=new_thread)
    await tg.wait_for_message(USER, "Уточняем у водоканала", timeout=8)

    # answer and close: the next message is the answer, then the complaint is closed
    new_card = await office.card(number, count=2)
    await office.press(OPERATOR, new_card, f"bo:{cid}:ans")
    await office.topic_says(new_thread, "Напишите ответ гражданину")
    tg.send_text(OPERATOR, "Подача воды восстановлена.", chat_id=GROUP, thread_id=new_thread)
    await office.topic_says(new_thread, "Ответ отправлен, обращение закрыто")
    assert office.status(number) == "closed"
    answer_msg = await tg.wait_for_message(USER, "Подача воды восстановлена.", timeout=8)
    assert "Ответ на ваше обращение" in (answer_msg.text or "") or "Ответ" in (
        answer_msg.text or "")
    await tg.wait_for_message(USER, "закрыто", timeout=8)
    assert office.history(number, "operator_message")[-1] == "Подача воды восстановлена."
    assert [c for c in tg.calls if c.status not in (200, 400)] == []


async def test_a_closed_topic_is_reopened_and_the_message_delivered(office: Office) -> None:
    number = await office.file("vk", "5001")
    card = await office.card(number)
    assert card.thread_id is not None
    office.tg.close_topic(GROUP, card.thread_id)
    cid = card.buttons[0][0]["callback_data"].split(":")[1]
    # an event line for the closed topic: the topic is reopened, not replaced
    async with office.database.uow() as uow:
        from domain.complaint import Status
        from domain.services import change_status

        await change_status(uow, int(cid), Status.IN_PROGRESS, actor="portal:admin",
                            now=now())
        await uow.commit()
    await office.topic_says(card.thread_id, "В работе")
    assert office.tg.topic(GROUP, card.thread_id).closed is False
    assert office.topic_of(number) == card.thread_id
    assert len(office.tg.calls_of("createForumTopic")) == 1


# --- the card follows the complaint ---------------------------------------------------------

async def change(office: Office, cid: int, *statuses: str) -> None:
    """Status changes made elsewhere (the portal), in one commit."""
    from domain.complaint import Status
    from domain.services import change_status

    async with office.database.uow() as uow:
        for status in statuses:
            await change_status(uow, cid, Status(status), actor="portal:admin", now=now())
        await uow.commit()


def backoffice_rows(office: Office) -> list[str]:
    return [r["status"] for r in rows(office.db_path,
                                      "SELECT status FROM outbox WHERE channel = 'backoffice'")]


async def test_the_card_is_edited_when_the_status_or_sector_changes(office: Office) -> None:
    tg = office.tg
    number = await office.file("vk", "8008")
    card = await office.card(number)
    cid = int(card.buttons[0][0]["callback_data"].split(":")[1])
    assert "Статус: Зарегистрировано" in (card.text or "")
    await office.press(OPERATOR, card, f"bo:{cid}:take")
    office.wake()
    await tg.wait_for(lambda: "Статус: В работе" in (card.text or ""), 8)  # edited in place
    assert card.edits and card.buttons  # the buttons stay
    await office.topic_says(card.thread_id, "Статус: Зарегистрировано → В работе")
    await office.press(OPERATOR, card, f"bo:{cid}:c:waste:illegal_dump", forge=True)
    office.wake()
    await tg.wait_for(lambda: "ТКО" in (card.text or ""), 8)
    # two changes at once: the first edit shows the last state, the second has nothing
    # to change ("message is not modified") and is done all the same
    await change(office, cid, "answered", "closed")
    office.wake()
    await tg.wait_for(lambda: "Статус: Закрыто" in (card.text or ""), 8)
    await tg.wait_for(lambda: set(backoffice_rows(office)) == {"sent"}, 8)
    assert any(c.status == 400 for c in tg.calls_of("editMessageText"))
    assert [m.message_id for m in tg.sent_to(GROUP) if m.buttons and "Обращение №" in (
        m.text or "")] == [card.message_id]  # still the one card


async def test_a_deleted_card_is_posted_again(office: Office) -> None:
    tg = office.tg
    number = await office.file("vk", "9009")
    card = await office.card(number)
    cid = int(card.buttons[0][0]["callback_data"].split(":")[1])
    card.deleted = True  # someone deleted the card in the topic
    await change(office, cid, "in_progress")
    fresh = await office.card(number)
    assert fresh.message_id != card.message_id and fresh.thread_id == card.thread_id
    assert "Статус: В работе" in (fresh.text or "")
    await change(office, cid, "answered")
    office.wake()
    await tg.wait_for(lambda: "Статус: Дан ответ" in (fresh.text or ""), 8)  # edited


# --- other channels ---------------------------------------------------------------------------

async def test_vk_and_web_citizens_get_the_operators_messages(office: Office) -> None:
    tg = office.tg
    vk_number = await office.file("vk", "3003")
    web_number = await office.file("web", "web-abc")
    vk_card = await office.card(vk_number)
    web_card = await office.card(web_number)
    assert vk_card.thread_id != web_card.thread_id
    tg.send_text(OPERATOR, "Ответ для ВК", chat_id=GROUP, thread_id=vk_card.thread_id)
    tg.send_text(OPERATOR, "Ответ для веба", chat_id=GROUP, thread_id=web_card.thread_id)
    await tg.wait_for(lambda: office.vk.texts("3003") and office.web.texts("web-abc"), 8)
    assert office.vk.texts("3003") == [
        f"Ответ оператора по обращению №{vk_number}: Ответ для ВК"]
    assert office.web.texts("web-abc") == [
        f"Ответ оператора по обращению №{web_number}: Ответ для веба"]
    assert office.history(vk_number, "operator_message") == ["Ответ для ВК"]
    # nothing for these citizens went to Telegram
    assert tg.sent_to(USER) == []


async def test_an_operator_message_handed_out_again_is_relayed_once(office: Office) -> None:
    """Telegram hands a message out again when the process died before confirming it."""
    tg = office.tg
    number = await office.file("vk", "6006")
    card = await office.card(number)
    update = tg.send_text(OPERATOR, "Бригада выехала", chat_id=GROUP, thread_id=card.thread_id)
    await tg.wait_for(lambda: office.vk.texts("6006"), 8)
    tg.world.push_update("message", update["message"])  # the same message again
    tg.send_text(OPERATOR, "Будут через час", chat_id=GROUP, thread_id=card.thread_id)
    await tg.wait_for(lambda: len(office.vk.texts("6006")) >= 2, 8)  # after the repeat
    assert office.history(number, "operator_message") == ["Бригада выехала",
                                                          "Будут через час"]
    assert len(office.vk.texts("6006")) == 2


async def test_an_operators_photo_reaches_citizens_in_every_channel(office: Office) -> None:
    """Telegram by file id, VK through VK's photo upload, the web chat from its uploads;
    the caption comes with it, and the history records both."""
    from tests.fakes.images import png_bytes

    tg = office.tg
    me, tg_number = await file_in_telegram(tg)
    vk_number = await office.file("vk", "3113")
    web_number = await office.file("web", "web-photo-1")
    image = png_bytes()
    file_ids = {}
    for number in (tg_number, vk_number, web_number):
        card = await office.card(number)
        update = tg.send_photo(OPERATOR, image, caption="Так выглядит ремонт", chat_id=GROUP,
                               thread_id=card.thread_id)
        file_ids[number] = update["message"]["photo"][-1]["file_id"]
    office.wake()
    relayed = await tg.wait_for(lambda: [m for m in tg.sent_to(USER) if m.photo], 8)
    assert relayed[-1].photo == [file_ids[tg_number]]  # by reference, not uploaded again
    await tg.wait_for_message(USER, "Так выглядит ремонт", timeout=8)
    await tg.wait_for(lambda: office.vk.sent and office.web.sent, 30)  # imports vkbottle
    [(_, to_vk)] = office.vk.sent
    [(_, to_web)] = office.web.sent
    assert "Так выглядит ремонт" in to_vk.text and "Так выглядит ремонт" in to_web.text
    [vk_photo] = to_vk.attachments
    assert vk_photo.ref.startswith("vk:photo")
    assert [p.data for p in office.vk_api.world.photos.values()] == [image]
    assert office.vk_api.calls_of("photos.saveMessagesPhoto")
    # what the VK outbox worker makes of it: messages.send with the uploaded photo
    from bots.vk import make_api
    from bots.vk.outbox import VkOutboxMessenger

    office.vk_api.add_user(3113)
    api = make_api(office.vk_api.token, office.vk_api.api_url)
    try:
        assert await VkOutboxMessenger(api).send(Address(Channel.VK, "3113"), to_vk,
                                                 key="operator-photo") is SendResult.OK
    finally:
        await api.http_client.close()
    [on_vk] = office.vk_api.sent_to(3113)
    assert [a.split("_")[:2] for a in on_vk.attachments] == [vk_photo.ref[3:].split("_")[:2]]
    [web_photo] = to_web.attachments
    assert web_photo.ref.startswith("web:")
    assert (office.uploads / web_photo.ref[4:]).read_bytes() == image
    for number in (tg_number, vk_number, web_number):
        assert office.history(number, "operator_message") == ["Так выглядит ремонт"]
        assert office.history(number, "attachment")[-1:] == [""]
    refs = rows(office.db_path, "SELECT data FROM complaint_history WHERE kind = 'attachment'"
                " AND actor LIKE '%tg:7007001%'")
    assert sorted(r["data"] for r in refs) == sorted(
        f'{{"ref": "telegram:{f}"}}' for f in file_ids.values())


# --- reject, duplicate, unreachable, help --------------------------------------------------------

async def test_reject_with_a_reason_and_mark_a_duplicate(office: Office) -> None:
    first = await office.file("vk", "4004", "Яма у школы")
    second = await office.file("vk", "4004", "Та же яма у школы")
    third = await office.file("vk", "4004", "Реклама")
    card2 = await office.card(second)
    card3 = await office.card(third)
    cid2 = card2.buttons[0][0]["callback_data"].split(":")[1]
    cid3 = card3.buttons[0][0]["callback_data"].split(":")[1]

    await office.press(OPERATOR, card3, f"bo:{cid3}:rej")
    await office.topic_says(card3.thread_id, "причину отклонения")
    assert office.status(third) == "new"  # nothing happens until the reason comes
    office.tg.send_text(OPERATOR, "Не относится к компетенции ЦУР", chat_id=GROUP,
                        thread_id=card3.thread_id)
    await office.topic_says(card3.thread_id, "Обращение отклонено")
    assert office.status(third) == "rejected"
    await office.tg.wait_for(lambda: any("Не относится к компетенции" in t
                                         for t in office.vk.texts("4004")), 8)

    await office.press(OPERATOR, card2, f"bo:{cid2}:dup")
    office.tg.send_text(OPERATOR, "2099-000001", chat_id=GROUP, thread_id=card2.thread_id)
    await office.topic_says(card2.thread_id, "не найдено")
    assert office.status(second) == "new"
    office.tg.send_text(OPERATOR, f"№{first}", chat_id=GROUP, thread_id=card2.thread_id)
    await office.topic_says(card2.thread_id, f"дубликат обращения №{first}")
    assert office.status(second) == "duplicate"
    # a plain operator may not reopen; a supervisor may
    answer = await office.press(OPERATOR, card2, f"bo:{cid2}:to:reopened", forge=True)
    assert "роль" in answer["text"] and office.status(second) == "duplicate"
    await office.press(SUPERVISOR, card2, f"bo:{cid2}:to:reopened", forge=True)
    assert office.status(second) == "reopened"


async def test_a_citizen_who_blocked_the_bot_is_reported_in_the_topic(office: Office) -> None:
    tg = office.tg
    me, number = await file_in_telegram(tg)
    card = await office.card(number)
    cid = card.buttons[0][0]["callback_data"].split(":")[1]
    tg.block(USER)
    await office.press(OPERATOR, card, f"bo:{cid}:take")  # the notice meets a 403
    await tg.wait_for(lambda: rows(office.db_path, "SELECT reachable FROM citizens")
                      == [{"reachable": 0}], 8)
    tg.send_text(OPERATOR, "Вы нас слышите?", chat_id=GROUP, thread_id=card.thread_id)
    await office.topic_says(card.thread_id, "заблокировал бота")
    assert office.history(number, "operator_message") == ["Вы нас слышите?"]


async def test_general_is_ignored_except_help(office: Office) -> None:
    tg = office.tg
    tg.send_text(OPERATOR, "Всем привет", chat_id=GROUP)
    tg.send_text(OPERATOR, "/help", chat_id=GROUP)
    help_msg = await tg.wait_for_message(GROUP, "Рабочий чат ЦУР")
    tg.send_text(STRANGER, "/help", chat_id=GROUP)
    await tg.wait_for_message(GROUP, REFUSED)
    await asyncio.sleep(0.3)
    assert len(tg.sent_to(GROUP)) == 2 and help_msg.thread_id is None
    assert rows(office.db_path, "SELECT * FROM complaint_history") == []
