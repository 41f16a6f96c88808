"""The deadline watch in SQL: which open complaints are near or past a deadline.

Each level is claimed with one ``UPDATE ... WHERE <not yet marked> ... RETURNING``, so the
mark that makes a complaint count as overdue in reports is also what keeps the escalation
from being written twice, even by two processes. Every query repeats the predicate of one
of the partial indexes on ``complaints`` literally, so it reads only open complaints that
are still watched, not the whole table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.storage.orm import FIRST_ANSWER_WATCHED, NEAR_UNSET, RESOLUTION_WATCHED, ComplaintRow


class Deadline(StrEnum):
    FIRST_ANSWER = "first_answer"
    RESOLUTION = "resolution"


class Level(StrEnum):
    NEAR = "near"
    OVERDUE = "overdue"


@dataclass(frozen=True, slots=True)
class DeadlineHit:
    """A complaint that has just reached ``level`` of ``deadline``."""

    complaint_id: int
    number: str
    deadline: Deadline
    level: Level
    due_at: datetime
    created_at: datetime
    status: str
    agency: str
    sector: str
    municipality: str | None


@dataclass(frozen=True, slots=True)
class Unset:
    """An open complaint whose near-deadline moments are not computed yet."""

    complaint_id: int
    created_at: datetime
    first_answer_due: datetime
    resolution_due: datetime


_C = ComplaintRow
_COLUMNS = {
    Deadline.FIRST_ANSWER: (FIRST_ANSWER_WATCHED, _C.first_answer_due, _C.first_answer_near_at,
                            "first_answer_near_notified_at", "first_answer_overdue_at"),
    Deadline.RESOLUTION: (RESOLUTION_WATCHED, _C.resolution_due, _C.resolution_near_at,
                          "resolution_near_notified_at", "resolution_overdue_at"),
}


class SqlDeadlineWatch:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def unset(self, *, limit: int) -> list[Unset]:
        query = (select(_C.id, _C.created_at, _C.first_answer_due, _C.resolution_due)
                 .where(text(NEAR_UNSET)).order_by(_C.id).limit(limit))
        return [Unset(*row) for row in (await self.session.execute(query)).all()]

    async def set_near(self, moments: Sequence[tuple[int, datetime, datetime]]) -> None:
        """Store ``(complaint_id, first_answer_near_at, resolution_near_at)``."""
        if not moments:
            return
        table = ComplaintRow.__table__
        stmt = (update(table).where(table.c.id == bindparam("cid"))  # type: ignore[arg-type]
                .values(first_answer_near_at=bindparam("fa"),
                        resolution_near_at=bindparam("res")))
        await self.session.execute(stmt, [{"cid": c, "fa": fa, "res": res}
                                          for c, fa, res in moments])

    async def claim(self, deadline: Deadline, level: Level, now: datetime, *,
                    limit: int) -> list[DeadlineHit]:
        """Mark up to ``limit`` complaints that reached ``level`` of ``deadline`` at ``now``
        and return them. Overdue wins: a complaint past its deadline is never "near"."""
        watched, due, near_at, notified, overdue = _COLUMNS[deadline]
        if level is Level.OVERDUE:
            where: list[Any] = [text(watched), due < now]
            mark = {overdue: now}
        else:
            where = [text(watched), getattr(_C, notified).is_(None), near_at <= now,
                     due >= now]
            mark = {notified: now}
        candidates = (select(_C.id).where(*where).order_by(due, _C.id).limit(limit)
                      .with_for_update(skip_locked=True))
        stmt = (update(_C).where(_C.id.in_(candidates.scalar_subquery()), *where)
                .values(**mark)
                .returning(_C.id, _C.number, due, _C.created_at, _C.status, _C.agency,
                           _C.sector, _C.municipality)
                .execution_options(synchronize_session=False))
        rows = (await self.session.execute(stmt)).all()
        hits = [DeadlineHit(cid, number, deadline, level, due_at, created, status, agency,
                            sector, muni)
                for cid, number, due_at, created, status, agency, sector, muni in rows]
        return sorted(hits, key=lambda h: (h.due_at, h.complaint_id))
