"""The delivery worker over the in-memory outbox: sends, marks, retries, flood control,
blocked citizens, leases and pacing; time is a fake clock, nothing sleeps for real."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dialogue.messages import Address, Channel, OutgoingMessage
from domain.citizen import Citizen, Identity
from domain.ports import OutboxMessage, OutboxStatus
from notifications.delivery import Backoff, DeliveryWorker
from notifications.messenger import RetryAfter, SendResult, TransientError
from notifications.outbox import new_message
from notifications.ratelimit import DEFAULT_LIMITS, RateLimiter
from tests.fakes.memory import MemoryStore
from tests.fakes.messenger import FakeClock, FakeMessenger


async def add_citizen(store: MemoryStore, chat_id: str) -> int:
    async with store.unit_of_work() as uow:
        citizen = await uow.citizens.add(Citizen([Identity("telegram", chat_id, chat_id)]))
        await uow.commit()
    assert citizen.id is not None
    return citizen.id


async def queue(store: MemoryStore, clock: FakeClock, chat_id: str, text: str, *,
                citizen_id: int | None = None, priority: int = 0) -> int:
    async with store.unit_of_work() as uow:
        message = new_message("status", Address(Channel.TELEGRAM, chat_id),
                              OutgoingMessage(text), dedup_key=f"test:{chat_id}:{text}",
                              now=clock.now(), priority=priority, citizen_id=citizen_id)
        assert await uow.outbox.add(message)
        await uow.commit()
    assert message.id is not None
    return message.id


def row(store: MemoryStore, message_id: int) -> OutboxMessage:
    return store.outbox[message_id]


def make_worker(store: MemoryStore, messenger: FakeMessenger, clock: FakeClock,
                **kwargs: object) -> DeliveryWorker:
    options: dict[str, object] = {"clock": clock.now, "sleep": clock.sleep,
                                  "jitter": lambda: 0.5,
                                  "backoff": Backoff(base=10, factor=2, cap=100)}
    options.update(kwargs)
    return DeliveryWorker(store.unit_of_work, "telegram", messenger, **options)  # type: ignore[arg-type]


async def test_delivers_due_messages_by_priority_and_marks_them_sent():
    store, clock, messenger = MemoryStore(), FakeClock(), FakeMessenger()
    low = await queue(store, clock, "1", "broadcast", priority=0)
    high = await queue(store, clock, "2", "your complaint", priority=20)
    async with store.unit_of_work() as uow:  # another channel's row is not this worker's
        await uow.outbox.add(new_message("status", Address(Channel.VK, "9"),
                                         OutgoingMessage("vk"), dedup_key="vk", now=clock.now()))
        await uow.commit()
    worker = make_worker(store, messenger, clock)
    assert await worker.run_once() == 2
    assert messenger.texts() == ["your complaint", "broadcast"]
    assert [a for a, _ in messenger.sent] == [Address(Channel.TELEGRAM, "2"),
                                             Address(Channel.TELEGRAM, "1")]
    for message_id in (low, high):
        assert row(store, message_id).status is OutboxStatus.SENT
        assert row(store, message_id).sent_at == clock.now()
        assert row(store, message_id).claim_token is None
    assert await worker.run_once() == 0
    assert len(messenger.sent) == 2


async def test_not_before_in_the_future_waits():
    store, clock, messenger = MemoryStore(), FakeClock(), FakeMessenger()
    async with store.unit_of_work() as uow:
        await uow.outbox.add(new_message("survey", Address(Channel.TELEGRAM, "1"),
                                         OutgoingMessage("later"), dedup_key="later",
                                         now=clock.now(),
                                         not_before=clock.now() + timedelta(hours=24)))
        await uow.commit()
    worker = make_worker(store, messenger, clock)
    assert await worker.run_once() == 0
    clock.advance(24 * 3600)
    assert await worker.run_once() == 1
    assert messenger.texts() == ["later"]


async def test_transient_errors_are_retried_with_exponential_backoff_then_sent():
    store, clock, messenger = MemoryStore(), FakeClock(), FakeMessenger()
    message_id = await queue(store, clock, "1", "hello")
    messenger.fail("1", TransientError("502"), TransientError("timeout"))
    worker = make_worker(store, messenger, clock)
    start = clock.now()

    assert await worker.run_once() == 1
    first = row(store, message_id)
    # attempt 1: step 10 s, equal jitter 0.5 → 5 + 2.5 s
    assert (first.status, first.attempts) == (OutboxStatus.PENDING, 1)
    assert first.not_before == start + timedelta(seconds=7.5)
    assert first.last_error == "TransientError: 502"
    assert await worker.run_once() == 0  # not due yet

    clock.advance(7.5)
    assert await worker.run_once() == 1
    second = row(store, message_id)
    assert second.not_before == clock.now() + timedelta(seconds=15)  # step 20 s → 10 + 5

    clock.advance(15)
    assert await worker.run_once() == 1
    assert row(store, message_id).status is OutboxStatus.SENT
    assert row(store, message_id).attempts == 3
    assert messenger.texts() == ["hello"] and len(messenger.attempts) == 3


def test_backoff_grows_exponentially_is_jittered_and_capped():
    backoff = Backoff(base=5, factor=2, cap=60)
    assert [backoff.delay(n, 0.0) for n in (1, 2, 3, 4, 5, 6)] == [2.5, 5, 10, 20, 30, 30]
    assert [backoff.delay(n, 0.999) for n in (1, 5)] == pytest.approx([5 * 0.9995,
                                                                       60 * 0.9995])


async def test_gives_up_after_max_attempts():
    store, clock, messenger = MemoryStore(), FakeClock(), FakeMessenger()
    message_id = await queue(store, clock, "1", "hello")
    messenger.fail("1", *[TransientError("down")] * 5)
    worker = make_worker(store, messenger, clock, max_attempts=3)
    for _ in range(3):
        await worker.run_once()
        clock.advance(1000)
    assert row(store, message_id).status is OutboxStatus.FAILED
    assert row(store, message_id).last_error == "TransientError: down"
    assert messenger.sent == [] and len(messenger.attempts) == 3


async def test_an_unexpected_messenger_error_is_retried_not_fatal():
    store, clock, messenger = MemoryStore(), FakeClock(), FakeMessenger()
    message_id = await queue(store, clock, "1", "hello")
    messenger.fail("1", KeyError("bug"))
    worker = make_worker(store, messenger, clock)
    await worker.run_once()
    assert row(store, message_id).status is OutboxStatus.PENDING
    assert row(store, message_id).last_error.startswith("KeyError")
    clock.advance(100)
    await worker.run_once()
    assert messenger.texts() == ["hello"]


async def test_retry_after_moves_not_before_and_pauses_the_channel():
    store, clock, messenger = MemoryStore(), FakeClock(), FakeMessenger()
    first = await queue(store, clock, "1", "one", priority=1)
    second = await queue(store, clock, "2", "two")
    messenger.fail("1", RetryAfter(30))
    limiter = RateLimiter(DEFAULT_LIMITS["telegram"], clock.monotonic)
    worker = make_worker(store, messenger, clock, limiter=limiter)
    start = clock.now()

    await worker.run_once()
    assert row(store, first).not_before == start + timedelta(seconds=30)
    assert row(store, first).status is OutboxStatus.PENDING
    # the second message of the batch waited out the flood control before going
    assert clock.sleeps == [30]
    assert row(store, second).status is OutboxStatus.SENT
    assert await worker.run_once() == 1
    assert messenger.texts() == ["two", "one"]


async def test_a_blocked_bot_marks_the_citizen_unreachable_and_stops_sending_to_them():
    store, clock, messenger = MemoryStore(), FakeClock(), FakeMessenger()
    citizen_id = await add_citizen(store, "1")
    other_id = await add_citizen(store, "2")
    first = await queue(store, clock, "1", "one", citizen_id=citizen_id, priority=1)
    queued = await queue(store, clock, "1", "two", citizen_id=citizen_id)
    theirs = await queue(store, clock, "2", "hi", citizen_id=other_id)
    messenger.blocked_by("1")
    worker = make_worker(store, messenger, clock, batch_size=1)

    await worker.run_once()
    assert store.citizens[citizen_id].reachable is False
    assert row(store, first).status is OutboxStatus.UNREACHABLE
    assert row(store, queued).status is OutboxStatus.UNREACHABLE  # dropped with it
    later = await queue(store, clock, "1", "three", citizen_id=citizen_id)
    while await worker.run_once():
        pass
    assert row(store, later).status is OutboxStatus.UNREACHABLE
    assert row(store, theirs).status is OutboxStatus.SENT
    assert [a.chat_id for a in messenger.attempts] == ["1", "2"]
    assert store.citizens[other_id].reachable is True


async def test_a_worker_that_died_mid_send_leaves_the_message_for_the_next_after_the_lease():
    store, clock, messenger = MemoryStore(), FakeClock(), FakeMessenger()
    message_id = await queue(store, clock, "1", "hello")
    lease = timedelta(minutes=2)
    async with store.unit_of_work() as uow:  # the dead worker's claim
        [claimed] = await uow.outbox.claim("telegram", clock.now(), limit=10, lease=lease,
                                           token="dead")
        await uow.commit()
    worker = make_worker(store, messenger, clock, lease=lease)
    assert await worker.run_once() == 0  # still leased
    clock.advance(lease.total_seconds())
    assert await worker.run_once() == 1
    assert messenger.texts() == ["hello"]
    assert row(store, message_id).attempts == 2
    async with store.unit_of_work() as uow:  # the stale worker's late mark is refused
        assert not await uow.outbox.finish(message_id, "dead", OutboxStatus.FAILED,
                                           now=clock.now())
        assert not await uow.outbox.reschedule(message_id, "dead", not_before=clock.now())
        await uow.commit()
    assert row(store, message_id).status is OutboxStatus.SENT


async def test_paces_sends_to_one_chat_and_gives_back_what_would_outlive_the_lease():
    store, clock, messenger = MemoryStore(), FakeClock(), FakeMessenger()
    ids = [await queue(store, clock, "1", f"m{i}") for i in range(6)]
    limiter = RateLimiter(DEFAULT_LIMITS["telegram"], clock.monotonic)  # 1/s per chat
    worker = make_worker(store, messenger, clock, limiter=limiter,
                         lease=timedelta(seconds=4))
    assert await worker.run_once() == 6
    # at 0, 1, 2 and 3 s: within 3/4 of the 4 s lease; the rest goes back, attempt uncounted
    assert messenger.texts() == ["m0", "m1", "m2", "m3"]
    assert clock.sleeps == [1.0, 1.0, 1.0]
    assert [row(store, i).status for i in ids] == [OutboxStatus.SENT] * 4 + [
        OutboxStatus.PENDING] * 2
    assert [row(store, i).attempts for i in ids[4:]] == [0, 0]
    assert row(store, ids[4]).claim_token is None
    while await worker.run_once():
        pass
    assert messenger.texts() == [f"m{i}" for i in range(6)]


async def test_stop_lets_the_message_in_flight_finish_and_returns_the_rest():
    store, clock, messenger = MemoryStore(), FakeClock(), FakeMessenger()
    ids = [await queue(store, clock, str(i), "hi") for i in range(3)]
    worker = make_worker(store, messenger, clock)

    async def stop_during_first_send(to: Address) -> None:
        worker.stop()

    messenger.before_send = stop_during_first_send
    await worker.run()  # returns once stopped
    assert [row(store, i).status for i in ids] == [OutboxStatus.SENT, OutboxStatus.PENDING,
                                                   OutboxStatus.PENDING]
    assert row(store, ids[1]).locked_until is None


async def test_unreachable_result_without_citizen_only_closes_the_message():
    store, clock, messenger = MemoryStore(), FakeClock(), FakeMessenger()
    message_id = await queue(store, clock, "-100", "to the back office")
    messenger.fail("-100", SendResult.UNREACHABLE)
    await make_worker(store, messenger, clock).run_once()
    assert row(store, message_id).status is OutboxStatus.UNREACHABLE


async def test_a_rejected_message_fails_at_once_and_is_not_retried():
    store, clock, messenger = MemoryStore(), FakeClock(), FakeMessenger()
    citizen_id = await add_citizen(store, "1")
    bad = await queue(store, clock, "1", "bad", citizen_id=citizen_id, priority=1)
    good = await queue(store, clock, "1", "good", citizen_id=citizen_id)
    messenger.fail("1", SendResult.REJECTED)
    worker = make_worker(store, messenger, clock)
    await worker.run_once()
    assert row(store, bad).status is OutboxStatus.FAILED
    assert row(store, bad).attempts == 1 and "rejected" in row(store, bad).last_error
    # only that message: the citizen stays reachable and their next message goes
    assert row(store, good).status is OutboxStatus.SENT
    assert store.citizens[citizen_id].reachable is True
    clock.advance(10_000)
    assert await worker.run_once() == 0
    assert messenger.texts() == ["good"] and len(messenger.attempts) == 2


async def test_the_worker_passes_the_rows_dedup_key_on_every_attempt():
    store, clock, messenger = MemoryStore(), FakeClock(), FakeMessenger()
    await queue(store, clock, "1", "hello")
    messenger.fail("1", TransientError("down"))
    worker = make_worker(store, messenger, clock)
    await worker.run_once()
    clock.advance(1000)
    await worker.run_once()
    assert messenger.keys == ["test:1:hello", "test:1:hello"]
    assert messenger.texts() == ["hello"]


async def test_a_citizen_found_unreachable_gets_no_try_of_the_rest_of_the_batch():
    store, clock, messenger = MemoryStore(), FakeClock(), FakeMessenger()
    citizen_id = await add_citizen(store, "1")
    ids = [await queue(store, clock, "1", f"m{i}", citizen_id=citizen_id, priority=3 - i)
           for i in range(3)]
    messenger.blocked_by("1")
    assert await make_worker(store, messenger, clock).run_once() == 3  # one batch
    assert [a.chat_id for a in messenger.attempts] == ["1"]
    assert [row(store, i).status for i in ids] == [OutboxStatus.UNREACHABLE] * 3
