"""Copying between rows and domain dataclasses, in both directions.

Readers build fresh domain objects (nothing of the row leaks out). Complaints are written
back through ORM rows, updated in place so SQLAlchemy emits only the changed columns;
citizens, and new complaints, are written with Core statements from plain values.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

from domain.citizen import Citizen, Consent, Identity
from domain.complaint import ClassifiedBy, Complaint, EventKind, HistoryEntry, Photo, Status
from domain.storage.orm import ComplaintRow, HistoryRow, PhotoRow

# Columns copied one to one between Complaint and ComplaintRow (enums are str subclasses).
COMPLAINT_FIELDS = (
    "number", "citizen_id", "channel", "text", "sector", "category", "agency", "municipality",
    "created_at", "first_answer_due", "resolution_due", "classified_by", "confidence",
    "address", "latitude", "longitude", "status", "duplicate_of", "first_answered_at",
    "resolved_at", "updated_at",
)


def citizen_from_core(rows: Sequence[Row[Any]]) -> Citizen:
    """A citizen from Core rows of ``citizens`` joined (outer) with each of its identities
    (``identity_channel``, ``identity_external_id``, ``identity_chat_id``)."""
    return _citizen(rows[0], [Identity(r.identity_channel, r.identity_external_id,
                                       r.identity_chat_id)
                              for r in rows if r.identity_channel is not None])


def citizen_values(citizen: Citizen) -> dict[str, Any]:
    """The ``citizens`` columns of a citizen (all but ``id``), for Core writes."""
    return {
        "language": citizen.language,
        "name": citizen.name,
        "phone": citizen.phone,
        "consent_given_at": citizen.consent.given_at if citizen.consent else None,
        "consent_version": citizen.consent.text_version if citizen.consent else None,
        "subscribed_municipality": citizen.subscribed_municipality,
        "subscribed_sectors": list(citizen.subscribed_sectors),
        "reachable": citizen.reachable,
        "broadcast_opt_out": citizen.broadcast_opt_out,
        "created_at": citizen.created_at,
    }


def complaint_values(complaint: Complaint) -> dict[str, Any]:
    """The ``complaints`` columns a complaint has (all but ``id`` and the deadline watch's
    own), for Core inserts."""
    values = {name: getattr(complaint, name) for name in COMPLAINT_FIELDS}
    values["status"] = str(complaint.status)
    values["classified_by"] = str(complaint.classified_by)
    return values


def _citizen(row: Any, identities: list[Identity]) -> Citizen:
    """The citizen of a ``citizens`` row (ORM or Core) with its identities."""
    consent = None
    if row.consent_given_at is not None and row.consent_version is not None:
        consent = Consent(row.consent_given_at, row.consent_version)
    return Citizen(
        identities=identities,
        language=row.language,
        name=row.name,
        phone=row.phone,
        consent=consent,
        subscribed_municipality=row.subscribed_municipality,
        subscribed_sectors=list(row.subscribed_sectors or []),
        reachable=row.reachable,
        broadcast_opt_out=row.broadcast_opt_out,
        created_at=row.created_at,
        id=row.id,
    )


def complaint_from_row(row: ComplaintRow) -> Complaint:
    values = {name: getattr(row, name) for name in COMPLAINT_FIELDS}
    values["status"] = Status(row.status)
    values["classified_by"] = ClassifiedBy(row.classified_by)
    return Complaint(
        **values,
        photos=[Photo(p.ref, p.mime) for p in row.photos],
        history=[history_from_row(h) for h in row.history],
        id=row.id,
    )


def history_from_row(row: HistoryRow) -> HistoryEntry:
    return HistoryEntry(EventKind(row.kind), row.at, row.actor, row.text,
                        copy.deepcopy(dict(row.data or {})), id=row.id)


def write_complaint(row: ComplaintRow, complaint: Complaint) -> list[tuple[HistoryEntry,
                                                                            HistoryRow]]:
    """Copy fields onto ``row``, append photos beyond those stored and history entries
    without an id. Returns the new (entry, row) pairs so ids can be copied after a flush."""
    for name in COMPLAINT_FIELDS:
        value = getattr(complaint, name)
        if name in ("status", "classified_by"):
            value = str(value)
        setattr(row, name, value)
    stored_photos = len(row.photos)
    for position, photo in enumerate(complaint.photos[stored_photos:], start=stored_photos):
        row.photos.append(PhotoRow(position=position, ref=photo.ref, mime=photo.mime))
    added = []
    for entry in complaint.history:
        if entry.id is None:
            history_row = HistoryRow(kind=str(entry.kind), at=entry.at, actor=entry.actor,
                                     text=entry.text, data=dict(entry.data))
            row.history.append(history_row)
            added.append((entry, history_row))
    return added
