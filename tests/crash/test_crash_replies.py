"""Crash suite, operator replies: ``kill -9`` of ``tsur run`` while operators answer.

Two operators work through their complaints while ``tsur run`` is killed at random
moments and restarted: one in the portal of the process being killed (status "in
progress", then the answer), one through the domain use cases from another process (as
a second portal worker or the CLI would). The Telegram outbox worker of ``tsur run``
delivers the notices and answers to the fake Bot API.

After the last restart: every action an operator saw acknowledged has its outbox row;
every outbox row is sent and shown in the citizen's chat; a message reaches Telegram
twice only across a kill, at most one per kill (the one in flight).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

from domain.calendar import WorkingCalendar
from domain.complaint import Status
from domain.services import (
    ComplaintDraft,
    answer_complaint,
    change_status,
    get_or_create_citizen,
    register_complaint,
)
from portal.users import add_user
from tests.crash.harness import (
    TRIALS,
    Trials,
    duplicates,
    seed_from_env,
    summary_line,
    tracebacks,
    wait_until,
)
from tests.crash.launcher import Launcher, Tsur
from tests.crash.report import report
from tests.crash.system import (
    PASSWORD,
    PortalOperator,
    free_port,
    now,
    other_process,
    rows,
    tsur_env,
)
from tests.fakes.telegram import FakeTelegram

CITIZENS = 40
FIRST_USER = 5_300_000
PACE = 0.12  # seconds between an operator's actions: the work spans all the trials


async def seed_complaints(system, users: list[int]) -> list[tuple[int, str]]:
    """Two complaints per Telegram citizen, filed as the dialogue files them."""
    filed = []
    async with system.database.uow() as uow:
        for index, user in enumerate(users * 2):
            at = now()
            citizen = await get_or_create_citizen(uow, "telegram", str(user), str(user),
                                                  language="ru", now=at, name=f"Житель {user}")
            citizen.give_consent(at, system.catalogue.consent_version)
            await uow.citizens.save(citizen)
            complaint = await register_complaint(
                uow, system.catalogue, WorkingCalendar(), citizen, "telegram",
                ComplaintDraft(f"Нет воды в доме {index}", "housing", "no_water",
                               municipality="makhachkala"), at)
            assert complaint.id is not None
            filed.append((complaint.id, complaint.number))
        await uow.commit()
    return filed


async def test_operator_replies_reach_telegram_across_kill_9(
        tmp_path: Path, fork_server) -> None:
    seed = seed_from_env()
    rng = random.Random(seed)
    began = time.monotonic()
    data = tmp_path / "var"
    users = [FIRST_USER + i for i in range(CITIZENS)]
    async with FakeTelegram() as tg, other_process(data) as system:
        for user in users:
            tg.add_user(user, f"Житель {user}", language_code="ru")
        filed = await seed_complaints(system, users)
        await add_user(system.database, "olga", PASSWORD, "operator")
        port = free_port()
        launcher = Launcher(fork_server, tsur_env(data, port, tg=tg), tmp_path / "logs")

        async def ready(tsur: Tsur) -> None:
            await tg.wait_for(lambda: any(c.time >= tsur.started
                                          for c in tg.calls_of("getUpdates")), 60)

        trials = Trials(launcher, rng, ready)
        acked: set[tuple[str, str]] = set()  # (number, "status" | "reply")
        applied_unacked = 0

        async def portal_operator(work: list[tuple[int, str]]) -> None:
            nonlocal applied_unacked
            async with PortalOperator.session(f"http://127.0.0.1:{port}", "olga") as op:
                await trials.when_up()
                while not await op.log_in():
                    await trials.when_up()
                for _, number in work:
                    for action in ("status", "reply"):
                        form = ({"status": "in_progress", "reason": "Принято"}
                                if action == "status"
                                else {"text": f"По обращению {number} бригада выехала"})
                        while True:
                            await trials.when_up()
                            status = await op.act(number, action, **form)
                            if status == 200:
                                acked.add((number, action))
                                break
                            if status == 409:  # applied before a kill, never acknowledged
                                applied_unacked += 1
                                break
                            assert status is None, (number, action, status)
                        await asyncio.sleep(PACE)

        async def domain_operator(work: list[tuple[int, str]]) -> None:
            for complaint_id, number in work:
                for action in ("status", "reply"):
                    await trials.when_up()
                    async with system.database.uow() as uow:
                        if action == "status":
                            await change_status(uow, complaint_id, Status.IN_PROGRESS,
                                                actor="operator:7", now=now())
                        else:
                            await answer_complaint(uow, complaint_id,
                                                   f"По обращению {number} трубу заменили",
                                                   actor="operator:7", now=now())
                        await uow.commit()
                    acked.add((number, action))
                    await asyncio.sleep(PACE)

        db = data / "tsur.db"
        workers = [asyncio.create_task(portal_operator(filed[::2])),
                   asyncio.create_task(domain_operator(filed[1::2]))]
        try:
            last = await trials.run(TRIALS)
            await asyncio.wait_for(asyncio.gather(*workers), 120)
            await wait_until(lambda: not rows(db, "SELECT id FROM outbox WHERE status = "
                                                  "'pending'"), 120, "the outbox to drain")
            assert await last.stop() == 0, last.log()[-3000:]
        finally:
            for task in workers:
                task.cancel()
            await launcher.close()

    outbox = rows(db, "SELECT o.*, c.number FROM outbox o JOIN complaints c "
                      "ON c.id = o.complaint_id ORDER BY o.id")
    by_action = {(r["number"], "reply" if r["kind"] == "answer" else "status"): r
                 for r in outbox}
    lost = sorted(acked - set(by_action))
    assert lost == [], f"acknowledged operator actions without an outbox row: {lost}"
    assert {r["status"] for r in outbox} == {"sent"}, [dict(r) for r in outbox
                                                       if r["status"] != "sent"]
    missing = [dict(r) for r in outbox
               if json.loads(r["payload"])["text"]
               not in [m.text for m in tg.sent_to(int(r["chat_id"]))]]
    assert missing == [], f"sent rows the citizen never saw: {missing[:3]}"
    sends = [((c.params["chat_id"], c.params["text"]), c.time)
             for c in tg.calls_of("sendMessage") if c.status == 200]
    dups = duplicates(sends, trials)
    assert dups.unexplained == [], f"sent twice with no kill between: {dups.unexplained}"
    assert dups.worst <= 1, f"more than the one message in flight per kill: {dups.per_life}"
    problems = [t for run in launcher.runs for t in tracebacks(run.log())]
    assert problems == [], "\n\n".join(problems[:3])
    report("crash", summary_line(
        "replies", seed=seed, trials=TRIALS, kills=len(trials.kills),
        accepted=len(acked), applied_unacknowledged=applied_unacked,
        delivered=len(outbox), duplicates=dups.total, max_per_kill=dups.worst,
        per_kill=dups.per_kill(len(trials.kills)),
        seconds=round(time.monotonic() - began)))
