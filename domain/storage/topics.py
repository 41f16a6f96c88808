"""Complaint ⇄ forum topic of the back-office group (table ``complaint_topics``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.storage.backoffice_orm import ComplaintTopicRow
from domain.storage.repositories import _insert


@dataclass(frozen=True, slots=True)
class ComplaintTopic:
    complaint_id: int
    chat_id: int
    thread_id: int
    created_at: datetime


def _topic(row: ComplaintTopicRow) -> ComplaintTopic:
    return ComplaintTopic(row.complaint_id, row.chat_id, row.thread_id, row.created_at)


class SqlTopicStore:
    """Runs in the caller's session (e.g. ``SqlUnitOfWork.session``); the caller commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def for_complaint(self, complaint_id: int) -> ComplaintTopic | None:
        row = await self.session.get(ComplaintTopicRow, complaint_id,
                                     populate_existing=True)
        return _topic(row) if row else None

    async def by_thread(self, chat_id: int, thread_id: int) -> ComplaintTopic | None:
        """The complaint whose topic ``thread_id`` is, in the group ``chat_id``."""
        row = (await self.session.scalars(
            select(ComplaintTopicRow).where(ComplaintTopicRow.chat_id == chat_id,
                                            ComplaintTopicRow.thread_id == thread_id)
            .execution_options(populate_existing=True))).first()
        return _topic(row) if row else None

    async def put(self, complaint_id: int, chat_id: int, thread_id: int,
                  now: datetime) -> ComplaintTopic:
        """Record (or, after a topic was recreated, replace) the complaint's topic."""
        table = ComplaintTopicRow.__table__
        values = {"complaint_id": complaint_id, "chat_id": chat_id, "thread_id": thread_id,
                  "created_at": now}
        # a thread id is unique in its group: a stale row holding it is gone for good
        await self.session.execute(delete(ComplaintTopicRow).where(
            ComplaintTopicRow.chat_id == chat_id, ComplaintTopicRow.thread_id == thread_id,
            ComplaintTopicRow.complaint_id != complaint_id))
        stmt = _insert(self.session, table).values(**values).on_conflict_do_update(
            index_elements=[table.c.complaint_id],
            set_={"chat_id": chat_id, "thread_id": thread_id, "created_at": now})
        await self.session.execute(stmt)
        return ComplaintTopic(complaint_id, chat_id, thread_id, now)
