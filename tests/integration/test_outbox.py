"""The outbox on SQLite and PostgreSQL: notices committed with their change, dedup,
claims with leases and tokens, delivery, blocked citizens, and concurrent workers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dialogue.messages import Address, Channel, OutgoingMessage
from domain.calendar import WorkingCalendar
from domain.citizen import Citizen, Identity
from domain.complaint import Complaint, Status
from domain.events import ComplaintRegistered, DomainEvent
from domain.ports import OutboxStatus, UnitOfWork
from domain.services import ComplaintDraft, answer_complaint, change_status, register_complaint
from domain.storage import Database
from domain.storage.orm import OutboxRow
from notifications.delivery import Backoff, DeliveryWorker
from notifications.handlers import StatusNotifier
from notifications.messenger import TransientError
from notifications.outbox import new_message
from tests.fakes.dialogue import catalogue
from tests.fakes.messenger import FakeClock, FakeMessenger

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def notifying(db: Database) -> Database:
    """The same database, with the status notifier hooked into every commit."""
    return Database(db.engine, event_handler=StatusNotifier(catalogue()))


async def file_complaint(db: Database, *, lang: str = "ru", chat_id: str = "555") -> Complaint:
    async with db.uow() as uow:
        citizen = Citizen([Identity("telegram", "u" + chat_id, chat_id)], language=lang,
                          created_at=T0)
        citizen.give_consent(T0, "v1")
        await uow.citizens.add(citizen)
        complaint = await register_complaint(
            uow, catalogue(), WorkingCalendar(), citizen, "telegram",
            ComplaintDraft("Яма на улице Ленина", "roads", "potholes"), T0)
        await uow.commit()
    return complaint


async def queue(db: Database, chat_id: str, text: str, *, citizen_id: int | None = None,
                at: datetime = T0) -> int:
    async with db.uow() as uow:
        message = new_message("status", Address(Channel.TELEGRAM, chat_id),
                              OutgoingMessage(text), dedup_key=f"t:{chat_id}:{text}", now=at,
                              citizen_id=citizen_id)
        assert await uow.outbox.add(message)
        await uow.commit()
    assert message.id is not None
    return message.id


async def rows(db: Database, **filters: object):
    async with db.uow() as uow:
        return await uow.outbox.find(**filters)  # type: ignore[arg-type]


def worker(db: Database, messenger: FakeMessenger, clock: FakeClock,
           **kwargs: object) -> DeliveryWorker:
    options: dict[str, object] = {"clock": clock.now, "sleep": clock.sleep,
                                  "jitter": lambda: 0.0, "backoff": Backoff(base=10)}
    options.update(kwargs)
    return DeliveryWorker(db.uow, "telegram", messenger, **options)  # type: ignore[arg-type]


class TestOutbox:
    async def test_a_notice_is_committed_with_its_change_or_not_at_all(self, db: Database):
        db = notifying(db)
        complaint = await file_complaint(db, lang="en")
        assert complaint.id is not None
        async with db.uow() as uow:
            await change_status(uow, complaint.id, Status.IN_PROGRESS, actor="op", now=T0)
            await uow.rollback()
        async with db.uow() as uow:
            await change_status(uow, complaint.id, Status.IN_PROGRESS, actor="op", now=T0)
            # leaves without commit
        assert await rows(db) == []
        async with db.uow() as uow:
            loaded = await uow.complaints.get(complaint.id)
            assert loaded is not None and loaded.status is Status.NEW

        later = T0 + timedelta(hours=3)
        async with db.uow() as uow:
            await answer_complaint(uow, complaint.id, "The pit is filled.", actor="op",
                                   now=later)
            await uow.commit()
        [row] = await rows(db)
        assert OutgoingMessage.from_json(row.payload).text == (
            "Answer to your complaint №2026-000001:\n\nThe pit is filled.")
        assert OutgoingMessage.from_json(row.payload).all_buttons()[0].payload == "menu:my"
        assert (row.kind, row.channel, row.chat_id, row.citizen_id, row.complaint_id) == (
            "answer", "telegram", "555", complaint.citizen_id, complaint.id)
        assert (row.created_at, row.not_before, row.status) == (later, later,
                                                               OutboxStatus.PENDING)

    async def test_a_handler_failure_rolls_back_the_change(self, db: Database):
        async def broken(uow: UnitOfWork, events: object) -> None:
            raise RuntimeError("handler bug")

        complaint = await file_complaint(db)
        broken_db = Database(db.engine, event_handler=broken)
        async with broken_db.uow() as uow:
            await change_status(uow, complaint.id or 0, Status.IN_PROGRESS, actor="op",
                                now=T0)
            with pytest.raises(RuntimeError, match="handler bug"):
                await uow.commit()
        async with db.uow() as uow:
            loaded = await uow.complaints.get(complaint.id or 0)
            assert loaded is not None and loaded.status is Status.NEW

    async def test_the_handler_gets_the_events_with_ids_in_the_open_transaction(
            self, db: Database):
        seen: list[DomainEvent] = []

        async def record(uow: UnitOfWork, events: object) -> None:
            seen.extend(events)  # type: ignore[call-overload]
            assert await uow.complaints.by_number("2026-000001") is not None  # not committed

        complaint = await file_complaint(Database(db.engine, event_handler=record))
        assert seen == [ComplaintRegistered(complaint.id, T0, "2026-000001")]
        assert complaint.events == []

    async def test_the_dedup_key_lets_a_logical_message_be_written_once(self, db: Database):
        await queue(db, "1", "hello")
        async with db.uow() as uow:
            again = new_message("status", Address(Channel.TELEGRAM, "1"),
                                OutgoingMessage("other text"), dedup_key="t:1:hello", now=T0)
            assert await uow.outbox.add(again) is False
            assert again.id is None
            await uow.commit()
            count = await uow.session.scalar(select(func.count()).select_from(OutboxRow))
        assert count == 1
        assert [OutgoingMessage.from_json(r.payload).text for r in await rows(db)] == ["hello"]

    async def test_worker_delivers_retries_and_marks(self, db: Database):
        clock, messenger = FakeClock(T0), FakeMessenger()
        ok = await queue(db, "1", "one")
        flaky = await queue(db, "2", "two")
        messenger.fail("2", TransientError("502 Bad Gateway"))
        w = worker(db, messenger, clock)
        assert await w.run_once() == 2
        by_id = {r.id: r for r in await rows(db)}
        assert by_id[ok].status is OutboxStatus.SENT and by_id[ok].sent_at == T0
        assert by_id[flaky].status is OutboxStatus.PENDING
        assert by_id[flaky].not_before == T0 + timedelta(seconds=5)  # 10 s step, jitter 0
        assert by_id[flaky].last_error == "TransientError: 502 Bad Gateway"
        assert by_id[flaky].locked_until is None and by_id[flaky].attempts == 1
        assert await w.run_once() == 0
        clock.advance(5)
        assert await w.run_once() == 1
        assert messenger.texts() == ["one", "two"]
        assert {r.status for r in await rows(db)} == {OutboxStatus.SENT}

    async def test_a_blocked_citizen_is_marked_and_later_rows_are_not_sent(self, db: Database):
        clock, messenger = FakeClock(T0), FakeMessenger()
        async with db.uow() as uow:
            citizen = await uow.citizens.add(Citizen([Identity("telegram", "7", "7")]))
            await uow.commit()
        assert citizen.id is not None
        await queue(db, "7", "first", citizen_id=citizen.id)
        messenger.blocked_by("7")
        w = worker(db, messenger, clock, batch_size=1)
        await w.run_once()
        async with db.uow() as uow:
            stored = await uow.citizens.get(citizen.id)
            assert stored is not None and stored.reachable is False
        await queue(db, "7", "second", citizen_id=citizen.id)
        assert await w.run_once() == 0
        assert [r.status for r in await rows(db)] == [OutboxStatus.UNREACHABLE] * 2
        assert len(messenger.attempts) == 1

    async def test_a_lease_that_ran_out_lets_another_worker_resend(self, db: Database):
        clock, messenger = FakeClock(T0), FakeMessenger()
        message_id = await queue(db, "1", "hello")
        lease = timedelta(minutes=2)
        async with db.uow() as uow:  # a worker claims, then dies before sending
            [claimed] = await uow.outbox.claim("telegram", T0, limit=5, lease=lease,
                                               token="dead")
            await uow.commit()
        assert claimed.locked_until == T0 + lease and claimed.attempts == 1
        w = worker(db, messenger, clock, lease=lease)
        assert await w.run_once() == 0
        clock.advance(lease.total_seconds())
        assert await w.run_once() == 1
        assert messenger.texts() == ["hello"]
        async with db.uow() as uow:
            assert not await uow.outbox.finish(message_id, "dead", OutboxStatus.FAILED,
                                               now=clock.now())
            await uow.commit()
        [row] = await rows(db)
        assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)

    async def test_concurrent_workers_split_the_rows_and_send_each_once(self, db: Database):
        clock = FakeClock(T0)
        ids = [await queue(db, str(i), "news") for i in range(40)]
        messenger = FakeMessenger()

        async def interleave(to: Address) -> None:
            await asyncio.sleep(0)  # let the other workers claim meanwhile

        messenger.before_send = interleave
        workers = [worker(db, messenger, clock, batch_size=5) for _ in range(4)]
        # the first round claims concurrently: four disjoint batches
        assert await asyncio.gather(*(w.run_once() for w in workers)) == [5, 5, 5, 5]

        async def drain(w: DeliveryWorker) -> None:
            while await w.run_once():
                pass

        await asyncio.gather(*(drain(w) for w in workers))
        chats = [a.chat_id for a, _ in messenger.sent]
        assert sorted(chats, key=int) == [str(i) for i in range(40)]  # each exactly once
        assert [r.id for r in await rows(db, status=OutboxStatus.SENT)] == ids
