"""The ``broadcasts`` table (see :class:`domain.broadcast.Broadcast`); migration 0006."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from domain.storage.orm import Base, JsonType


class BroadcastRow(Base):
    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    photo: Mapped[str | None] = mapped_column(String(512))
    links: Mapped[list[Any]] = mapped_column(JsonType, default=list)
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), index=True)
    send_at: Mapped[datetime | None] = mapped_column(index=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    audience_size: Mapped[int] = mapped_column(default=0)
    recipients: Mapped[int] = mapped_column(default=0)
    cursor: Mapped[int] = mapped_column(default=0)
    materialized: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
