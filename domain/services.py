"""Use cases. Each takes an open unit of work; the caller commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from domain.calendar import WorkingCalendar
from domain.catalogue import Catalogue
from domain.citizen import Citizen, Identity
from domain.complaint import ClassifiedBy, Complaint, Photo, Status
from domain.ports import UnitOfWork


class NotFound(LookupError):
    pass


class Forbidden(PermissionError):
    pass


@dataclass(slots=True)
class ComplaintDraft:
    text: str
    sector: str
    category: str
    classified_by: ClassifiedBy = ClassifiedBy.CITIZEN
    confidence: float | None = None
    municipality: str | None = None
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    photos: list[Photo] = field(default_factory=list)


async def get_or_create_citizen(uow: UnitOfWork, channel: str, external_id: str, chat_id: str,
                                *, language: str, now: datetime, name: str = "") -> Citizen:
    citizen = await uow.citizens.by_identity(channel, external_id)
    if citizen is None:
        citizen = Citizen([Identity(channel, external_id, chat_id)], language=language,
                          name=name, created_at=now)
        await uow.citizens.add(citizen)
    return citizen


async def register_complaint(uow: UnitOfWork, catalogue: Catalogue, calendar: WorkingCalendar,
                             citizen: Citizen, channel: str, draft: ComplaintDraft,
                             now: datetime) -> Complaint:
    """File a complaint: validate its classification, route it and set its deadlines."""
    if citizen.id is None:
        raise ValueError("citizen must be stored first")
    if not citizen.has_consent():
        raise Forbidden("consent to personal-data processing is required")
    category = catalogue.category(draft.sector, draft.category)
    if draft.municipality is not None:
        catalogue.municipality(draft.municipality)  # KeyError on an unknown slug
    agency = catalogue.responsible_agency(draft.sector, draft.category, draft.municipality)
    complaint = Complaint(
        number=await uow.complaints.next_number(now.year),
        citizen_id=citizen.id,
        channel=channel,
        text=draft.text,
        sector=draft.sector,
        category=draft.category,
        agency=agency.slug,
        municipality=draft.municipality,
        created_at=now,
        updated_at=now,
        first_answer_due=calendar.add_working_hours(now, category.first_answer_hours),
        resolution_due=calendar.add_working_days(now, category.resolution_days),
        classified_by=draft.classified_by,
        confidence=draft.confidence,
        address=draft.address,
        latitude=draft.latitude,
        longitude=draft.longitude,
        photos=list(draft.photos),
    )
    complaint.record_registration()
    await uow.complaints.add(complaint)
    return complaint


async def _get(uow: UnitOfWork, complaint_id: int) -> Complaint:
    complaint = await uow.complaints.get(complaint_id)
    if complaint is None:
        raise NotFound(f"complaint {complaint_id}")
    return complaint


async def change_status(uow: UnitOfWork, complaint_id: int, new: Status, *, actor: str,
                        now: datetime, reason: str = "",
                        duplicate_of: int | None = None) -> Complaint:
    complaint = await _get(uow, complaint_id)
    if duplicate_of is not None and await uow.complaints.get(duplicate_of) is None:
        raise NotFound(f"complaint {duplicate_of}")
    complaint.change_status(new, actor=actor, at=now, reason=reason, duplicate_of=duplicate_of)
    await uow.complaints.save(complaint)
    return complaint


async def answer_complaint(uow: UnitOfWork, complaint_id: int, text: str, *, actor: str,
                           now: datetime) -> Complaint:
    complaint = await _get(uow, complaint_id)
    complaint.answer(text, actor=actor, at=now)
    await uow.complaints.save(complaint)
    return complaint


async def relay_operator_message(uow: UnitOfWork, complaint_id: int, text: str, *,
                                 actor: str, now: datetime) -> Complaint:
    """An operator writes to the citizen: the message is recorded in the history and
    :class:`~domain.events.OperatorMessageAdded` asks the handlers to deliver it."""
    complaint = await _get(uow, complaint_id)
    complaint.message_citizen(text, actor=actor, at=now)
    await uow.complaints.save(complaint)
    return complaint


async def reclassify(uow: UnitOfWork, catalogue: Catalogue, complaint_id: int, sector: str,
                     category: str, *, actor: str, now: datetime) -> Complaint:
    catalogue.category(sector, category)
    complaint = await _get(uow, complaint_id)
    agency = catalogue.responsible_agency(sector, category, complaint.municipality)
    complaint.reclassify(sector, category, agency.slug, actor=actor, at=now)
    await uow.complaints.save(complaint)
    return complaint


async def add_details(uow: UnitOfWork, complaint_id: int, citizen_id: int, text: str, *,
                      now: datetime, photos: list[Photo] | None = None) -> Complaint:
    """A citizen adds text or photos to one of their own open complaints."""
    complaint = await _get(uow, complaint_id)
    if complaint.citizen_id != citizen_id:
        raise Forbidden("not your complaint")
    if not complaint.is_open:
        raise Forbidden("complaint is not open")
    complaint.add_citizen_message(text, at=now, photos=photos)
    await uow.complaints.save(complaint)
    return complaint
