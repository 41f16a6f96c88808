"""Bots Long Poll saves its ``ts`` only past events that were handled: the real vkbottle
client polling the fake VK long-poll server, killed (its task cancelled, nothing drained)
with an event in flight and started again from the saved ``ts``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tests.fakes.vk import FakeVK

GROUP_ID = 218000031
ANNA, BORIS = 7_006_001, 7_006_002


class Life:
    """One run of the polling, as ``serve_vk`` runs it, with handlers that record what
    they got and hold the messages of the users in ``gated``."""

    def __init__(self, vk: FakeVK, state_dir: Path, gated: dict[int, asyncio.Event]) -> None:
        from vkbottle import Bot
        from vkbottle.bot import Message

        from bots.vk import make_api
        from bots.vk.polling import SettledPolling

        self.handled: list[str] = []
        self.api = make_api(vk.token, vk.api_url)
        self.polling = SettledPolling(self.api, state_dir=state_dir, group_id=GROUP_ID, wait=1)
        self.bot = Bot(api=self.api, polling=self.polling, skip_old_events=False)

        @self.bot.on.message()
        async def on_message(message: Message) -> None:
            self.handled.append(message.text)
            gate = gated.get(message.from_id)
            if gate is not None:
                await gate.wait()

        self.task: asyncio.Task[Any] = asyncio.create_task(self.polling.run(self.bot))

    async def kill(self) -> None:
        self.task.cancel()
        for task in [self.task, *self.polling.tasks]:
            task.cancel()
        await asyncio.gather(self.task, *self.polling.tasks, return_exceptions=True)
        await self.api.http_client.close()


def saved_ts(state_dir: Path) -> int:
    path = state_dir / ".vkbottle" / "bot-polling" / f"{GROUP_ID}.json"
    return int(json.loads(path.read_text())["ts"])


async def test_an_event_in_flight_at_a_kill_is_handed_out_again(tmp_path: Path) -> None:
    async with FakeVK(group_id=GROUP_ID) as vk:
        vk.add_user(ANNA)
        vk.add_user(BORIS)
        gate = asyncio.Event()
        first = Life(vk, tmp_path, {ANNA: gate})
        await vk.wait_polling()
        start = saved_ts(tmp_path)  # written at once, before anything came
        vk.send_text(ANNA, "у нас нет воды")
        await vk.wait_for(lambda: first.handled == ["у нас нет воды"])
        vk.send_text(BORIS, "и у нас")  # Boris is not held up by Anna...
        await vk.wait_for(lambda: "и у нас" in first.handled)
        await vk.wait_for(lambda: vk.polls_in_flight)  # ...and polling went on
        assert saved_ts(tmp_path) == start  # but the ts waits for Anna's event
        await first.kill()

        second = Life(vk, tmp_path, {})
        await vk.wait_for(lambda: "у нас нет воды" in second.handled)
        await vk.wait_for(lambda: saved_ts(tmp_path) == vk.world.next_ts)
        await second.kill()
    assert sorted(second.handled) == ["и у нас", "у нас нет воды"]


async def test_the_ts_follows_handled_events_in_order(tmp_path: Path) -> None:
    async with FakeVK(group_id=GROUP_ID) as vk:
        vk.add_user(ANNA)
        vk.add_user(BORIS)
        gate = asyncio.Event()
        life = Life(vk, tmp_path, {ANNA: gate})
        await vk.wait_polling()
        vk.send_text(BORIS, "раз")
        await vk.wait_for(lambda: saved_ts(tmp_path) == vk.world.next_ts)
        before_anna = vk.world.next_ts
        vk.send_text(ANNA, "два")
        await vk.wait_for(lambda: "два" in life.handled)
        vk.send_text(BORIS, "три")
        await vk.wait_for(lambda: "три" in life.handled)
        assert saved_ts(tmp_path) == before_anna
        gate.set()
        await vk.wait_for(lambda: saved_ts(tmp_path) == vk.world.next_ts)
        await life.kill()


async def test_polling_restarted_in_the_same_process_does_not_take_an_event_twice(
        tmp_path: Path) -> None:
    """``serve_vk`` restarts polling after an error; it resumes from the saved ts, before
    an event still in flight, which must not be handled a second time."""
    async with FakeVK(group_id=GROUP_ID) as vk:
        vk.add_user(ANNA)
        vk.add_user(BORIS)
        gate = asyncio.Event()
        life = Life(vk, tmp_path, {ANNA: gate})
        await vk.wait_polling()
        vk.send_text(ANNA, "у нас нет воды")
        await vk.wait_for(lambda: life.handled == ["у нас нет воды"])
        life.polling.stop()
        life.task.cancel()
        await asyncio.gather(life.task, return_exceptions=True)
        life.task = asyncio.create_task(life.polling.run(life.bot))  # polling again
        vk.send_text(BORIS, "и у нас")  # comes after Anna's, from the saved ts on
        await vk.wait_for(lambda: "и у нас" in life.handled)
        gate.set()
        await vk.wait_for(lambda: not life.polling.tasks)
        await vk.wait_for(lambda: saved_ts(tmp_path) == vk.world.next_ts)
        await life.kill()
    assert life.handled == ["у нас нет воды", "и у нас"]
