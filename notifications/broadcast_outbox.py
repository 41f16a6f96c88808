"""Writing a due broadcast's recipients to the outbox, and closing finished broadcasts.

Batch by batch, each in its own transaction that holds the broadcast's row lock
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the write lock serialises) and moves
its cursor together with the rows it writes: a crash loses at most an uncommitted batch,
and a second process either waits its turn or finds the lock taken and leaves the
broadcast to the first. The outbox's unique ``bc:<broadcast>:<citizen>`` key is the second
guard against writing a recipient twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.broadcast import Broadcast, BroadcastState
from domain.ports import OutboxMessage, OutboxStatus
from domain.storage.broadcasts import KIND, Recipient, SqlBroadcastRepository, dedup_key
from domain.storage.uow import Database
from notifications.broadcast_message import broadcast_payload
from notifications.outbox import Priority


async def materialize(db: Database, broadcast_id: int, now: datetime,
                      batch_size: int) -> int:
    """Start the broadcast if it is due, then write its recipients until all are written,
    it is paused or cancelled, or another process holds it; returns the rows written."""
    written = 0
    while True:
        async with db.uow() as uow:
            repo = SqlBroadcastRepository(uow.session)
            b = await repo.get(broadcast_id, skip_locked=True)
            if b is None:  # another process holds it, and will carry on
                return written
            if b.state is BroadcastState.SCHEDULED and b.send_at and b.send_at <= now:
                b.start(now)
            if b.state is not BroadcastState.SENDING or b.materialized:
                await repo.save(b)
                await uow.commit()
                return written
            assert b.started_at is not None
            # the audience as of the start, so "the last N days" does not drift per batch
            batch = await repo.recipients(b.audience, b.started_at, after=b.cursor,
                                          limit=batch_size)
            await repo.write_messages(outbox_messages(b, batch, now))
            if batch:
                b.cursor = batch[-1].citizen_id
            b.recipients += len(batch)
            b.materialized = len(batch) < batch_size
            await repo.save(b)
            await uow.commit()
            written += len(batch)


def outbox_messages(b: Broadcast, batch: Sequence[Recipient],
                    now: datetime) -> list[OutboxMessage]:
    assert b.id is not None
    payloads: dict[str, dict[str, Any]] = {}  # one per language, shared by the rows
    messages = []
    for r in batch:
        if r.language not in payloads:
            payloads[r.language] = broadcast_payload(b, r.language)
        messages.append(OutboxMessage(
            kind=KIND, channel=r.channel, chat_id=r.chat_id, payload=payloads[r.language],
            dedup_key=dedup_key(b.id, r.citizen_id), created_at=now, not_before=now,
            priority=Priority.BROADCAST, citizen_id=r.citizen_id))
    return messages


async def complete_finished(db: Database, now: datetime) -> int:
    """Mark done every sending broadcast whose rows are all written and none pending."""
    async with db.uow() as uow:
        ids = await SqlBroadcastRepository(uow.session).sending_ids()
    done = 0
    for broadcast_id in ids:
        async with db.uow() as uow:
            repo = SqlBroadcastRepository(uow.session)
            b = await repo.get(broadcast_id, skip_locked=True)
            if b is None or b.state is not BroadcastState.SENDING or not b.materialized:
                continue
            counts = await repo.outbox_counts(broadcast_id)
            if any(c.status is OutboxStatus.PENDING for c in counts):
                continue
            b.finish(now)
            await repo.save(b)
            await uow.commit()
            done += 1
    return done
