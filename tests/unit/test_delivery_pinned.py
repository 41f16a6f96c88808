"""Rows of a request to many chats whose outcome is unknown keep that request's key: they
are grouped only with rows pinned to the same key (alone too), the retry carries the key,
and they come due again together. In-memory outbox, fake clock, a fake messenger."""

from __future__ import annotations

from collections.abc import Sequence

from dialogue.messages import Address, Channel, OutgoingMessage
from domain.ports import OutboxMessage, OutboxStatus
from notifications.delivery import DeliveryWorker
from notifications.delivery_batch import batch_key, group_units, pinned, pinned_key
from notifications.messenger import RetryAfter, SendResult, TransientError
from notifications.outbox import new_message
from tests.fakes.memory import MemoryStore
from tests.fakes.messenger import FakeClock, FakeMessenger

KEY = "many:" + "ab" * 16


def row(i: int, *, error: str = "") -> OutboxMessage:
    message = new_message("broadcast", Address(Channel.VK, str(i)), OutgoingMessage("news"),
                          dedup_key=f"bc:1:{i}", now=FakeClock().now())
    message.id, message.last_error = i, error
    return message


class FailingManyMessenger(FakeMessenger):
    """Sends one message to many chats in one request; the first ``failures`` raise."""

    def __init__(self, *failures: Exception) -> None:
        super().__init__()
        self.requests: list[tuple[list[str], str]] = []
        self.failures = list(failures)

    async def send_many(self, to: Sequence[Address], msg: OutgoingMessage, *,
                        key: str) -> list[SendResult]:
        self.requests.append(([a.chat_id for a in to], key))
        if self.failures:
            raise self.failures.pop(0)
        self.sent += [(address, msg) for address in to]
        return [SendResult.OK] * len(to)


def test_pinned_rows_go_only_with_rows_pinned_to_the_same_request() -> None:
    assert pinned_key(row(1, error=pinned("TransientError: timeout", KEY))) == KEY
    assert pinned(pinned("first", KEY), "many:" + "cd" * 16) == f"[request many:{'cd' * 16}] first"
    assert pinned_key(row(1, error="TransientError: [request many:x] ")) is None
    other = "many:" + "ef" * 16
    batch = [row(1, error=pinned("e", KEY)), row(2), row(3, error=pinned("e", other)),
             row(4, error=pinned("e", KEY)), row(5)]
    units = group_units(batch, ("broadcast",), 100)
    assert [[m.id for m in u] for u in units] == [[1, 4], [2, 5], [3]]
    assert batch_key(units[0]) == KEY and batch_key(units[2]) == other
    assert batch_key(units[1]) not in (KEY, other)
    assert batch_key([row(1, error=pinned("e", KEY)), row(2)]) != KEY  # not all pinned


async def queue(store: MemoryStore, clock: FakeClock, n: int) -> None:
    async with store.unit_of_work() as uow:
        for i in range(1, n + 1):
            message = row(i)
            message.id, message.created_at, message.not_before = None, clock.now(), clock.now()
            assert await uow.outbox.add(message)
        await uow.commit()


async def test_an_unknown_outcome_pins_the_rows_and_they_come_due_together() -> None:
    store, clock = MemoryStore(), FakeClock()
    await queue(store, clock, 5)
    messenger = FailingManyMessenger(TransientError("vk: ServerDisconnectedError"))
    jitter = iter([0.9, 0.1, 0.5, 0.3, 0.7])
    worker = DeliveryWorker(store.unit_of_work, "vk", messenger, clock=clock.now,
                            sleep=clock.sleep, jitter=lambda: next(jitter, 0.0))
    assert await worker.run_once() == 5
    [(chats, key)] = messenger.requests
    rows = list(store.outbox.values())
    assert {pinned_key(m) for m in rows} == {key}
    assert all(m.last_error.endswith("ServerDisconnectedError") for m in rows)
    assert len({m.not_before for m in rows}) == 1 and rows[0].not_before > clock.now()

    clock.advance((rows[0].not_before - clock.now()).total_seconds())
    assert await DeliveryWorker(store.unit_of_work, "vk", messenger, clock=clock.now,
                                sleep=clock.sleep, batch_size=2).run_once() == 2
    await DeliveryWorker(store.unit_of_work, "vk", messenger, clock=clock.now,
                         sleep=clock.sleep, batch_size=3).run_once()
    # claims of two and three: smaller requests, the first one's key; a last row alone
    # would go the same way (send_many, not send)
    assert messenger.requests[1:] == [(chats[:2], key), (chats[2:], key)]
    assert messenger.attempts == [] and len(messenger.sent) == 5
    assert {m.status for m in store.outbox.values()} == {OutboxStatus.SENT}


async def test_a_pinned_row_alone_goes_as_its_request() -> None:
    store, clock = MemoryStore(), FakeClock()
    await queue(store, clock, 1)
    [message] = store.outbox.values()
    message.last_error = pinned("TransientError: timeout", KEY)  # as a failed request left it
    messenger = FailingManyMessenger()
    worker = DeliveryWorker(store.unit_of_work, "vk", messenger, clock=clock.now,
                            sleep=clock.sleep)
    assert await worker.run_once() == 1
    assert messenger.requests == [(["1"], KEY)] and messenger.attempts == []


async def test_flood_control_does_not_pin_a_request_it_refused() -> None:
    store, clock = MemoryStore(), FakeClock()
    await queue(store, clock, 3)
    messenger = FailingManyMessenger(RetryAfter(1.0, "vk: error 6"))
    worker = DeliveryWorker(store.unit_of_work, "vk", messenger, clock=clock.now,
                            sleep=clock.sleep)
    assert await worker.run_once() == 3
    assert {pinned_key(m) for m in store.outbox.values()} == {None}


async def test_the_claim_pins_the_key_before_the_send_and_a_lone_row_goes_as_a_request() -> None:
    """A worker that dies after the send finds its rows pinned: the claim wrote the key."""
    store, clock = MemoryStore(), FakeClock()
    await queue(store, clock, 3)
    stored_at_send: list[set[str | None]] = []

    class Peeking(FailingManyMessenger):
        async def send_many(self, to: Sequence[Address], msg: OutgoingMessage, *,
                            key: str) -> list[SendResult]:
            stored_at_send.append({pinned_key(m) for m in store.outbox.values()
                                   if m.chat_id in {a.chat_id for a in to}})
            return await super().send_many(to, msg, key=key)

    messenger = Peeking()
    for limit in (2, 1):  # a request of two, then the last row alone
        assert await DeliveryWorker(store.unit_of_work, "vk", messenger, clock=clock.now,
                                    sleep=clock.sleep, batch_size=limit).run_once() == limit
    assert [(chats, {key}) for chats, key in messenger.requests] == [
        (chats, stored) for (chats, _), stored in zip(messenger.requests, stored_at_send,
                                                      strict=True)]
    assert [chats for chats, _ in messenger.requests] == [["1", "2"], ["3"]]
    assert messenger.attempts == []  # never send(): the lone row went as a request too
