"""The outbox's batch side on SQLite and PostgreSQL: a claim takes higher priorities
first and keeps each chat's order while an older message is tried, a batch is marked in
one statement, a worker writes a broadcast batch's outcomes with a handful of statements,
not one per message, and marks a notice a citizen waits for as soon as it is sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from dialogue.messages import Address, Channel, OutgoingMessage
from domain.ports import OutboxStatus
from domain.storage import Database
from notifications.delivery import DeliveryWorker
from notifications.messenger import TransientError
from notifications.outbox import new_message
from tests.fakes.messenger import FakeClock, FakeMessenger

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
LEASE = timedelta(minutes=2)


async def queue(db: Database, chat_id: str, text: str, *, priority: int = 0,
                kind: str = "status", not_before: datetime | None = None) -> int:
    async with db.uow() as uow:
        message = new_message(kind, Address(Channel.TELEGRAM, chat_id),
                              OutgoingMessage(text), dedup_key=f"b:{chat_id}:{text}", now=T0,
                              priority=priority, not_before=not_before)
        assert await uow.outbox.add(message)
        await uow.commit()
    assert message.id is not None
    return message.id


async def claim(db: Database, token: str, at: datetime = T0, limit: int = 50) -> list[int]:
    async with db.uow() as uow:
        batch = await uow.outbox.claim("telegram", at, limit=limit, lease=LEASE, token=token)
        await uow.commit()
    return [m.id for m in batch if m.id is not None]


async def test_no_later_message_to_a_chat_is_claimed_while_an_older_one_is_tried(
        db: Database) -> None:
    answer = await queue(db, "1", "answer")
    closed = await queue(db, "1", "closed")
    other = await queue(db, "2", "news")
    assert await claim(db, "a", limit=1) == [answer]  # in flight now
    # the chat's next message waits; other chats do not
    assert await claim(db, "b") == [other]
    async with db.uow() as uow:  # the answer failed: back off for a minute
        assert await uow.outbox.reschedule(answer, "a", not_before=T0 + timedelta(minutes=1))
        await uow.commit()
    assert await claim(db, "c", T0 + timedelta(seconds=30)) == []  # still waits behind it
    assert await claim(db, "d", T0 + timedelta(minutes=1)) == [answer]
    async with db.uow() as uow:
        assert await uow.outbox.finish_many([answer], "d", OutboxStatus.SENT, now=T0) == 1
        await uow.commit()
    assert await claim(db, "e", T0 + timedelta(minutes=1)) == [closed]


async def test_a_claim_takes_higher_priorities_first_each_in_due_order(
        db: Database) -> None:
    news = [await queue(db, str(i), "news", kind="broadcast") for i in range(4)]
    survey = await queue(db, "10", "survey", priority=10)
    await queue(db, "11", "reminder", priority=30, not_before=T0 + timedelta(hours=1))
    notice = await queue(db, "12", "notice", priority=20)
    assert await claim(db, "a", limit=3) == [notice, survey, news[0]]  # 30 is not due
    async with db.uow() as uow:
        batch = await uow.outbox.claim("telegram", T0, limit=50, lease=LEASE, token="b")
        await uow.commit()
    assert [m.id for m in batch] == news[1:]
    # one payload text, decoded once, but each message has its own dict
    assert batch[0].payload == batch[1].payload == {"text": "news"}
    assert batch[0].payload is not batch[1].payload


async def test_finish_many_marks_only_the_rows_the_token_still_holds(db: Database) -> None:
    ids = [await queue(db, str(i), "news") for i in range(5)]
    assert sorted(await claim(db, "mine")) == ids
    async with db.uow() as uow:
        assert await uow.outbox.finish_many(ids[:4], "other", OutboxStatus.SENT, now=T0) == 0
        assert await uow.outbox.finish_many(ids[:4], "mine", OutboxStatus.SENT, now=T0) == 4
        assert await uow.outbox.finish_many(ids, "mine", OutboxStatus.SENT, now=T0) == 1
        await uow.commit()
    async with db.uow() as uow:
        found = await uow.outbox.find(status=OutboxStatus.SENT)
    assert [m.id for m in found] == ids
    assert {(m.sent_at, m.claim_token, m.locked_until) for m in found} == {(T0, None, None)}


async def test_a_worker_marks_a_broadcast_batch_with_one_update_per_outcome(
        db: Database) -> None:
    for i in range(60):
        await queue(db, str(i), "news", kind="broadcast")
    failing = await queue(db, "60", "news", kind="broadcast")
    messenger, clock = FakeMessenger(), FakeClock(T0)
    messenger.fail("60", TransientError("502"))
    updates: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith("UPDATE OUTBOX"):
            updates.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        worker = DeliveryWorker(db.uow, "telegram", messenger, clock=clock.now,
                                sleep=clock.sleep, batch_size=100, jitter=lambda: 0.5)
        assert await worker.run_once() == 61
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    # the claim, the 60 sent in one statement, the one retry on its own
    assert len(updates) == 3, updates
    assert len(messenger.sent) == 60
    async with db.uow() as uow:
        assert len(await uow.outbox.find(status=OutboxStatus.SENT)) == 60
        retry = await uow.outbox.get(failing)
    assert retry is not None and retry.status is OutboxStatus.PENDING
    assert retry.not_before > T0 and retry.claim_token is None


async def test_a_notice_is_marked_sent_before_the_next_one_goes(db: Database) -> None:
    ids = [await queue(db, str(i), "taken into work") for i in range(3)]
    messenger, clock = FakeMessenger(), FakeClock(T0)
    marked: list[list[int]] = []

    async def before(to: Address) -> None:  # what a crash at this moment would leave
        async with db.uow() as uow:
            marked.append([m.id for m in await uow.outbox.find(status=OutboxStatus.SENT)
                           if m.id is not None])

    messenger.before_send = before
    worker = DeliveryWorker(db.uow, "telegram", messenger, clock=clock.now, sleep=clock.sleep)
    assert await worker.run_once() == 3
    assert marked == [[], ids[:1], ids[:2]]  # never more than the one in flight unmarked
