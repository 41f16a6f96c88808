"""What the Telegram channel's reply-keyboard look-up costs a short text message.

    .venv/bin/python bench/telegram_keyboards.py    # SQLite, 2,000 a round
    .venv/bin/python bench/telegram_keyboards.py --postgres    # and a PostgreSQL it starts
    .venv/bin/python bench/telegram_keyboards.py --calls 500 --rounds 5

Every new text of at most 64 characters is looked up in
:class:`~bots.telegram.keyboards.SqlReplyKeyboards` (is it the label of a button the
citizen was shown?), inside the dialogue step's own unit of work once the step has loaded
the citizen's conversation (the engine's ``rewrite``). The bench times such a unit with
the look-up against a baseline in the same round: the same unit without it, which only
loads one conversation (``ConversationStore.load``), the least a dialogue step reads. Both
read one of 300 chats in turn; one chat has a keyboard. CPU time of this process per
call, median over the rounds, and the ratio with / without the look-up. It prints numbers
only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bots.telegram.keyboards import SqlReplyKeyboards  # noqa: E402
from domain.ports import Conversation  # noqa: E402
from domain.storage import Database, upgrade_async  # noqa: E402

CHATS = 300


async def measure(url: str, calls: int, rounds: int) -> tuple[float, float]:
    await upgrade_async(url)
    db = Database.from_url(url)
    keyboards = SqlReplyKeyboards()
    try:
        for i in range(CHATS):  # citizens in the middle of a dialogue
            async with db.uow() as uow:
                await uow.conversations.save(Conversation("telegram", str(i), "cmp_addr", {}))
                await uow.commit()
        async with db.uow() as uow:
            for row in keyboards.keep("5", {"⏭ Пропустить": "loc:skip"}):
                await uow.conversations.save(row)
            await uow.commit()

        async def look_up(i: int) -> None:
            async with db.uow() as uow:
                dialogue = await uow.conversations.load("telegram", str(i % CHATS))
                await keyboards.payload(str(i % CHATS), "ул. Ленина 5", dialogue=dialogue,
                                        store=uow.conversations)

        async def load_one(i: int) -> None:
            async with db.uow() as uow:
                await uow.conversations.load("telegram", str(i % CHATS))

        times: dict[str, list[float]] = {"look-up": [], "baseline": []}
        for _ in range(rounds):
            for name, call in (("look-up", look_up), ("baseline", load_one)):
                start = time.process_time()
                for i in range(calls):
                    await call(i)
                times[name].append((time.process_time() - start) / calls * 1000)
        return statistics.median(times["look-up"]), statistics.median(times["baseline"])
    finally:
        await db.dispose()


def report(name: str, look_up: float, baseline: float) -> None:
    print(f"{name}: a one-load unit with the keyboard look-up {look_up:.3f} ms CPU per "
          f"call, without {baseline:.3f} ms; ratio {look_up / baseline:.2f} (the look-up "
          f"adds {look_up - baseline:.3f} ms)")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        report("SQLite", *await measure(f"sqlite+aiosqlite:///{tmp}/bench.db",
                                        args.calls, args.rounds))
        if args.postgres:
            from tests.fakes.postgres import PostgresServer

            server = PostgresServer.start()
            try:
                report("PostgreSQL", *await measure(server.create_database(), args.calls,
                                                    args.rounds))
            finally:
                server.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--postgres", action="store_true")
    asyncio.run(main(p.parse_args()))
