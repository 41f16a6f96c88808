"""A request to many chats has its key written to its rows in the transaction of the claim,
before it is sent, so a worker that dies between the send and the mark leaves them pinned
to it (:mod:`notifications.delivery_batch`). SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from dialogue.messages import Address, Channel, OutgoingMessage
from domain.ports import OutboxStatus
from domain.storage import Database
from notifications.delivery import DeliveryWorker
from notifications.delivery_batch import pinned, pinned_key
from notifications.messenger import SendResult
from notifications.outbox import new_message
from tests.fakes.messenger import FakeClock, FakeMessenger

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
EARLIER = "TransientError: 502 Bad Gateway"


class PeekingManyMessenger(FakeMessenger):
    """Sends one message to many chats in one request; while it sends, it reads what the
    database holds for those chats' rows."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        self.requests: list[tuple[list[str], str, set[str | None]]] = []

    async def send_many(self, to: Sequence[Address], msg: OutgoingMessage, *,
                        key: str) -> list[SendResult]:
        chats = [a.chat_id for a in to]
        async with self.db.uow() as uow:
            stored = {pinned_key(m) for m in await uow.outbox.find(channel="vk")
                      if m.chat_id in chats}
        self.requests.append((chats, key, stored))
        self.sent += [(address, msg) for address in to]
        return [SendResult.OK] * len(to)


async def add(db: Database, kind: str, chat: str, *, error: str = "") -> int:
    async with db.uow() as uow:
        message = new_message(kind, Address(Channel.VK, chat), OutgoingMessage("news"),
                              dedup_key=f"{kind}:{chat}", now=T0)
        message.last_error = error
        assert await uow.outbox.add(message)
        await uow.commit()
    assert message.id is not None
    return message.id


async def test_the_key_is_on_the_rows_before_the_request_is_sent(db: Database) -> None:
    ids = [await add(db, "broadcast", str(chat), error=EARLIER if chat == 2 else "")
           for chat in (1, 2, 3)]
    notice = await add(db, "status", "4")
    clock = FakeClock(T0)
    messenger = PeekingManyMessenger(db)
    worker = DeliveryWorker(db.uow, "vk", messenger, clock=clock.now, sleep=clock.sleep)
    assert await worker.run_once() == 4

    [(chats, key, stored)] = messenger.requests
    assert chats == ["1", "2", "3"] and stored == {key}  # written before the send
    assert [a.chat_id for a in messenger.attempts] == ["4"]  # a notice goes on its own
    async with db.uow() as uow:
        rows = {m.id: m for m in await uow.outbox.find(channel="vk")}
    assert {m.status for m in rows.values()} == {OutboxStatus.SENT}
    assert rows[ids[1]].last_error == pinned(EARLIER, key)  # the earlier error is kept
    assert rows[ids[0]].last_error == pinned("", key) and rows[notice].last_error == ""


async def test_a_claim_writes_its_notes_on_the_rows_it_claims_only(db: Database) -> None:
    first, second, third = [await add(db, "broadcast", str(chat), error=EARLIER)
                            for chat in (1, 2, 3)]
    async with db.uow() as uow:
        claimed = await uow.outbox.claim(
            "vk", T0, limit=2, lease=timedelta(minutes=1), token="t1",
            notes=lambda batch: [([batch[0].id or 0, third], "[request x] "), ([], "[y] ")])
        await uow.commit()
    assert [m.id for m in claimed] == [first, second]
    assert {m.last_error for m in claimed} == {EARLIER}  # as read, not as noted
    async with db.uow() as uow:
        stored = {m.id: m for m in await uow.outbox.find()}
    assert {i: m.last_error for i, m in stored.items()} == {
        first: "[request x] " + EARLIER, second: EARLIER, third: EARLIER}
    for message in claimed:  # the claim's lease as the rows hold it
        row = stored[message.id]
        assert (row.claim_token, row.attempts, row.locked_until) == (
            message.claim_token, message.attempts, message.locked_until) == (
            "t1", 1, T0 + timedelta(minutes=1))
