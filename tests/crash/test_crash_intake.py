"""Crash suite, intake: ``kill -9`` of ``tsur run`` while citizens file complaints in
Telegram, VK and the web chat, step by step.

Citizens keep going across the kills (:mod:`tests.crash.citizens`): a step the bot did
not answer is sent again once it is back. After the last restart:

- every citizen told "complaint №N registered" has complaint N, and has exactly one;
- a complaint holds what its citizen said (text, location, municipality), every photo
  the bot acknowledged, and no photo twice (a redelivered update must not record twice);
- no step went unanswered without a kill to blame, and the bot never apologised.

Telegram confirms an update by asking for the next ones: aiogram asks as soon as it has
handed the batch to its handler tasks, so an update being handled when the process dies
is usually confirmed already and never comes back (the citizen sends it again). The
counts show how often each happened.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from pathlib import Path
from typing import Any

from aiohttp import ClientSession

from tests.crash.citizens import (
    Citizen,
    Step,
    TelegramCitizen,
    VkCitizen,
    WebCitizen,
    check_citizen,
    complaints_of,
)
from tests.crash.fakes import HoldingTelegram, RecordingTelegram, RecordingVK
from tests.crash.harness import TRIALS, Trials, seed_from_env, summary_line, tracebacks
from tests.crash.launcher import Launcher, Tsur
from tests.crash.report import report
from tests.crash.system import free_port, other_process, rows, tsur_env

PROBLEM = "В Каспийске на улице Ленина третий день нет воды в доме {n}"
SLOTS = {"telegram": 3, "vk": 2, "web": 2}  # citizens writing at the same time
GROUP_ID = 218000077


async def test_citizens_filing_complaints_lose_nothing_across_kill_9(
        tmp_path: Path, fork_server) -> None:
    seed = seed_from_env()
    rng = random.Random(seed)
    began = time.monotonic()
    data = tmp_path / "var"
    db = data / "tsur.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with RecordingTelegram() as tg, RecordingVK(GROUP_ID) as vk, \
            ClientSession() as http:
        async with other_process(data):
            pass  # migrated before the first start, as `make run` leaves it
        launcher = Launcher(fork_server, tsur_env(data, port, tg=tg, vk=vk), tmp_path / "logs")

        async def ready(tsur: Tsur) -> None:
            await tg.wait_for(lambda: any(c.time >= tsur.started
                                          for c in tg.calls_of("getUpdates")), 60)
            await vk.wait_for(lambda: any(t >= tsur.started for t in vk.polls), 60)

        trials = Trials(launcher, rng, ready, min_up=0.3, max_up=2.5)
        citizens: list[Citizen] = []
        ids = itertools.count(1)
        stopping = asyncio.Event()

        async def slot(channel: str) -> None:
            while not stopping.is_set():
                n = next(ids)
                if channel == "telegram":
                    driver: Any = TelegramCitizen(tg, 5_400_000 + n)
                elif channel == "vk":
                    driver = VkCitizen(vk, 7_400_000 + n)
                else:
                    driver = WebCitizen(base, f"crash-web-{n:06d}", http)
                citizen = Citizen(driver, trials, PROBLEM.format(n=n))
                citizens.append(citizen)
                try:
                    await citizen.run()
                finally:
                    if isinstance(driver, WebCitizen):
                        await driver.close()

        tasks = [asyncio.create_task(slot(channel))
                 for channel, count in SLOTS.items() for _ in range(count)]
        try:
            last = await trials.run(TRIALS)
            stopping.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 120)
            assert await last.stop() == 0, last.log()[-3000:]
        finally:
            for task in tasks:
                task.cancel()
            await launcher.close()

    problems = [p for c in citizens for p in check_citizen(db, c)]
    assert problems == [], "\n".join(problems[:10])
    all_complaints = rows(db, "SELECT number FROM complaints")
    told = [c.number for c in citizens if c.number]
    assert len(all_complaints) == len(told) + sum(c.submit_unanswered for c in citizens)
    steps = [s for c in citizens for s in c.steps]
    unanswered_tg = [s for c in citizens if c.driver.channel == "telegram"
                     for s in c.steps if not s.acked]
    redelivered = sum(1 for s in unanswered_tg
                      if len({trials.life_of(t) for t in tg.handed[s.token["update_id"]]}) > 1)
    dropped = sum(1 for s in unanswered_tg
                  if len({trials.life_of(t) for t in tg.handed[s.token["update_id"]]}) == 1
                  and s.token["update_id"] in tg.confirmed)
    problems = [t for run in launcher.runs for t in tracebacks(run.log())]
    assert problems == [], "\n\n".join(problems[:3])
    report("crash", summary_line(
        "intake", seed=seed, trials=TRIALS, kills=len(trials.kills), citizens=len(citizens),
        complaints=len(all_complaints), accepted=sum(s.acked for s in steps),
        unanswered=sum(not s.acked for s in steps), tg_redelivered=redelivered,
        tg_confirmed_unhandled=dropped,
        submit_answer_lost=sum(c.submit_unanswered for c in citizens),
        seconds=round(time.monotonic() - began)))


async def test_a_photo_redelivered_after_kill_9_is_recorded_once(
        tmp_path: Path, fork_server) -> None:
    """The bot took a photo and said so; the process died before Telegram heard the
    update was handled, so Telegram hands it out again after the restart."""
    data = tmp_path / "var"
    async with HoldingTelegram() as tg:
        async with other_process(data):
            pass
        launcher = Launcher(fork_server, tsur_env(data, free_port(), tg=tg), tmp_path / "logs")

        async def ready(tsur: Tsur) -> None:
            await tg.wait_for(lambda: any(c.time >= tsur.started
                                          for c in tg.calls_of("getUpdates")), 60)

        trials = Trials(launcher, random.Random(0), ready)
        driver = TelegramCitizen(tg, 5_499_001)
        try:
            await trials.start()
            await driver.text(PROBLEM.format(n=0))
            await tg.wait_for_message(driver.id, predicate=lambda m: any(
                b.get("callback_data") == "cls:yes" for row in m.buttons for b in row),
                timeout=20)
            await driver.press("cls:yes")
            await tg.wait_for_message(driver.id, predicate=lambda m: any(
                b.get("callback_data") == "photo:done" for row in m.buttons for b in row),
                timeout=20)
            update = await driver.photo()
            tg.hold_from = update["update_id"]
            await tg.wait_for_message(driver.id, "Прикреплена 1 фотография", timeout=20)
            await trials.kill()
            tsur = await trials.start()
            photo_id = update["update_id"]
            await tg.wait_for(lambda: len(tg.handed[photo_id]) == 2, 20)  # handed out again
            tg.hold_from = None
            tg.released.set()
            citizen = Citizen(driver, trials, PROBLEM.format(n=0),
                              steps=[Step("photo", token=update, acked=True)])
            await tg.wait_for_message(driver.id, "Прикреплен", count=2, timeout=20)
            await citizen.run()
            assert await tsur.stop() == 0
        finally:
            await launcher.close()
    [complaint] = complaints_of(data / "tsur.db", "telegram", driver.user)
    assert complaint["number"] == citizen.number
    assert len(complaint["photos"]) == len(set(complaint["photos"])) == 1, complaint["photos"]
