"""Labelled examples the system learns from: complaints an operator reclassified."""

from __future__ import annotations

from sqlalchemy import select

from domain.complaint import ClassifiedBy
from domain.storage.orm import ComplaintRow
from domain.storage.uow import Database


async def reclassified_examples(database: Database) -> list[tuple[str, str, str]]:
    """``(text, sector, category)`` of every complaint whose classification an operator set;
    the latest reclassification wins, since the row holds the current one."""
    async with database.uow() as uow:
        rows = await uow.session.execute(
            select(ComplaintRow.text, ComplaintRow.sector, ComplaintRow.category)
            .where(ComplaintRow.classified_by == ClassifiedBy.OPERATOR.value)
            .order_by(ComplaintRow.id))
        return [(t, s, c) for t, s, c in rows.all()]
