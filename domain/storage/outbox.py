"""The SQL outbox: rows written with the change that caused them, claimed by workers.

Claiming takes a lease (``locked_until``) and a fresh ``claim_token``; every later mark
checks the token, so a worker that stalled past its lease cannot undo what the worker
that re-claimed the row did. On PostgreSQL the claim selects with ``FOR UPDATE SKIP
LOCKED`` so concurrent workers split the due rows between them; on SQLite the write
transaction (``BEGIN IMMEDIATE``) serialises claims.

Order per chat: once a message to a chat has been tried (``attempts > 0``) and is still
pending — in flight, or waiting out its backoff — no later message to that chat is claimed,
so a retried answer is never overtaken by the closing notice queued after it. The check
probes the partial index ``ix_outbox_tried`` (migration 0011) of those few rows, not the
channel's pending rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Text,
    TextClause,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.ports import OutboxMessage, OutboxStatus
from domain.storage.orm import OUTBOX_TRIED, CitizenRow, OutboxRow
from domain.storage.repositories import _insert

FIELDS = ("kind", "channel", "chat_id", "citizen_id", "complaint_id", "dedup_key", "payload",
          "priority", "created_at", "not_before", "locked_until", "claim_token", "attempts",
          "last_error", "sent_at")
ERROR_CHARS = 1_000
IN_CHUNK = 500  # ids per IN (...) list: far below SQLite's 32,766 parameters
# ix_outbox_tried's predicate on the claim's alias of the table
TRIED_SQL = " AND ".join(f"tried.{term.strip()}" for term in OUTBOX_TRIED.split(" AND "))


# what a claim writes before the last_error of some of its messages: (ids, note) pairs
Notes = Callable[[Sequence[OutboxMessage]], Iterable[tuple[Sequence[int], str]]]


def message_from_row(row: Any) -> OutboxMessage:
    """The message of an ``OutboxRow`` (or a plain result row with its columns)."""
    values: dict[str, Any] = {name: getattr(row, name) for name in FIELDS}
    values["payload"] = dict(row.payload or {})
    return OutboxMessage(**values, status=OutboxStatus(row.status), id=row.id)


def ids_in(ids: Sequence[int]) -> TextClause:
    """``outbox.id IN (…)`` with the ids written into the statement. They are integers
    read from the database; bound one parameter each, thousands of them (a claim, a mark)
    cost SQLAlchemy more than the statement cost the database."""
    return text(f"outbox.id IN ({','.join(str(int(i)) for i in ids)})")


class SqlOutbox:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, message: OutboxMessage) -> bool:
        """Insert unless the ``dedup_key`` exists (``ON CONFLICT DO NOTHING``); sets ``id``."""
        table = OutboxRow.__table__
        values = {name: getattr(message, name) for name in FIELDS}
        values["status"] = str(message.status)
        stmt = (_insert(self.session, table).values(**values)
                .on_conflict_do_nothing(index_elements=[table.c.dedup_key])
                .returning(table.c.id))
        new_id = (await self.session.execute(stmt)).scalar_one_or_none()
        if new_id is None:
            return False
        message.id = new_id
        return True

    async def get(self, message_id: int) -> OutboxMessage | None:
        query = (select(OutboxRow).where(OutboxRow.id == message_id)
                 .execution_options(populate_existing=True))
        row = (await self.session.scalars(query)).first()
        return message_from_row(row) if row else None

    async def find(self, *, status: OutboxStatus | None = None, channel: str | None = None,
                   citizen_id: int | None = None) -> list[OutboxMessage]:
        query = select(OutboxRow).order_by(OutboxRow.id)
        if status is not None:
            query = query.where(OutboxRow.status == str(status))
        if channel is not None:
            query = query.where(OutboxRow.channel == channel)
        if citizen_id is not None:
            query = query.where(OutboxRow.citizen_id == citizen_id)
        rows = await self.session.scalars(query.execution_options(populate_existing=True))
        return [message_from_row(row) for row in rows]

    async def claim(self, channel: str, now: datetime, *, limit: int, lease: timedelta,
                    token: str, notes: Notes | None = None) -> list[OutboxMessage]:
        pending = str(OutboxStatus.PENDING)
        # nothing after a message to the same chat that was tried and is still pending: a
        # probe of the partial index ix_outbox_tried per candidate row. Its predicate is
        # written out, not bound: neither planner matches a partial index to a parameter.
        tried = aliased(OutboxRow, name="tried")
        overtakes = (select(tried.id)
                     .where(tried.channel == channel, tried.chat_id == OutboxRow.chat_id,
                            tried.id < OutboxRow.id, text(TRIED_SQL))
                     .exists())
        due = (select(OutboxRow.id, CitizenRow.reachable)
               .outerjoin(CitizenRow, CitizenRow.id == OutboxRow.citizen_id)
               .where(OutboxRow.channel == channel,
                      OutboxRow.status == pending,
                      OutboxRow.not_before <= now,
                      or_(OutboxRow.locked_until.is_(None), OutboxRow.locked_until <= now),
                      ~overtakes)
               .order_by(OutboxRow.not_before, OutboxRow.id)
               .with_for_update(of=OutboxRow, skip_locked=True))
        # one priority at a time, highest first: within one, the due index
        # (channel, status, priority, not_before) is already in claim order, so the database
        # reads the first ``limit`` rows; across priorities (DESC, then not_before ASC) it
        # had to sort every pending row of the channel — a whole broadcast — each claim
        found: list[Any] = []
        below: int | None = None
        while len(found) < limit:
            top = select(func.max(OutboxRow.priority)).where(OutboxRow.channel == channel,
                                                              OutboxRow.status == pending)
            if below is not None:
                top = top.where(OutboxRow.priority < below)
            below = (await self.session.execute(top)).scalar()
            if below is None:
                break
            found += (await self.session.execute(
                due.where(OutboxRow.priority == below).limit(limit - len(found)))).all()
        blocked = [row_id for row_id, reachable in found if reachable is False]
        claimed = [row_id for row_id, reachable in found if reachable is not False]
        if blocked:
            await self.session.execute(
                update(OutboxRow).where(OutboxRow.id.in_(blocked))
                .values(status=str(OutboxStatus.UNREACHABLE), locked_until=None,
                        claim_token=None).execution_options(synchronize_session=False))
        if not claimed:
            return []
        # plain rows, not ORM objects: a batch of thousands would otherwise sit in the
        # session's identity map and be walked at every commit. The payload comes as text
        # and is decoded once per distinct text: a broadcast's rows share one, and decoding
        # it for each of them was most of a big claim's time. Read before the UPDATE, so
        # the notes on them go in the same statement (each row is written once).
        table = OutboxRow.__table__
        columns = [type_coerce(table.c.payload, Text) if name == "payload" else table.c[name]
                   for name in FIELDS]
        rows = await self.session.execute(
            select(*columns, table.c.status, table.c.id).where(ids_in(claimed))
            .order_by(table.c.priority.desc(), table.c.not_before, table.c.id))
        decoded: dict[str, dict[str, Any]] = {}
        messages = []
        for *values, status, row_id in rows:
            fields = dict(zip(FIELDS, values, strict=True))
            payload = fields["payload"]
            if isinstance(payload, str):
                cached = decoded.get(payload)
                if cached is None:
                    cached = decoded[payload] = json.loads(payload)
                payload = cached
            fields["payload"] = dict(payload or {})
            fields.update(locked_until=now + lease, claim_token=token,
                          attempts=fields["attempts"] + 1)
            messages.append(OutboxMessage(**fields, status=OutboxStatus(status), id=row_id))
        claim: dict[str, Any] = {"locked_until": now + lease, "claim_token": token,
                                 "attempts": OutboxRow.attempts + 1}
        noted = [(ids_in(ids), literal(note, Text) + OutboxRow.last_error)
                 for ids, note in (notes(messages) if notes else ()) if ids]
        if noted:
            claim["last_error"] = case(*noted, else_=OutboxRow.last_error)
        await self.session.execute(
            update(OutboxRow).where(ids_in(claimed)).values(**claim)
            .execution_options(synchronize_session=False))
        return messages

    async def finish(self, message_id: int, token: str, status: OutboxStatus, *,
                     now: datetime, error: str = "") -> bool:
        if status is OutboxStatus.PENDING:
            raise ValueError("use reschedule() to make a message due again")
        values: dict[str, Any] = {"status": str(status), "locked_until": None,
                                  "claim_token": None}
        if status is OutboxStatus.SENT:
            values["sent_at"] = now
        if error:
            values["last_error"] = error[:ERROR_CHARS]
        return await self._update_claimed(message_id, token, values)

    async def finish_many(self, message_ids: Sequence[int], token: str,
                          status: OutboxStatus, *, now: datetime) -> int:
        """:meth:`finish` for many messages in one statement; returns how many were
        still held by ``token``."""
        if status is OutboxStatus.PENDING:
            raise ValueError("use reschedule() to make a message due again")
        if not message_ids:
            return 0
        values: dict[str, Any] = {"status": str(status), "locked_until": None,
                                  "claim_token": None}
        if status is OutboxStatus.SENT:
            values["sent_at"] = now
        done = 0
        ids = list(message_ids)
        for start in range(0, len(ids), IN_CHUNK):
            result = await self.session.execute(
                update(OutboxRow)
                .where(ids_in(ids[start:start + IN_CHUNK]),
                       OutboxRow.claim_token == token,
                       OutboxRow.status == str(OutboxStatus.PENDING))
                .values(**values).execution_options(synchronize_session=False))
            done += int(getattr(result, "rowcount", 0) or 0)
        return done

    async def reschedule(self, message_id: int, token: str, *, not_before: datetime,
                         error: str = "") -> bool:
        values: dict[str, Any] = {"not_before": not_before, "locked_until": None,
                                  "claim_token": None}
        if error:
            values["last_error"] = error[:ERROR_CHARS]
        return await self._update_claimed(message_id, token, values)

    async def release(self, message_ids: Sequence[int], token: str) -> None:
        if not message_ids:
            return
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(list(message_ids)), OutboxRow.claim_token == token,
                   OutboxRow.status == str(OutboxStatus.PENDING))
            .values(locked_until=None, claim_token=None, attempts=OutboxRow.attempts - 1)
            .execution_options(synchronize_session=False))

    async def drop_pending_for(self, citizen_id: int, status: OutboxStatus, *,
                               now: datetime) -> int:
        result = await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.citizen_id == citizen_id,
                   OutboxRow.status == str(OutboxStatus.PENDING),
                   # a message another worker holds right now is left to that worker
                   or_(OutboxRow.locked_until.is_(None), OutboxRow.locked_until <= now))
            .values(status=str(status), locked_until=None, claim_token=None)
            .execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)

    async def _update_claimed(self, message_id: int, token: str,
                              values: dict[str, Any]) -> bool:
        result = await self.session.execute(
            update(OutboxRow)
            .where(and_(OutboxRow.id == message_id, OutboxRow.claim_token == token,
                        OutboxRow.status == str(OutboxStatus.PENDING)))
            .values(**values).execution_options(synchronize_session=False))
        return bool(getattr(result, "rowcount", 0))
