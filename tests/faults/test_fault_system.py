"""Fault suite, the whole system: ``tsur run`` against a Telegram and a VK that fail a
fifth of the calls (429 / VK 6 and 9, 5xx, VK 10, connections dropped before or after
the method took effect).

Citizens file complaints in Telegram, VK and the web chat; an operator (another process)
takes each into work, answers and closes it; staff schedule a broadcast. Everything is
delivered in the end, nothing crashes, and the log holds no traceback and no error.

The dialogue's own replies are retried a few times by the channel and then given up (they
are answers, not outbox messages): a citizen who got no answer sends the step again, as
people do; the counts show how often. Timeouts are left to the in-process outbox test:
``tsur run``'s clients wait up to a minute, and there is no setting to shorten that.
The outbox backoff is shortened to 0.2–2 s (no setting either; see
:mod:`tests.crash.child`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import ClientSession

from domain.complaint import Status
from domain.services import answer_complaint, change_status
from notifications.broadcasts import BroadcastService
from tests.crash.citizens import Citizen, TelegramCitizen, VkCitizen, WebCitizen, check_citizen
from tests.crash.harness import KNOWN, Trials, seed_from_env, summary_line, tracebacks, wait_until
from tests.crash.launcher import Launcher, Tsur
from tests.crash.report import report
from tests.crash.system import free_port, now, other_process, rows, tsur_env
from tests.faults.fakes import FaultyTelegram, FaultyVK
from tests.faults.test_fault_delivery import expected_parts

CITIZENS = {"telegram": 6, "vk": 4, "web": 2}
SLOTS = 2  # of each channel at a time
GROUP_ID = 218000080
PROBLEM = "В Каспийске на улице Ленина третий день нет воды в доме {n}"
PATIENCE = 10.0  # seconds without an answer before a citizen sends the step again


async def test_tsur_run_delivers_everything_while_a_fifth_of_the_calls_fail(
        tmp_path: Path, fork_server) -> None:
    seed = seed_from_env()
    began = time.monotonic()
    data = tmp_path / "var"
    db = data / "tsur.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with FaultyTelegram(seed) as tg, FaultyVK(GROUP_ID, seed + 1) as vk, \
            ClientSession() as http, other_process(data) as system:
        tg.hang_rate = vk.hang_rate = 0.0
        tg.fault_rate = vk.fault_rate = 0.2
        env = tsur_env(data, port, tg=tg, vk=vk) | {"TSUR_BROADCAST_CHECK_SECONDS": "1"}
        launcher = Launcher(fork_server, env, tmp_path / "logs", backoff=(0.2, 2.0, 2.0))

        async def ready(tsur: Tsur) -> None:
            await tg.wait_for(lambda: any(c.time >= tsur.started
                                          for c in tg.calls_of("getUpdates")), 60)
            await vk.wait_for(lambda: any(t >= tsur.started for t in vk.polls), 60)

        trials = Trials(launcher, random.Random(seed), ready)
        citizens: list[Citizen] = []
        numbers = itertools.count(1)

        async def slot(channel: str, count: int) -> None:
            for _ in range(count):
                n = next(numbers)
                if channel == "telegram":
                    driver: Any = TelegramCitizen(tg, 5_700_000 + n)
                elif channel == "vk":
                    driver = VkCitizen(vk, 7_700_000 + n)
                else:  # stays connected: the notices to come go to an open page only
                    driver = WebCitizen(base, f"fault-web-{n:06d}", http)
                citizen = Citizen(driver, trials, PROBLEM.format(n=n), patience=PATIENCE)
                citizens.append(citizen)
                await citizen.run()

        tsur = await trials.run(0)
        try:
            await asyncio.wait_for(asyncio.gather(*(
                slot(channel, count // SLOTS) for channel, count in CITIZENS.items()
                for _ in range(SLOTS))), 240)
            b = await BroadcastService(system.database, catalogue=system.catalogue).create(
                "Завтра плановое отключение воды с 9 до 17 часов", created_by="cli:faults",
                send_at=now())
            for c in citizens:
                assert c.number is not None or c.submit_unanswered, c.steps
                [complaint] = rows(db, "SELECT id, number FROM complaints WHERE number = ?",
                                   c.number) if c.number else rows(
                    db, "SELECT c.id, c.number FROM complaints c JOIN identities i ON "
                        "i.citizen_id = c.citizen_id WHERE i.external_id = ?", c.driver.user)
                for step in ("in_progress", "answer", "closed"):
                    async with system.database.uow() as uow:
                        if step == "answer":
                            await answer_complaint(uow, complaint["id"],
                                                   f"Воду дали: {complaint['number']}",
                                                   actor="operator:1", now=now())
                        else:
                            await change_status(uow, complaint["id"], Status(step),
                                                actor="operator:1", now=now(),
                                                reason="Проверено")
                        await uow.commit()
            await wait_until(lambda: not rows(db, "SELECT id FROM outbox WHERE status = "
                                                  "'pending'")
                             and rows(db, "SELECT state FROM broadcasts")[0]["state"] == "done",
                             180, "everything to be delivered")
            assert await tsur.stop() == 0, tsur.log()[-3000:]
        finally:
            for c in citizens:
                if isinstance(c.driver, WebCitizen):
                    await c.driver.close()
            await launcher.close()

    problems = [p for c in citizens for p in check_citizen(db, c, replies_may_fail=True)]
    assert problems == [], "\n".join(problems)
    outbox = rows(db, "SELECT * FROM outbox ORDER BY id")
    assert [dict(r) for r in outbox if r["status"] != "sent"] == []
    assert rows(db, "SELECT recipients FROM broadcasts WHERE id = ?", b.id)[0][
        "recipients"] == CITIZENS["telegram"] + CITIZENS["vk"]
    web_frames = {c.driver.user: [f.get("text", "").strip() for f in c.driver.frames]
                  for c in citizens if isinstance(c.driver, WebCitizen)}
    expected: Counter[tuple[str, str, str]] = Counter()  # (channel, chat, text) → parts
    for r in outbox:
        parts = ([json.loads(r["payload"])["text"].strip()] if r["channel"] == "web"
                 else expected_parts(r))
        expected.update((r["channel"], r["chat_id"], p) for p in parts)
    unseen, twice, unexplained = [], 0, []
    for (channel, chat, text), n in expected.items():
        seen = (web_frames[chat] if channel == "web"
                else [(m.text or m.caption or "").strip() for m in tg.sent_to(int(chat))]
                if channel == "telegram" else [m.text.strip() for m in vk.sent_to(int(chat))])
        if text not in seen:
            unseen.append((channel, chat, text[:50]))
        extra = max(0, seen.count(text) - n)  # two rows with one text are shown twice
        # Telegram has no idempotency key: a message shows twice only where the reply to
        # a send of it, to this chat, was lost after it went through. VK deduplicates by
        # random_id and the web has no faults: there, never.
        lost = tg.lost_messages[int(chat), text] if channel == "telegram" else 0
        twice += extra
        if extra > lost:
            unexplained.append((channel, chat, text[:50], f"shown {n} + {extra}",
                                f"replies lost {lost}", calls_to(tg, chat)
                                if channel == "telegram" else []))
    assert unseen == []
    assert unexplained == [], "\n".join(map(str, unexplained))
    log = launcher.runs[0].log()
    assert tracebacks(log) == [], tracebacks(log)[:3]
    errors = [line for line in log.splitlines() if " ERROR " in line and KNOWN[0] not in line]
    assert errors == [], errors[:5]
    steps = [s for c in citizens for s in c.steps]
    report("faults", summary_line(
        "tsur run", seed=seed, citizens=len(citizens),
        complaints=len(rows(db, "SELECT id FROM complaints")),
        accepted=sum(s.acked for s in steps),
        replies_given_up=sum(len(c.silent) for c in citizens),
        outbox_delivered=len(outbox), telegram_faults=dict(tg.faults),
        vk_faults=dict(vk.faults), outbox_shown_twice=twice,
        telegram_sends_with_reply_lost=sum(tg.lost_messages.values()),
        warnings=sum(" WARNING " in line for line in log.splitlines()),
        seconds=round(time.monotonic() - began)))


def calls_to(tg: FaultyTelegram, chat: str) -> list[str]:
    """The fake's log of the calls to ``chat``: when, the method, its answer, the text."""
    return [f"{c.time:.3f} {c.method} {c.status} "
            f"{str(c.params.get('text') or c.params.get('caption') or '')[:40]!r}"
            for c in tg.calls if str(c.params.get("chat_id")) == chat]
