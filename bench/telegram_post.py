"""tsur's own work per Telegram call, on the three paths a call is posted by.

    .venv/bin/python bench/telegram_post.py                # 20,000 calls a path, 5 rounds
    .venv/bin/python bench/telegram_post.py --calls 5000 --rounds 3

The HTTP round trip of :class:`~bots.telegram.session.TsurSession` is replaced by a
canned ``{"ok": true, "result": <a Message>}``, so only what tsur does around each call is
timed (CPU time of this process, which does nothing else). The paths:

- ``floor``: ``TsurSession.post_json`` of a body built beforehand — the baseline; every
  ratio printed is against it, measured in the same round;
- ``request``: ``bot(SendMessage(...))``, i.e. ``TsurSession.make_request``: the JSON body
  built, the answer parsed into aiogram's ``Message`` (``getUpdates``, ``setWebhook``…);
- ``reply``: ``TelegramMessenger.send`` of a one-line text (the dialogue's replies:
  render, body, post, answer checked not parsed);
- ``outbox``: ``TelegramOutboxMessenger.send`` of one message to a new chat each time
  (a broadcast: rendered once, each chat's body from the prepared JSON).

Rounds alternate the paths; it prints the median microseconds per call and the ratio to
``floor``. It prints numbers only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ANSWER = ('{"ok":true,"result":{"message_id":7,"date":1767225600,'
          '"chat":{"id":5005001,"type":"private","first_name":"Патимат"},'
          '"from":{"id":1,"is_bot":true,"first_name":"tsur"},'
          '"text":"Статус обращения №2026-000123 изменён: в работе."}}')
TEXT = "Статус обращения №2026-000123 изменён: в работе."
CHAT = 5005001


async def canned_post(bot: Any, method: Any, body: str | bytes,
                      timeout: int | None) -> tuple[int, str]:
    return 200, ANSWER


async def run(calls: int, rounds: int) -> None:
    from aiogram.enums import ParseMode
    from aiogram.methods import SendMessage

    from bots.telegram import TelegramMessenger, make_bot
    from bots.telegram.outbox import TelegramOutboxMessenger
    from dialogue.messages import Address, Channel, OutgoingMessage

    bot = make_bot("123456:bench-token", "http://127.0.0.1:9")
    bot.session._post = canned_post  # type: ignore[method-assign]
    reply = TelegramMessenger(bot)
    outbox = TelegramOutboxMessenger(bot)
    msg = OutgoingMessage(TEXT)
    to = Address(Channel.TELEGRAM, str(CHAT))
    method = SendMessage(chat_id=CHAT, text=TEXT, parse_mode=ParseMode.HTML)
    body = bot.session.json_dumps(bot.session.json_params(bot, method))
    chats = iter(range(10**9))

    async def floor() -> None:
        await bot.session.post_json(bot, method, body)

    async def request() -> None:
        await bot(SendMessage(chat_id=CHAT, text=TEXT, parse_mode=ParseMode.HTML))

    async def replies() -> None:
        assert await reply.send(to, msg)

    async def broadcast() -> None:
        await outbox.send(Address(Channel.TELEGRAM, str(next(chats) + 1)), msg)

    paths: dict[str, Callable[[], Awaitable[None]]] = {
        "floor": floor, "request": request, "reply": replies, "outbox": broadcast}
    times: dict[str, list[float]] = {name: [] for name in paths}
    for path in paths.values():  # warm up (imports, caches)
        for _ in range(200):
            await path()
    for _ in range(rounds):
        for name, path in paths.items():
            start = time.process_time()
            for _ in range(calls):
                await path()
            times[name].append((time.process_time() - start) / calls * 1e6)
    await bot.session.close()

    base = statistics.median(times["floor"])
    print(f"{calls} calls a path, {rounds} rounds; median µs per call (CPU), ratio to floor")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:8} {median:8.1f} µs   ×{median / base:5.2f}   "
              f"(rounds: {', '.join(f'{v:.1f}' for v in values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.rounds))


if __name__ == "__main__":
    main()
