"""Long polling confirms an update to Telegram only once it was handled: the real aiogram
client polling the fake Bot API through :func:`bots.telegram.serve_telegram`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dialogue.engine import AlsoSave, Rewrite
from dialogue.messages import IncomingMessage, OutgoingMessage
from tests.fakes.engine import FakeEngine
from tests.fakes.telegram import FakeTelegram

ANNA, BORIS = 5_006_001, 5_006_002


class GatedEngine(FakeEngine):
    """Holds the messages of the users in :attr:`gated` until they are released."""

    def __init__(self) -> None:
        super().__init__()
        self.gated: dict[str, asyncio.Event] = {}

    async def handle(self, msg: IncomingMessage, *, also_save: AlsoSave | None = None,
                     rewrite: Rewrite | None = None) -> list[OutgoingMessage]:
        gate = self.gated.get(msg.user_id)
        if gate is not None:
            self.received.append(msg)
            self._arrived.set()
            await gate.wait()
            self.received.remove(msg)
        return await super().handle(msg, also_save=also_save, rewrite=rewrite)


def offsets(tg: FakeTelegram) -> list[int]:
    return [int(c.params.get("offset") or 0) for c in tg.calls_of("getUpdates")]


@asynccontextmanager
async def polling(tg: FakeTelegram, engine: FakeEngine) -> AsyncIterator[None]:
    from bots.telegram import serve_telegram

    stop = asyncio.Event()
    task = asyncio.create_task(serve_telegram(engine, token=tg.token, api_url=tg.base_url,
                                              stop=stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_an_update_is_confirmed_only_after_it_was_handled() -> None:
    engine = GatedEngine()
    engine.gated[str(ANNA)] = gate = asyncio.Event()
    async with FakeTelegram() as tg, polling(tg, engine):
        tg.add_user(ANNA)
        tg.add_user(BORIS)
        held = tg.send_text(ANNA, "у нас нет воды")["update_id"]
        await engine.wait_for(1)
        tg.send_text(BORIS, "и у нас")  # another citizen is not held up by Anna
        await tg.wait_for_message(BORIS, "echo: и у нас")
        polls = len(offsets(tg))
        await tg.wait_for(lambda: len(offsets(tg)) > polls + 2)  # it keeps polling...
        assert max(offsets(tg)) == held  # ...without confirming Anna's update
        assert held in [u["update_id"] for u in tg.pending_updates]
        gate.set()
        await tg.wait_for_message(ANNA, "echo: у нас нет воды")
        await tg.wait_for(lambda: max(offsets(tg)) > held + 1)
    assert [m.text for m in engine.received] == ["и у нас", "у нас нет воды"]  # each once
    assert tg.pending_updates == []


async def test_a_stop_lets_updates_in_flight_finish_and_confirms_them() -> None:
    engine = GatedEngine()
    engine.gated[str(ANNA)] = gate = asyncio.Event()
    async with FakeTelegram() as tg:
        tg.add_user(ANNA)
        async with polling(tg, engine):
            update = tg.send_text(ANNA, "свет отключили")
            await engine.wait_for(1)
            asyncio.get_running_loop().call_later(0.2, gate.set)
        assert [m.text for m in tg.sent_to(ANNA)] == ["echo: свет отключили"]
        assert max(offsets(tg)) == update["update_id"] + 1
        assert tg.pending_updates == []


async def test_one_citizens_updates_run_in_order_others_alongside() -> None:
    engine = FakeEngine(delay=0.05)
    async with FakeTelegram() as tg, polling(tg, engine):
        tg.add_user(ANNA)
        tg.add_user(BORIS)
        for n in range(3):
            tg.send_text(ANNA, f"a{n}")
            tg.send_text(BORIS, f"b{n}")
        await tg.wait_for_message(ANNA, "echo: a2", timeout=10)
        await tg.wait_for_message(BORIS, "echo: b2", timeout=10)
    assert [m.text for m in tg.sent_to(ANNA)] == ["echo: a0", "echo: a1", "echo: a2"]
    assert [m.text for m in tg.sent_to(BORIS)] == ["echo: b0", "echo: b1", "echo: b2"]
    assert engine.max_concurrent == 2  # one per citizen, both citizens at once


async def test_polling_goes_on_after_getupdates_fails() -> None:
    """Telegram unreachable, or another poller (409 while a scheduler takes over): the
    loop waits a little and asks again, with the same offset."""
    engine = FakeEngine()
    async with FakeTelegram() as tg, polling(tg, engine):
        tg.add_user(ANNA)
        await tg.wait_for(lambda: tg.calls_of("getUpdates"))
        tg.fail_next("getUpdates", 502, times=2)  # the polls after the one in flight
        tg.send_text(ANNA, "есть кто?")
        await tg.wait_for_message(ANNA, "echo: есть кто?", timeout=15)
        await tg.wait_for(lambda: [c.status for c in tg.calls_of("getUpdates")].count(502)
                          == 2, 15)
        tg.send_text(ANNA, "ау")
        await tg.wait_for_message(ANNA, "echo: ау", timeout=15)
    assert [c.status for c in tg.calls_of("getUpdates")].count(502) == 2
