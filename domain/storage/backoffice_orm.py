"""The back office's table: which forum topic of the operators' group belongs to which
complaint. Shares :class:`domain.storage.orm.Base`'s metadata (migration
``0004_backoffice``); importing this module registers the table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from domain.storage.orm import Base


class ComplaintTopicRow(Base):
    """One complaint's topic. ``thread_id`` changes when a deleted topic is recreated."""

    __tablename__ = "complaint_topics"
    __table_args__ = (UniqueConstraint("chat_id", "thread_id"),)

    complaint_id: Mapped[int] = mapped_column(
        ForeignKey("complaints.id", ondelete="CASCADE"), primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    thread_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
