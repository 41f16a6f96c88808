"""Crash suite, broadcasts: ``kill -9`` of ``tsur run`` while it writes and sends them.

Staff schedule broadcasts from another process (as ``tsur broadcast create --at`` does)
while ``tsur run`` is killed at random moments and restarted. Its scheduler writes the
recipients to the outbox in small batches (each batch a transaction with the broadcast's
cursor) and its Telegram and VK workers deliver them.

After the last restart every broadcast is done; it has exactly one outbox row per
recipient, all sent; every recipient saw it; and a message went out twice only across a
kill, no more per kill than a worker holds claimed and unmarked (its sends run
concurrently and are marked in batches). VK gets a broadcast as one ``peer_ids`` request
per group of recipients and deduplicates a resend by its ``random_id``, so a VK citizen
never sees one twice; such resends are counted all the same.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime
from pathlib import Path

from domain.citizen import Citizen, Identity
from notifications.broadcasts import BroadcastService
from tests.crash.fakes import RecordingVK
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
from tests.crash.system import free_port, now, other_process, rows, tsur_env
from tests.fakes.telegram import FakeTelegram

TG_CITIZENS, VK_CITIZENS = 120, 40
BROADCASTS = 4
BATCH = 2  # recipients written per transaction: a kill may land mid-way
LEASE = 3.0  # the launcher's claim lease
# what a Telegram worker holds claimed and unmarked: what it sends in half a lease at
# 99 % of 30 msg/s; a VK worker sends all its VK citizens in one request
TG_IN_FLIGHT = int(30 * 0.99 * LEASE / 2)
GROUP_ID = 218000078


async def seed_citizens(system) -> tuple[list[int], list[int]]:
    tg_users = [5_500_000 + i for i in range(TG_CITIZENS)]
    vk_users = [7_500_000 + i for i in range(VK_CITIZENS)]
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    async with system.database.uow() as uow:
        for channel, users in (("telegram", tg_users), ("vk", vk_users)):
            for user in users:
                await uow.citizens.add(Citizen([Identity(channel, str(user), str(user))],
                                               language="ru", created_at=t0))
        await uow.commit()
    return tg_users, vk_users


async def test_broadcasts_reach_everyone_once_across_kill_9(
        tmp_path: Path, fork_server) -> None:
    seed = seed_from_env()
    rng = random.Random(seed)
    began = time.monotonic()
    data = tmp_path / "var"
    db = data / "tsur.db"
    async with FakeTelegram() as tg, RecordingVK(GROUP_ID) as vk, \
            other_process(data) as system:
        tg_users, vk_users = await seed_citizens(system)
        for user in tg_users:
            tg.add_user(user, f"Житель {user}", language_code="ru")
        for user in vk_users:
            vk.add_user(user, "Житель", str(user))
        env = tsur_env(data, free_port(), tg=tg, vk=vk) | {"TSUR_BROADCAST_CHECK_SECONDS": "1"}
        launcher = Launcher(fork_server, env, tmp_path / "logs", lease_seconds=LEASE,
                            broadcast_batch=BATCH)

        async def ready(tsur: Tsur) -> None:
            await tg.wait_for(lambda: any(c.time >= tsur.started
                                          for c in tg.calls_of("getUpdates")), 60)
            await vk.wait_for(lambda: any(t >= tsur.started for t in vk.polls), 60)

        caught = {"writing": 0, "sending": 0}  # what the kills interrupted

        def after_kill(trial: int) -> None:
            if rows(db, "SELECT id FROM broadcasts WHERE state = 'sending' "
                        "AND NOT materialized"):
                caught["writing"] += 1
            if rows(db, "SELECT id FROM outbox WHERE kind = 'broadcast' "
                        "AND status = 'pending'"):
                caught["sending"] += 1

        trials = Trials(launcher, rng, ready, min_up=0.3, max_up=2.0, after_kill=after_kill)
        service = BroadcastService(system.database, catalogue=system.catalogue)
        texts: dict[int, str] = {}

        async def staff() -> None:
            """Schedules a broadcast every few trials, for "now"."""
            for k in range(BROADCASTS):
                await wait_until(lambda k=k: len(trials.starts) > k * TRIALS // BROADCASTS,
                                 600, "the next trial")
                text = f"Плановое отключение воды №{k + 1}: завтра с 9 до 17 часов"
                b = await service.create(text, created_by="cli:crash", send_at=now())
                assert b.id is not None and b.audience_size == TG_CITIZENS + VK_CITIZENS
                texts[b.id] = text

        scheduling = asyncio.create_task(staff())
        try:
            last = await trials.run(TRIALS)
            await asyncio.wait_for(scheduling, 60)
            await wait_until(lambda: {r["state"] for r in rows(
                db, "SELECT state FROM broadcasts")} == {"done"}, 180, "every broadcast done")
            assert await last.stop() == 0, last.log()[-3000:]
        finally:
            scheduling.cancel()
            await launcher.close()

    problems = []
    for b in rows(db, "SELECT * FROM broadcasts ORDER BY id"):
        written = rows(db, "SELECT * FROM outbox WHERE dedup_key LIKE ?", f"bc:{b['id']}:%")
        if not len(written) == b["recipients"] == TG_CITIZENS + VK_CITIZENS:
            problems.append(f"broadcast {b['id']}: {len(written)} rows, "
                            f"{b['recipients']} counted")
        if {r["status"] for r in written} != {"sent"}:
            problems.append(f"broadcast {b['id']}: {[dict(r) for r in written][:2]}")
    text_of = list(texts.values())
    for user in tg_users:
        got = sorted(t for m in tg.sent_to(user) if (t := m.text) in text_of)
        if len(set(got)) != BROADCASTS:
            problems.append(f"telegram {user} saw {got}")
    for user in vk_users:
        got = sorted(m.text for m in vk.sent_to(user) if m.text in text_of)
        if got != sorted(text_of):
            problems.append(f"vk {user} saw {got}")
    assert problems == [], "\n".join(problems[:10])
    tg_dups = duplicates([((c.params["chat_id"], c.params["text"]), c.time)
                          for c in tg.calls_of("sendMessage") if c.status == 200], trials)
    vk_dups = duplicates([((peer, c.params["random_id"]), c.time)
                          for c in vk.calls_of("messages.send")
                          if c.status == 200 and c.error_code is None
                          for peer in str(c.params.get("peer_ids")
                                          or c.params["peer_id"]).split(",")], trials)
    for name, dups, bound in (("telegram", tg_dups, TG_IN_FLIGHT),
                              ("vk", vk_dups, VK_CITIZENS)):
        assert dups.unexplained == [], f"{name}: sent twice with no kill: {dups.unexplained}"
        assert dups.worst <= bound, f"{name}: more than in flight per kill: {dups.per_life}"
    problems = [t for run in launcher.runs for t in tracebacks(run.log())]
    assert problems == [], "\n\n".join(problems[:3])
    report("crash", summary_line(
        "broadcasts", seed=seed, trials=TRIALS, kills=len(trials.kills),
        kills_while_writing=caught["writing"], kills_while_sending=caught["sending"],
        broadcasts=BROADCASTS, accepted=BROADCASTS,
        delivered=BROADCASTS * (TG_CITIZENS + VK_CITIZENS), tg_duplicates=tg_dups.total,
        vk_resends_deduplicated_by_vk=vk_dups.total,
        max_per_kill=max(tg_dups.worst, vk_dups.worst),
        tg_per_kill=tg_dups.per_kill(len(trials.kills)),
        vk_per_kill=vk_dups.per_kill(len(trials.kills)),
        seconds=round(time.monotonic() - began)))
