"""Broadcasts: create, count the audience, schedule or send now, pause, resume, cancel,
watch progress; and :meth:`BroadcastService.run_due`, which writes the recipients of due
broadcasts to the outbox.

Materialization writes ``batch_size`` recipients per transaction, in citizen-id order,
holding the broadcast's row lock (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write
lock serialises anyway) and moving its cursor in the same transaction. So two processes
running ``run_due`` at once, or one restarted after a crash, continue where the last
committed batch ended; the outbox's unique ``bc:<broadcast>:<citizen>`` key is the second
guard. Rows get the lowest priority, so status notices overtake a running broadcast.

Pause holds the broadcast's pending rows back (``not_before`` far in the future); resume
makes them due again; cancel closes them as failed with the error "broadcast cancelled".
A row a worker has already claimed is still sent: at most one batch per worker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from domain.broadcast import Audience, Broadcast, BroadcastState, Link
from domain.catalogue import Catalogue
from domain.ports import OutboxStatus
from domain.storage.broadcasts import SqlBroadcastRepository
from domain.storage.uow import Database
from notifications.broadcast_outbox import complete_finished, materialize
from notifications.ratelimit import DEFAULT_LIMITS, RateLimit

BATCH_SIZE = 1000
Change = Callable[[SqlBroadcastRepository, Broadcast], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a broadcast stands. ``remaining`` counts recipients not yet sent to: pending
    outbox rows (``held`` of them by a pause) and, before materialization has finished,
    eligible citizens not yet written. ``eta`` is the time the remaining messages need at
    the channels' rate limits (channels send in parallel); ``None`` when nothing is left."""

    broadcast: Broadcast
    sent: int = 0
    failed: int = 0
    unreachable: int = 0
    cancelled: int = 0
    held: int = 0
    remaining: int = 0
    remaining_by_channel: Mapping[str, int] = field(default_factory=dict)
    eta: timedelta | None = None


class BroadcastService:
    """The broadcast use cases over one :class:`Database`.

    ``limits`` are the channels' rate limits (for the ETA); ``catalogue``, if given,
    checks municipality and sector slugs of audiences.
    """

    def __init__(self, db: Database, *, catalogue: Catalogue | None = None,
                 limits: Mapping[str, RateLimit] = DEFAULT_LIMITS,
                 clock: Callable[[], datetime] = utc_now,
                 batch_size: int = BATCH_SIZE) -> None:
        self.db = db
        self.catalogue = catalogue
        self.limits = limits
        self.clock = clock
        self.batch_size = batch_size

    # --- staff actions ----------------------------------------------------------------------
    async def create(self, text: str, *, created_by: str, audience: Audience | None = None,
                     photo: str | None = None, links: Sequence[Link] = (),
                     send_at: datetime | None = None) -> Broadcast:
        """A new draft (or, with ``send_at``, a scheduled broadcast) with its audience
        counted."""
        audience = audience or Audience()
        self._check(audience)
        now = self.clock()
        broadcast = Broadcast(text, created_by, now, audience, photo, tuple(links))
        if send_at is not None:
            self._check_time(send_at, now)
            broadcast.schedule(send_at)
        async with self.db.uow() as uow:
            repo = SqlBroadcastRepository(uow.session)
            broadcast.audience_size = await repo.count(audience, now)
            await repo.add(broadcast)
            await uow.commit()
        return broadcast

    async def audience(self, audience: Audience) -> int:
        """How many citizens a broadcast to ``audience`` would reach now."""
        self._check(audience)
        async with self.db.uow() as uow:
            return await SqlBroadcastRepository(uow.session).count(audience, self.clock())

    async def get(self, broadcast_id: int) -> Broadcast:
        async with self.db.uow() as uow:
            return await self._get(SqlBroadcastRepository(uow.session), broadcast_id)

    async def list(self, limit: int = 50) -> list[Broadcast]:
        async with self.db.uow() as uow:
            return await SqlBroadcastRepository(uow.session).latest(limit)

    async def schedule(self, broadcast_id: int, at: datetime) -> Broadcast:
        now = self.clock()
        self._check_time(at, now)

        async def change(repo: SqlBroadcastRepository, b: Broadcast) -> None:
            b.schedule(at)
            b.audience_size = await repo.count(b.audience, now)
        return await self._change(broadcast_id, change)

    async def send_now(self, broadcast_id: int) -> Broadcast:
        """Schedule for now and write the recipients at once."""
        now = self.clock()

        async def change(repo: SqlBroadcastRepository, b: Broadcast) -> None:
            b.schedule(now)
            b.audience_size = await repo.count(b.audience, now)
        await self._change(broadcast_id, change)
        await self.materialize(broadcast_id, now)
        return await self.get(broadcast_id)

    async def pause(self, broadcast_id: int) -> Broadcast:
        async def change(repo: SqlBroadcastRepository, b: Broadcast) -> None:
            b.pause()
            await repo.hold_pending(broadcast_id)
        return await self._change(broadcast_id, change)

    async def resume(self, broadcast_id: int) -> Broadcast:
        now = self.clock()

        async def change(repo: SqlBroadcastRepository, b: Broadcast) -> None:
            b.resume()
            await repo.release_pending(broadcast_id, now)
        return await self._change(broadcast_id, change)

    async def cancel(self, broadcast_id: int) -> Broadcast:
        now = self.clock()

        async def change(repo: SqlBroadcastRepository, b: Broadcast) -> None:
            b.cancel(now)
            await repo.cancel_pending(broadcast_id, now)
        return await self._change(broadcast_id, change)

    async def progress(self, broadcast_id: int) -> Progress:
        now = self.clock()
        async with self.db.uow() as uow:
            repo = SqlBroadcastRepository(uow.session)
            b = await self._get(repo, broadcast_id)
            totals = {status: 0 for status in OutboxStatus}
            cancelled = held = 0
            remaining: dict[str, int] = {}
            for row in await repo.outbox_counts(broadcast_id):
                totals[row.status] += row.count
                cancelled += row.count if row.cancelled else 0
                held += row.count if row.held else 0
                if row.status is OutboxStatus.PENDING:
                    remaining[row.channel] = remaining.get(row.channel, 0) + row.count
            if not b.materialized and b.state in (BroadcastState.DRAFT, BroadcastState.SCHEDULED,
                                                  BroadcastState.SENDING,
                                                  BroadcastState.PAUSED):
                when = b.started_at or now
                unwritten = await repo.count_by_channel(b.audience, when, after=b.cursor)
                for channel, n in unwritten.items():
                    remaining[channel] = remaining.get(channel, 0) + n
        return Progress(b, sent=totals[OutboxStatus.SENT],
                        failed=totals[OutboxStatus.FAILED] - cancelled,
                        unreachable=totals[OutboxStatus.UNREACHABLE], cancelled=cancelled,
                        held=held, remaining=sum(remaining.values()),
                        remaining_by_channel=remaining, eta=self._eta(remaining))

    # --- the scheduler's entry point --------------------------------------------------------
    async def run_due(self, now: datetime | None = None) -> int:
        """Write the recipients of every due broadcast to the outbox and mark finished
        broadcasts done; returns how many outbox rows were written. Idempotent, and safe
        to run in several processes at once."""
        now = now or self.clock()
        async with self.db.uow() as uow:
            due = await SqlBroadcastRepository(uow.session).due_ids(now)
        written = 0
        for broadcast_id in due:
            written += await self.materialize(broadcast_id, now)
        await complete_finished(self.db, now)
        return written

    async def materialize(self, broadcast_id: int, now: datetime) -> int:
        """Write the broadcast's recipients batch by batch until done, paused, cancelled
        or taken over by another process; returns how many rows this call wrote."""
        return await materialize(self.db, broadcast_id, now, self.batch_size)

    def _eta(self, remaining: Mapping[str, int]) -> timedelta | None:
        seconds = 0.0
        for channel, n in remaining.items():
            rate = self.limits.get(channel, RateLimit()).per_second
            if n and rate:
                seconds = max(seconds, n / rate)
        return timedelta(seconds=seconds) if any(remaining.values()) else None

    async def _get(self, repo: SqlBroadcastRepository, broadcast_id: int,
                   lock: bool = False) -> Broadcast:
        b = await repo.get(broadcast_id, lock=lock)
        if b is None:
            raise LookupError(f"no broadcast {broadcast_id}")
        return b

    async def _change(self, broadcast_id: int, change: Change) -> Broadcast:
        """Apply ``change`` to the broadcast under its row lock, in one transaction."""
        async with self.db.uow() as uow:
            repo = SqlBroadcastRepository(uow.session)
            b = await self._get(repo, broadcast_id, lock=True)
            await change(repo, b)
            await repo.save(b)
            await uow.commit()
        return b

    def _check(self, audience: Audience) -> None:
        if self.catalogue is None:
            return
        munis = {m.slug for m in self.catalogue.municipalities}
        sectors = {s.slug for s in self.catalogue.sectors}
        for slug in audience.municipalities + audience.complained_municipalities:
            if slug not in munis:
                raise ValueError(f"unknown municipality {slug!r}")
        for slug in audience.sectors + audience.complained_sectors:
            if slug not in sectors:
                raise ValueError(f"unknown sector {slug!r}")

    @staticmethod
    def _check_time(at: datetime, now: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("the send time must be timezone-aware")
        if at < now - timedelta(minutes=1):
            raise ValueError("the send time is in the past")

