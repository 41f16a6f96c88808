"""SQL storage of broadcasts: the aggregate, its audience queries and its outbox rows.

The audience is counted and listed in SQL (a ``COUNT`` over citizens, never a fetch), and
recipients are written to the outbox in keyset batches ordered by citizen id. A
broadcast's outbox rows are found by their dedup key, ``bc:<broadcast>:<citizen>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, exists, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.types import Text

from domain.broadcast import Audience, Broadcast, BroadcastState, Link
from domain.ports import OutboxMessage, OutboxStatus
from domain.storage.broadcasts_orm import BroadcastRow
from domain.storage.orm import CitizenRow, ComplaintRow, IdentityRow, OutboxRow
from domain.storage.outbox import FIELDS
from domain.storage.repositories import _insert

KIND = "broadcast"
# Pending rows of a paused broadcast wait "forever"; resuming makes them due again.
HELD_UNTIL = datetime(9999, 1, 1, tzinfo=UTC)
CANCELLED = "broadcast cancelled"  # last_error of rows closed by a cancel
ROW_FIELDS = ("text", "photo", "state", "send_at", "created_by", "created_at",
              "audience_size", "recipients", "cursor", "materialized", "started_at",
              "finished_at")


def dedup_key(broadcast_id: int, citizen_id: int) -> str:
    return f"bc:{broadcast_id}:{citizen_id}"


@dataclass(frozen=True, slots=True)
class Recipient:
    citizen_id: int
    language: str
    channel: str
    chat_id: str


@dataclass(frozen=True, slots=True)
class OutboxCount:
    channel: str
    status: OutboxStatus
    held: bool  # pending, but held back by a pause
    cancelled: bool  # closed by a cancel
    count: int


def broadcast_from_row(row: BroadcastRow) -> Broadcast:
    values: dict[str, Any] = {name: getattr(row, name) for name in ROW_FIELDS}
    values["state"] = BroadcastState(row.state)
    return Broadcast(**values, audience=Audience.from_json(dict(row.audience or {})),
                     links=tuple(Link(x["label"], x["url"]) for x in row.links or ()),
                     id=row.id)


def write_broadcast(row: BroadcastRow, broadcast: Broadcast) -> None:
    for name in ROW_FIELDS:
        setattr(row, name, getattr(broadcast, name))
    row.state = str(broadcast.state)
    row.audience = broadcast.audience.to_json()
    row.links = [{"label": x.label, "url": x.url} for x in broadcast.links]


class SqlBroadcastRepository:
    """Works inside one unit of work's session; flushes, never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    # --- the aggregate ----------------------------------------------------------------------
    async def add(self, broadcast: Broadcast) -> Broadcast:
        row = BroadcastRow()
        write_broadcast(row, broadcast)
        self.session.add(row)
        await self.session.flush()
        broadcast.id = row.id
        return broadcast

    async def get(self, broadcast_id: int, *, lock: bool = False,
                  skip_locked: bool = False) -> Broadcast | None:
        """The broadcast; with ``lock`` its row is locked until the transaction ends
        (``skip_locked``: ``None`` instead of waiting if another transaction holds it)."""
        query = (select(BroadcastRow).where(BroadcastRow.id == broadcast_id)
                 .execution_options(populate_existing=True))
        if lock or skip_locked:
            query = query.with_for_update(skip_locked=skip_locked)
        row = (await self.session.scalars(query)).first()
        return broadcast_from_row(row) if row else None

    async def save(self, broadcast: Broadcast) -> None:
        row = await self.session.get(BroadcastRow, broadcast.id) if broadcast.id else None
        if row is None:
            raise LookupError(f"broadcast {broadcast.id} is not stored")
        write_broadcast(row, broadcast)
        await self.session.flush()

    async def latest(self, limit: int = 50) -> list[Broadcast]:
        query = select(BroadcastRow).order_by(BroadcastRow.id.desc()).limit(limit)
        return [broadcast_from_row(row) for row in await self.session.scalars(query)]

    async def due_ids(self, now: datetime) -> list[int]:
        """Broadcasts whose recipients should be written now: scheduled and due, or
        sending with recipients left to write (a crash interrupted them)."""
        query = (select(BroadcastRow.id)
                 .where(((BroadcastRow.state == str(BroadcastState.SCHEDULED))
                         & (BroadcastRow.send_at <= now))
                        | ((BroadcastRow.state == str(BroadcastState.SENDING))
                           & BroadcastRow.materialized.is_(False)))
                 .order_by(BroadcastRow.send_at, BroadcastRow.id))
        return list(await self.session.scalars(query))

    async def sending_ids(self) -> list[int]:
        query = select(BroadcastRow.id).where(
            BroadcastRow.state == str(BroadcastState.SENDING),
            BroadcastRow.materialized.is_(True))
        return list(await self.session.scalars(query))

    # --- the audience -----------------------------------------------------------------------
    def _conditions(self, audience: Audience, now: datetime) -> list[ColumnElement[bool]]:
        citizen = CitizenRow
        where: list[ColumnElement[bool]] = [citizen.reachable.is_(True),
                                            citizen.broadcast_opt_out.is_(False)]
        if audience.municipalities:
            where.append(citizen.subscribed_municipality.in_(audience.municipalities))
        if audience.languages:
            where.append(citizen.language.in_(audience.languages))
        if audience.sectors:
            where.append(self._subscribed_to_any(audience.sectors))
        if audience.by_complaints:
            # uncorrelated IN: the matching complaints are found once (by their own
            # indexes), not searched again for every citizen
            complaint = select(ComplaintRow.citizen_id)
            if audience.complained_sectors:
                complaint = complaint.where(ComplaintRow.sector.in_(audience.complained_sectors))
            if audience.complained_municipalities:
                complaint = complaint.where(
                    ComplaintRow.municipality.in_(audience.complained_municipalities))
            if audience.complained_days:
                since = now - timedelta(days=audience.complained_days)
                complaint = complaint.where(ComplaintRow.created_at >= since)
            where.append(citizen.id.in_(complaint))
        return where

    def _subscribed_to_any(self, sectors: Sequence[str]) -> ColumnElement[bool]:
        column = CitizenRow.subscribed_sectors
        if self.dialect == "postgresql":  # JSONB "contains any of these strings"
            return column.op("?|")(literal(list(sectors), ARRAY(Text)))
        each = func.json_each(column).table_valued("value")
        return exists(select(literal(1)).select_from(each).where(each.c.value.in_(sectors)))

    def _recipients(self, audience: Audience, now: datetime) -> Select[int, str, str, str]:
        # the citizen's oldest identity on the channels: no older one exists (index-friendly
        # on both databases, unlike joining on a correlated min())
        channels = audience.effective_channels
        older = aliased(IdentityRow)
        has_older = exists(select(literal(1)).select_from(older).where(
            older.citizen_id == CitizenRow.id, older.channel.in_(channels),
            older.id < IdentityRow.id))
        return (select(CitizenRow.id, CitizenRow.language, IdentityRow.channel,
                       IdentityRow.chat_id)
                .join(IdentityRow, (IdentityRow.citizen_id == CitizenRow.id)
                      & IdentityRow.channel.in_(channels))
                .where(~has_older, *self._conditions(audience, now)))

    async def count(self, audience: Audience, now: datetime) -> int:
        """How many eligible citizens the audience has."""
        has_identity = exists(select(literal(1)).select_from(IdentityRow).where(
            IdentityRow.citizen_id == CitizenRow.id,
            IdentityRow.channel.in_(audience.effective_channels)))
        query = (select(func.count()).select_from(CitizenRow)
                 .where(has_identity, *self._conditions(audience, now)))
        return int((await self.session.execute(query)).scalar_one())

    async def count_by_channel(self, audience: Audience, now: datetime, *,
                               after: int = 0) -> dict[str, int]:
        """The audience per channel, of citizens with an id above ``after``."""
        sub = self._recipients(audience, now).where(CitizenRow.id > after).subquery()
        query = select(sub.c.channel, func.count()).group_by(sub.c.channel)
        return {str(ch): int(n) for ch, n in (await self.session.execute(query)).all()}

    async def recipients(self, audience: Audience, now: datetime, *, after: int,
                         limit: int) -> list[Recipient]:
        """The next ``limit`` recipients with a citizen id above ``after``, by id."""
        query = (self._recipients(audience, now).where(CitizenRow.id > after)
                 .order_by(CitizenRow.id).limit(limit))
        return [Recipient(int(cid), str(lang), str(ch), str(chat))
                for cid, lang, ch, chat in (await self.session.execute(query)).all()]

    # --- its outbox rows --------------------------------------------------------------------
    async def write_messages(self, messages: Sequence[OutboxMessage]) -> None:
        """Insert outbox rows in one statement per batch; existing dedup keys are skipped."""
        if not messages:
            return
        table = OutboxRow.__table__
        rows = [{**{name: getattr(m, name) for name in FIELDS}, "status": str(m.status)}
                for m in messages]
        stmt = _insert(self.session, table).on_conflict_do_nothing(
            index_elements=[table.c.dedup_key])
        await self.session.execute(stmt, rows)

    @staticmethod
    def _rows_of(broadcast_id: int) -> list[ColumnElement[bool]]:
        return [OutboxRow.kind == KIND, OutboxRow.dedup_key.like(f"bc:{broadcast_id}:%")]

    async def outbox_counts(self, broadcast_id: int) -> list[OutboxCount]:
        held = case((OutboxRow.not_before >= HELD_UNTIL, True), else_=False)
        cancelled = case((OutboxRow.last_error == CANCELLED, True), else_=False)
        query = (select(OutboxRow.channel, OutboxRow.status, held, cancelled, func.count())
                 .where(*self._rows_of(broadcast_id))
                 .group_by(OutboxRow.channel, OutboxRow.status, held, cancelled))
        return [OutboxCount(str(ch), OutboxStatus(st), bool(h), bool(c), int(n))
                for ch, st, h, c, n in (await self.session.execute(query)).all()]

    async def _update_pending(self, broadcast_id: int, *where: ColumnElement[bool],
                              **values: Any) -> int:
        result = await self.session.execute(
            update(OutboxRow)
            .where(*self._rows_of(broadcast_id), OutboxRow.status == str(OutboxStatus.PENDING),
                   *where)
            .values(**values).execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)

    async def hold_pending(self, broadcast_id: int) -> int:
        """Pause: pending rows are not due until resumed. A row a worker holds right now
        is still sent (at most one batch per worker)."""
        return await self._update_pending(broadcast_id, not_before=HELD_UNTIL)

    async def release_pending(self, broadcast_id: int, now: datetime) -> int:
        """Resume: pending rows are due at once."""
        return await self._update_pending(broadcast_id, not_before=now)

    async def cancel_pending(self, broadcast_id: int, now: datetime) -> int:
        """Cancel: pending rows are closed as failed, marked :data:`CANCELLED`; a row a
        worker is sending right now is left to that worker."""
        return await self._update_pending(
            broadcast_id, or_(OutboxRow.locked_until.is_(None), OutboxRow.locked_until <= now),
            status=str(OutboxStatus.FAILED), last_error=CANCELLED)
