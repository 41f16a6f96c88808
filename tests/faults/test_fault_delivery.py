"""Fault suite, the outbox: Telegram and VK fail a fifth of the calls, everything is
delivered all the same.

Real :class:`~notifications.delivery.DeliveryWorker` s with the real aiogram ``Bot`` and
vkbottle ``API`` over a real SQLite file, wired as ``tsur run`` wires them, deliver
status notices, operators' answers (some long enough to be split in two) and a
broadcast while the fakes answer 429 / VK 6 and 9, 5xx, VK 10, drop the connection
(before or after the method took effect) or hang past the client's timeout. The
workers run on a fake clock (``tsur run`` has no setting for the backoff, and waiting it
out for real would take hours): when nothing is due the test moves the clock to the
next due message, so flood waits and backoff are stepped through, never waited for.

Checked: every message ends sent (none failed or given up); every citizen sees each of
theirs; a Telegram message shows twice only where a reply was lost after the method
took effect (Telegram has no idempotency key); a VK citizen never sees one twice (the
resend carries the same ``random_id``); no error was logged and no worker raised.
"""

from __future__ import annotations

import html
import itertools
import json
import logging
import random
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientTimeout

from config.bootstrap import bootstrap
from config.settings import Settings
from domain.calendar import WorkingCalendar
from domain.complaint import Status
from domain.services import (
    ComplaintDraft,
    answer_complaint,
    change_status,
    get_or_create_citizen,
    register_complaint,
)
from domain.storage import upgrade_async
from notifications.broadcasts import BroadcastService
from notifications.delivery import DeliveryWorker
from notifications.ratelimit import DEFAULT_LIMITS, RateLimiter
from tests.crash.harness import seed_from_env, summary_line
from tests.crash.report import report
from tests.crash.system import rows
from tests.fakes.messenger import FakeClock
from tests.faults.fakes import FaultyTelegram, FaultyVK

TG_CITIZENS, VK_CITIZENS = 40, 20
GROUP_ID = 218000079
CLIENT_TIMEOUT = 0.5  # seconds; the fakes hang for 1 s
LONG = "Подробный ответ. " * 320  # about 5,400 characters: two Telegram messages


async def test_the_outbox_delivers_everything_while_a_fifth_of_the_calls_fail(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from vkbottle import API, AiohttpClient

    from bots.telegram import make_bot
    from bots.telegram.outbox import TelegramOutboxMessenger
    from bots.vk.channel import GiveUpRescheduler
    from bots.vk.outbox import VkOutboxMessenger

    seed = seed_from_env()
    rng = random.Random(seed)
    began = time.monotonic()
    caplog.set_level(logging.INFO)
    settings = Settings(data_dir=tmp_path / "var", nlu="keyword")
    await upgrade_async(settings.sqlalchemy_url)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    system = bootstrap(settings, clock=clock.now)  # the event handlers of `tsur run`
    db = settings.data_dir / "tsur.db"
    async with FaultyTelegram(seed) as tg, FaultyVK(GROUP_ID, seed + 1) as vk:
        people = ([("telegram", 5_600_000 + i) for i in range(TG_CITIZENS)]
                  + [("vk", 7_600_000 + i) for i in range(VK_CITIZENS)])
        for channel, user in people:
            if channel == "telegram":
                tg.add_user(user, f"Житель {user}", language_code="ru")
            else:
                vk.add_user(user, "Житель", str(user))
        await file_and_answer(system, clock, people)
        broadcasts = BroadcastService(system.database, catalogue=system.catalogue,
                                      clock=clock.now, batch_size=25)
        b = await broadcasts.create("Завтра плановое отключение воды с 9 до 17 часов",
                                    created_by="cli:faults", send_at=clock.now())
        await broadcasts.run_due(clock.now())

        bot = make_bot(tg.token, tg.base_url)
        bot.session.timeout = CLIENT_TIMEOUT
        api = API(vk.token, http_client=AiohttpClient(timeout=ClientTimeout(
            total=CLIENT_TIMEOUT)), request_rescheduler=GiveUpRescheduler())
        api.API_URL = vk.api_url
        workers = [DeliveryWorker(system.database.uow, channel, messenger,
                                  limiter=RateLimiter(DEFAULT_LIMITS[channel], clock.monotonic),
                                  clock=clock.now, sleep=clock.sleep, jitter=rng.random)
                   for channel, messenger in (("telegram", TelegramOutboxMessenger(bot)),
                                              ("vk", VkOutboxMessenger(api)))]
        try:
            while True:
                claimed = sum([await w.run_once() for w in workers])
                if claimed:
                    continue
                due = rows(db, "SELECT min(max(not_before, coalesce(locked_until, "
                               "not_before))) AS at FROM outbox WHERE status = 'pending'")
                if due[0]["at"] is None:
                    break
                at = datetime.fromisoformat(due[0]["at"]).replace(tzinfo=UTC)
                clock.advance(max(0.1, (at - clock.now()).total_seconds()))
                assert time.monotonic() - began < 240, "the outbox did not drain"
            await broadcasts.run_due(clock.now())  # marks the broadcast done
        finally:
            await bot.session.close()
            await api.http_client.close()
            await system.close()

    outbox = rows(db, "SELECT * FROM outbox ORDER BY id")
    assert [dict(r) for r in outbox if r["status"] != "sent"] == []
    assert rows(db, "SELECT state FROM broadcasts WHERE id = ?", b.id)[0]["state"] == "done"
    shown = {("telegram", str(m.chat_id)): [] for m in tg.world.sent}
    shown |= {("vk", str(m.peer_id)): [] for m in vk.world.sent}
    for m in tg.world.sent:
        shown["telegram", str(m.chat_id)].append((m.text or m.caption or "").strip())
    for m in vk.world.sent:
        shown["vk", str(m.peer_id)].append(m.text.strip())
    unseen, out_of_order = [], 0
    for (channel, chat), chat_rows in itertools.groupby(
            sorted(outbox, key=lambda r: (r["channel"], r["chat_id"], r["id"])),
            key=lambda r: (r["channel"], r["chat_id"])):
        seen = shown.get((channel, chat), [])
        spans = []
        for r in chat_rows:
            parts = expected_parts(r)
            unseen += [(channel, chat, p[:60]) for p in parts if p not in seen]
            first = [seen.index(p) for p in parts if p in seen]
            spans.append((min(first, default=0), max(first, default=0)))
        # a later message (or part of one) shown before an earlier one was complete
        out_of_order += sum(any(later[0] < span[1] for later in spans[i + 1:])
                            for i, span in enumerate(spans))
    assert unseen == []
    # a Telegram message shows twice only where the reply to a send of it, to that chat,
    # was lost after it went through (two rows with one text are shown twice, rightly)
    expected = Counter((r["chat_id"], p) for r in outbox if r["channel"] == "telegram"
                       for p in expected_parts(r))
    tg_shown = Counter((m.chat_id, (m.text or m.caption or "").strip()) for m in tg.world.sent)
    tg_twice, unexplained = 0, []
    for (chat, text), n in tg_shown.items():
        extra = n - max(1, expected[str(chat), text])
        tg_twice += max(0, extra)
        if extra > tg.lost_messages[chat, text]:
            unexplained.append((chat, text[:50], n, tg.lost_messages[chat, text]))
    assert unexplained == [], unexplained
    vk_shown = Counter((m.peer_id, m.text) for m in vk.world.sent)
    assert [k for k, n in vk_shown.items() if n > 1] == []
    errors = [r for r in caplog.records if (r.levelno >= logging.ERROR or r.exc_info)
              and not r.name.startswith("aiohttp.")]  # the fakes' own server
    assert errors == [], [r.getMessage() for r in errors[:5]]
    report("faults", summary_line(
        "outbox (in process, fake clock)", seed=seed, messages=len(outbox),
        delivered=sum(r["status"] == "sent" for r in outbox),
        attempts=sum(r["attempts"] for r in outbox),
        telegram_faults=dict(tg.faults), vk_faults=dict(vk.faults),
        tg_shown_twice=tg_twice, tg_replies_lost_after_apply=sum(tg.lost_messages.values()),
        vk_shown_twice=0, shown_out_of_order=out_of_order, fake_seconds=round(clock.elapsed),
        seconds=round(time.monotonic() - began)))


async def file_and_answer(system, clock: FakeClock, people: list[tuple[str, int]]) -> None:
    """Each citizen files a complaint; an operator takes it into work, answers (every
    fifth answer long) and closes it: three notices each."""
    for index, (channel, user) in enumerate(people):
        async with system.database.uow() as uow:
            citizen = await get_or_create_citizen(uow, channel, str(user), str(user),
                                                  language="ru", now=clock.now())
            citizen.give_consent(clock.now(), system.catalogue.consent_version)
            await uow.citizens.save(citizen)
            complaint = await register_complaint(
                uow, system.catalogue, WorkingCalendar(), citizen, channel,
                ComplaintDraft(f"Нет воды в доме {index}", "housing", "no_water",
                               municipality="makhachkala"), clock.now())
            await uow.commit()
        assert complaint.id is not None
        for step in ("in_progress", "answer", "closed"):
            clock.advance(1)
            async with system.database.uow() as uow:
                if step == "answer":
                    text = LONG if index % 5 == 0 else f"Воду дали, дом {index}."
                    await answer_complaint(uow, complaint.id, text, actor="operator:1",
                                           now=clock.now())
                else:
                    await change_status(uow, complaint.id, Status(step), actor="operator:1",
                                        now=clock.now(), reason="Проверено")
                await uow.commit()


def expected_parts(row: Any) -> list[str]:
    """The texts a citizen sees for one outbox row, as the channel renders it."""
    from bots.telegram.render import render as telegram_render
    from bots.vk.render import render as vk_render
    from dialogue.messages import OutgoingMessage

    msg = OutgoingMessage.from_json(json.loads(row["payload"]))
    if row["channel"] == "telegram":
        return [html.unescape(text).strip() for call in telegram_render(int(row["chat_id"]), msg)
                if (text := getattr(call, "text", None))]
    return [p["message"].strip() for p in vk_render(int(row["chat_id"]), msg,
                                            key=row["dedup_key"]).sends]


# --- regressions found by the crash and fault suites ----------------------------------------

async def _queue(store: Any, clock: FakeClock, chat_id: str, text: str) -> None:
    from dialogue.messages import Address, Channel, OutgoingMessage
    from notifications.outbox import new_message

    async with store.unit_of_work() as uow:
        assert await uow.outbox.add(new_message(
            "status", Address(Channel.TELEGRAM, chat_id), OutgoingMessage(text),
            dedup_key=f"{chat_id}:{text}", now=clock.now(), priority=20))
        await uow.commit()


async def test_a_chat_waiting_for_its_pace_does_not_hold_the_other_chats_back() -> None:
    """Two notices to each of ten citizens, one after the other (a status change and the
    answer, a closing notice and its survey): the second to a chat must wait a second for
    Telegram's per-chat pace, but the other chats need not wait with it."""
    from tests.fakes.memory import MemoryStore
    from tests.fakes.messenger import FakeMessenger

    store, clock, messenger = MemoryStore(), FakeClock(), FakeMessenger()
    for chat in range(10):
        for text in ("taken into work", "answered"):
            await _queue(store, clock, str(chat), text)
    worker = DeliveryWorker(store.unit_of_work, "telegram", messenger,
                            limiter=RateLimiter(DEFAULT_LIMITS["telegram"], clock.monotonic),
                            clock=clock.now, sleep=clock.sleep)
    while await worker.run_once():
        pass
    assert len(messenger.sent) == 20
    for chat in range(10):
        assert messenger.texts(str(chat)) == ["taken into work", "answered"]
    # 20 messages at 30/s with 1/s per chat: about a second, not one second per chat
    assert clock.elapsed < 2, clock.sleeps


async def test_a_retried_answer_is_not_overtaken_by_the_closing_notice() -> None:
    from notifications.messenger import TransientError
    from tests.fakes.memory import MemoryStore
    from tests.fakes.messenger import FakeMessenger

    store, clock, messenger = MemoryStore(), FakeClock(), FakeMessenger()
    await _queue(store, clock, "1", "answer: the water is back")
    await _queue(store, clock, "1", "your complaint is closed")
    messenger.fail("1", TransientError("502 Bad Gateway"))
    worker = DeliveryWorker(store.unit_of_work, "telegram", messenger, clock=clock.now,
                            sleep=clock.sleep, jitter=lambda: 0.5)
    for _ in range(20):
        await worker.run_once()
        clock.advance(5)
    assert messenger.texts("1") == ["answer: the water is back", "your complaint is closed"]
