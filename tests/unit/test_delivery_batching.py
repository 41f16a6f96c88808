"""The delivery worker's batch side on the in-memory outbox and a fake clock: requests to
many chats (VK ``peer_ids``), the send window, per-chat order under retries, and the fake
platforms' flood gate."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from dialogue.messages import Address, Channel, OutgoingMessage
from domain.ports import OutboxMessage, OutboxStatus
from notifications.delivery import DeliveryWorker
from notifications.delivery_batch import batch_key, group_units
from notifications.messenger import SendResult, TransientError
from notifications.outbox import new_message
from notifications.ratelimit import RateLimit, SendWindow
from tests.fakes.flood import FloodGate, repeats
from tests.fakes.memory import MemoryStore
from tests.fakes.messenger import FakeClock, FakeMessenger


def row(i: int, *, kind: str = "broadcast", text: str = "news", chat: str | None = None,
        clock: FakeClock | None = None) -> OutboxMessage:
    message = new_message(kind, Address(Channel.VK, chat or str(i)), OutgoingMessage(text),
                          dedup_key=f"bc:1:{i}", now=(clock or FakeClock()).now())
    message.id = i
    return message


class ManyMessenger(FakeMessenger):
    """A FakeMessenger that also sends one message to many chats in one request."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[list[str], str]] = []
        self.refuse: set[str] = set()

    async def send_many(self, to: Sequence[Address], msg: OutgoingMessage, *,
                        key: str) -> list[SendResult]:
        self.requests.append(([a.chat_id for a in to], key))
        results = []
        for address in to:
            if address.chat_id in self.refuse:
                results.append(SendResult.UNREACHABLE)
            else:
                self.sent.append((address, msg))
                results.append(SendResult.OK)
        return results


def test_broadcast_rows_with_one_payload_go_together_at_most_max_peers_at_a_time() -> None:
    batch = ([row(i) for i in range(1, 251)] + [row(300, text="other")]
             + [row(400, kind="status")])
    units = group_units(batch, ("broadcast",), 100)
    assert [len(u) for u in units] == [100, 100, 50, 1, 1]
    assert [m.id for m in units[0]] == list(range(1, 101))  # claim order kept
    assert units[3][0].id == 300 and units[4][0].id == 400
    # a chat twice (two rows of one text) never shares a request
    twice = group_units([row(1, chat="5"), row(2, chat="5")], ("broadcast",), 100)
    assert [len(u) for u in twice] == [1, 1]
    assert [len(u) for u in group_units(batch, (), 100)] == [1] * 252


def test_the_key_of_a_request_to_many_depends_only_on_its_rows() -> None:
    rows = [row(i) for i in range(1, 6)]
    assert batch_key(rows) == batch_key(list(reversed(rows)))
    assert batch_key(rows) != batch_key(rows[:4])


async def test_a_vk_broadcast_goes_100_peers_per_request_and_marks_each_peer() -> None:
    store, clock, messenger = MemoryStore(), FakeClock(), ManyMessenger()
    async with store.unit_of_work() as uow:
        for i in range(1, 231):
            message = row(i, clock=clock)
            message.id = None
            assert await uow.outbox.add(message)
        await uow.commit()
    messenger.refuse = {"7", "150"}
    worker = DeliveryWorker(store.unit_of_work, "vk", messenger, clock=clock.now,
                            sleep=clock.sleep, batch_size=500)
    assert await worker.run_once() == 230
    assert [len(chats) for chats, _ in messenger.requests] == [100, 100, 30]
    assert len({key for _, key in messenger.requests}) == 3
    statuses = {m.chat_id: m.status for m in store.outbox.values()}
    assert statuses.pop("7") is statuses.pop("150") is OutboxStatus.UNREACHABLE
    assert set(statuses.values()) == {OutboxStatus.SENT}
    assert repeats(a.chat_id for a, _ in messenger.sent) == 0 and len(messenger.sent) == 228


async def test_a_failed_message_holds_back_the_rest_to_its_chat_but_not_other_chats() -> None:
    store, clock, messenger = MemoryStore(), FakeClock(), FakeMessenger()
    async with store.unit_of_work() as uow:
        for chat, text in (("1", "answer"), ("2", "hello"), ("1", "closed"), ("1", "survey")):
            assert await uow.outbox.add(new_message(
                "status", Address(Channel.TELEGRAM, chat), OutgoingMessage(text),
                dedup_key=f"{chat}:{text}", now=clock.now()))
        await uow.commit()
    messenger.fail("1", TransientError("502"), TransientError("502"))
    worker = DeliveryWorker(store.unit_of_work, "telegram", messenger, clock=clock.now,
                            sleep=clock.sleep, jitter=lambda: 0.0)
    for _ in range(10):
        await worker.run_once()
        clock.advance(30)
    assert messenger.texts("1") == ["answer", "closed", "survey"]
    assert messenger.texts("2") == ["hello"]
    # the two failures were tries of the answer only: the others were never attempted early
    assert [a.chat_id for a in messenger.attempts].count("1") == 5


async def test_the_send_window_waits_for_the_answer_n_places_back_plus_the_window() -> None:
    clock = FakeClock()
    window = SendWindow(RateLimit(per_second=3, per_chat_per_second=1), clock.monotonic,
                        clock.sleep)
    slots = [await window.acquire(str(chat)) for chat in (1, 2, 3)]
    assert clock.sleeps == []
    clock.advance(0.5)
    slots[0].done(clock.monotonic())  # its answer came back late, at 0.5 s
    for slot in slots[1:]:
        slot.done(0.1)
    fourth = await window.acquire("4")
    assert clock.sleeps == [1.0]  # until 0.5 s + 1 s, not 0 s + 1 s
    fourth.done(clock.monotonic())  # answered at 1.5 s
    clock.advance(0.5)
    await window.acquire("4")  # one per second to a chat, counted from the answer too
    assert clock.sleeps == [1.0, 0.5] and clock.monotonic() == 2.5


async def test_the_send_window_waits_for_a_send_still_in_flight() -> None:
    clock = FakeClock()
    window = SendWindow(RateLimit(per_second=1), clock.monotonic, clock.sleep)
    first = await window.acquire("1")
    second = asyncio.create_task(window.acquire("2"))
    await asyncio.sleep(0)
    assert not second.done()  # the first has no answer yet
    clock.advance(2)
    first.done(clock.monotonic())
    await second
    assert clock.sleeps == [1.0]


def test_the_fake_flood_gate_counts_a_sliding_second_overall_and_per_chat() -> None:
    gate = FloodGate(3, 1)
    assert [gate.admit(["a"], 0.0), gate.admit(["b"], 0.1), gate.admit(["a"], 0.2)] == [
        True, True, False]  # "a" again within its second
    assert gate.admit(["c"], 0.3) is True
    assert gate.admit(["d"], 0.9) is False  # 3 in (−0.1, 0.9] already
    assert gate.admit(["d"], 1.0) is True  # the one at 0.0 has left the window
    assert (gate.admitted, gate.refused) == (4, 2)
