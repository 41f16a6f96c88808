"""The reporting indexes of migrations 0007 and 0009, declared on the models so that Alembic's
comparison of models and migrations (``alembic check``) knows them."""

from __future__ import annotations

from sqlalchemy import Index, text

from domain.storage.orm import ComplaintRow, HistoryRow

_REOPENED_SQLITE = text("kind = 'status' AND JSON_EXTRACT(data, '$.\"new\"') = 'reopened'")
_REOPENED_PG = text("kind = 'status' AND (data ->> 'new') = 'reopened'")
_c = ComplaintRow.__table__.c

INDEXES = (
    Index("ix_complaints_report", _c.created_at, _c.agency, _c.municipality, _c.status,
          _c.first_answered_at, _c.first_answer_due, _c.resolved_at, _c.resolution_due),
    Index("ix_complaints_status_due", _c.status, _c.resolution_due),
    Index("ix_complaints_municipality_created", _c.municipality, _c.created_at),
    Index("ix_complaints_sector_created", _c.sector, _c.created_at),
    Index("ix_complaints_agency_status", _c.agency, _c.status),
    # migration 0009, covering: the reports page's top categories and repeat detection, and
    # the deadline board
    Index("ix_complaints_created_sector", _c.created_at, _c.sector, _c.category),
    Index("ix_complaints_board", _c.status, _c.resolution_due, _c.agency, _c.municipality),
    Index("ix_complaints_places", _c.created_at, _c.status, _c.citizen_id, _c.sector,
          _c.category, _c.municipality, _c.latitude, _c.longitude, _c.number, _c.address,
          _c.id),
    Index("ix_complaint_history_reopened", HistoryRow.__table__.c.complaint_id,
          sqlite_where=_REOPENED_SQLITE, postgresql_where=_REOPENED_PG),
)
