"""Crash suite, intake: ``kill -9`` of ``tsur run`` while citizens file complaints in
Telegram, VK and the web chat, step by step.

Citizens keep going across the kills (:mod:`tests.crash.citizens`): a step the bot did
not answer is sent again once it is back. After the last restart:

- every citizen told "complaint №N registered" has complaint N, and has exactly one;
- a complaint holds what its citizen said (text, location, municipality), every photo
  the bot acknowledged, and no photo twice (a redelivered update must not record twice);
- no step went unanswered without a kill to blame, and the bot never apologised.

- the web chat's page (:class:`tests.crash.channels.WebCitizen`) gives every frame an id
  and keeps it until the server's ``ack``, sending it again after a reconnect: every
  frame is acknowledged exactly once, every acknowledged photo is in the complaint once,
  an acknowledged submit left a complaint (:func:`tests.crash.checks.check_web`). At each
  kill the frames the pages still hold are looked up in the database
  (``web_in_flight_at_kill``, of which ``web_in_flight_persisted`` the engine had already
  stored: sent again, they are answered and not recorded twice); the replies a citizen
  saw twice are those of frames in flight at a kill (``web_answered_twice``).

- no Telegram update went unanswered after Telegram had been told it was taken
  (``tg_confirmed_unhandled == 0``): tsur confirms an update (the next ``getUpdates``
  offset) only once it was handled, so an update interrupted by a kill is handed out
  again after the restart (``tg_redelivered`` counts those the citizen saw answered only
  then) and recorded once.

aiogram's own polling confirmed a batch as soon as it had handed it to its handler
tasks; :func:`test_a_press_stuck_in_its_handler_at_a_kill_is_handed_out_again` pins a
handler before the engine while the process is killed, which lost the press that way.
vkbottle saved the long-poll ``ts`` as soon as events were handed to their tasks;
:func:`test_a_vk_message_unanswered_at_a_kill_is_handed_out_again` kills the process
while the answer to a VK message is on its way, which left that message unanswered.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web

from tests.crash.checks import note_web_in_flight, web_counts
from tests.crash.child import HOLD_ACKS
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
from tests.crash.harness import (
    TRIALS,
    Trials,
    seed_from_env,
    summary_line,
    tracebacks,
    wait_until,
)
from tests.crash.launcher import Launcher, Tsur
from tests.crash.report import report
from tests.crash.system import free_port, other_process, rows, tsur_env
from tests.fakes.telegram_state import SentMessage

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
        trials.after_kill = lambda _trial: note_web_in_flight(db, citizens)
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
    line = summary_line(
        "intake", seed=seed, trials=TRIALS, kills=len(trials.kills), citizens=len(citizens),
        complaints=len(all_complaints), accepted=sum(s.acked for s in steps),
        unanswered=sum(not s.acked for s in steps), tg_redelivered=redelivered,
        tg_confirmed_unhandled=dropped,
        submit_answer_lost=sum(c.submit_unanswered for c in citizens),
        **web_counts(citizens), seconds=round(time.monotonic() - began))
    report("crash", line)
    assert dropped == 0, line  # Telegram was told these were taken, and they were not


@asynccontextmanager
async def _restartable(tmp_path: Path, fork_server, *, tg: Any = None, vk: Any = None,
                       port: int | None = None) -> AsyncIterator[Trials]:
    """tsur on a fresh data directory (migrated by another process first), for a test to
    start, kill and start again against the fake ``tg`` or ``vk`` (neither: the web chat
    only, on ``port``)."""
    data = tmp_path / "var"
    async with other_process(data):
        pass
    launcher = Launcher(fork_server, tsur_env(data, port or free_port(), tg=tg, vk=vk),
                        tmp_path / "logs")

    async def ready(tsur: Tsur) -> None:
        if tg is not None:
            await tg.wait_for(lambda: any(c.time >= tsur.started
                                          for c in tg.calls_of("getUpdates")), 60)
        elif vk is not None:
            await vk.wait_for(lambda: any(t >= tsur.started for t in vk.polls), 60)

    try:
        yield Trials(launcher, random.Random(0), ready)
    finally:
        await launcher.close()


def _has_button(payload: str) -> Callable[[SentMessage], bool]:
    def check(m: SentMessage) -> bool:
        return any(b.get("callback_data") == payload for row in m.buttons for b in row)
    return check


async def test_a_photo_redelivered_after_kill_9_is_recorded_once(
        tmp_path: Path, fork_server) -> None:
    """The bot took a photo and said so; the process died before Telegram heard the
    update was handled, so Telegram hands it out again after the restart."""
    data = tmp_path / "var"
    async with HoldingTelegram() as tg, _restartable(tmp_path, fork_server, tg=tg) as trials:
        driver = TelegramCitizen(tg, 5_499_001)
        await trials.start()
        await driver.text(PROBLEM.format(n=0))
        await tg.wait_for_message(driver.id, predicate=_has_button("cls:yes"), timeout=20)
        await driver.press("cls:yes")
        await tg.wait_for_message(driver.id, predicate=_has_button("photo:done"),
                                  timeout=20)
        update = await driver.photo()
        tg.hold_from = update["update_id"]
        await tg.wait_for_message(driver.id, "Прикреплена 1 фотография", timeout=20)
        await trials.kill()
        tsur = await trials.start()
        photo_id = update["update_id"]
        await tg.wait_for(lambda: any(t >= tsur.started for t in tg.handed[photo_id]),
                          20)  # handed out again
        tg.hold_from = None
        tg.released.set()
        citizen = Citizen(driver, trials, PROBLEM.format(n=0),
                          steps=[Step("photo", token=update, acked=True)])
        await tg.wait_for_message(driver.id, "Прикреплен", count=2, timeout=20)
        await citizen.run()
        assert await tsur.stop() == 0
    [complaint] = complaints_of(data / "tsur.db", "telegram", driver.user)
    assert complaint["number"] == citizen.number
    assert len(complaint["photos"]) == len(set(complaint["photos"])) == 1, complaint["photos"]


class StallingTelegram(RecordingTelegram):
    """Leaves ``answerCallbackQuery`` unanswered while :attr:`stalling`: the bot's handler
    of a button press waits there, before it reaches the engine."""

    def __init__(self) -> None:
        super().__init__()
        self.stalling = False
        self.stalled: list[float] = []  # when a stalled request came
        self.released = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.stalling and request.match_info["method"].lower() == "answercallbackquery":
            self.stalled.append(time.monotonic())
            self._changed()
            await self.released.wait()
        return await super()._handle(request)


async def test_a_press_stuck_in_its_handler_at_a_kill_is_handed_out_again(
        tmp_path: Path, fork_server) -> None:
    """The process is killed while the handler of a button press is still at its first
    step (answering the query, before the engine): Telegram must not have been told the
    press was taken, so the restarted bot gets it again and moves the dialogue on."""
    async with StallingTelegram() as tg, _restartable(tmp_path, fork_server, tg=tg) as trials:
        driver = TelegramCitizen(tg, 5_499_002)
        await trials.start()
        await driver.text(PROBLEM.format(n=1))
        await tg.wait_for_message(driver.id, predicate=_has_button("cls:yes"), timeout=20)
        tg.stalling = True
        press = await driver.press("cls:yes")
        await tg.wait_for(lambda: tg.stalled, 20)
        # the bot goes on polling while the handler is stuck (aiogram confirmed here)
        await tg.wait_for(lambda: any(c.time > tg.stalled[0]
                                      for c in tg.calls_of("getUpdates")), 20)
        await trials.kill()
        assert press["update_id"] not in tg.confirmed
        tg.stalling = False
        tg.released.set()
        tsur = await trials.start()
        await tg.wait_for_message(driver.id, predicate=_has_button("photo:done"),
                                  timeout=20)
        assert any(t >= tsur.started for t in tg.handed[press["update_id"]])
        assert await tsur.stop() == 0
    assert press["update_id"] in tg.confirmed  # confirmed at last, once handled


class StallingVK(RecordingVK):
    """Leaves ``messages.send`` unanswered while :attr:`stalling`: the bot's handler of an
    event waits there, after the engine has stored the step, before the citizen hears."""

    def __init__(self, group_id: int) -> None:
        super().__init__(group_id)
        self.stalling = False
        self.stalled: list[float] = []
        self.released = asyncio.Event()

    async def _method(self, request: web.Request) -> web.StreamResponse:
        if self.stalling and request.match_info["name"] == "messages.send":
            self.stalled.append(time.monotonic())
            self._changed()
            await self.released.wait()
        return await super()._method(request)


async def test_a_vk_message_unanswered_at_a_kill_is_handed_out_again(
        tmp_path: Path, fork_server) -> None:
    """The process is killed while the answer to a VK message is on its way: the saved
    long-poll ``ts`` must not have moved past the message, so the restarted bot gets it
    again and answers it (once recorded: the engine knows it by its time stamp)."""
    data = tmp_path / "var"
    async with StallingVK(GROUP_ID) as vk, _restartable(tmp_path, fork_server, vk=vk) as trials:
        driver = VkCitizen(vk, 7_499_001)
        await trials.start()
        vk.stalling = True
        await driver.text(PROBLEM.format(n=2))
        await vk.wait_for(lambda: vk.stalled, 20)
        await trials.kill()
        vk.stalling = False
        vk.released.set()
        tsur = await trials.start()
        await vk.wait_for(lambda: any("cls:yes" in shown.payloads
                                      for shown in driver.shown()), 20)
        assert await tsur.stop() == 0
    state = rows(data / "tsur.db", "SELECT data FROM conversations WHERE channel = 'vk' "
                                   "AND user_id = ?", driver.user)
    assert len(state) == 1 and PROBLEM.format(n=2) in state[0]["data"]



async def test_a_web_photo_stored_but_not_acknowledged_at_a_kill_is_recorded_once(
        tmp_path: Path, fork_server) -> None:
    """The server stored a photo frame and sent its reply, and was killed before the
    ``ack``: the page sends the frame again after the restart, and the engine, which knows
    it by its time stamp and content, answers it without recording the photo twice."""
    db = tmp_path / "var" / "tsur.db"
    port = free_port()
    async with ClientSession() as http, _restartable(tmp_path, fork_server,
                                                     port=port) as trials:
        trials.launcher.env[HOLD_ACKS] = "held-"
        driver = WebCitizen(f"http://127.0.0.1:{port}", "crash-web-held-photo", http)
        driver.tags = {"photo": "held-"}
        citizen = Citizen(driver, trials, PROBLEM.format(n=3))
        await trials.start()
        filing = asyncio.create_task(citizen.run())
        try:
            await wait_until(lambda: any("Прикреплена 1 фотография" in m.text
                                         for m in driver.shown()), 30, "the photo's reply")
            [held] = driver.pending
            await trials.kill()
            note_web_in_flight(db, [citizen])
            del trials.launcher.env[HOLD_ACKS]
            tsur = await trials.start()
            await asyncio.wait_for(filing, 60)
        finally:
            filing.cancel()
            await driver.close()
        assert await tsur.stop() == 0
    assert driver.at_kill == {held: (1, True)}  # stored before the kill, not acknowledged
    assert driver.sent[held] == [1, 2] and driver.answered[held] == {1, 2}
    assert driver.acks_of[held] == [2]
    assert check_citizen(db, citizen) == []
    [complaint] = complaints_of(db, "web", driver.user)
    assert complaint["photos"] == [f"web:{driver.uploads[held]}"]
