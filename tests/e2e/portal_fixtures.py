"""The portal on a real server: a migrated SQLite file, seeded complaints and users.

``await start_portal(tmp_path)`` returns a :class:`PortalServer`; complaints are filed
through :func:`domain.services.register_complaint` like the dialogue files them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from domain.calendar import WorkingCalendar
from domain.complaint import Complaint, Photo
from domain.events import DomainEvent
from domain.ports import UnitOfWork
from domain.services import ComplaintDraft, get_or_create_citizen, register_complaint
from domain.storage import Database, sqlite_url, upgrade_async
from portal import setup_portal
from portal.users import add_user
from tests.fakes.dialogue import FRIDAY_EVENING, FixedClock, catalogue

PASSWORD = "correct horse battery"
USERS = {"olga": "operator", "sergey": "supervisor", "kamila": "communications",
         "admin": "admin"}


@dataclass
class Seed:
    """One complaint to file: text and classification, how many days before "now"."""

    text: str
    sector: str = "housing"
    category: str = "no_water"
    municipality: str | None = "makhachkala"
    days_ago: float = 1
    channel: str = "telegram"
    address: str | None = None
    photos: Sequence[str] = ()
    location: tuple[float, float] | None = None


@dataclass
class PortalServer:
    url: str
    database: Database
    clock: FixedClock
    complaints: list[Complaint]
    events: list[DomainEvent] = field(default_factory=list)


async def seed_complaints(database: Database, seeds: Sequence[Seed],
                          now: datetime) -> list[Complaint]:
    cat, calendar = catalogue(), WorkingCalendar()
    filed = []
    for i, seed in enumerate(seeds):
        at = now - timedelta(days=seed.days_ago)
        async with database.uow() as uow:
            citizen = await get_or_create_citizen(uow, seed.channel, f"u{i}", f"c{i}",
                                                  language="ru", now=at, name=f"Житель {i}")
            citizen.give_consent(at, cat.consent_version)
            await uow.citizens.save(citizen)
            lat, lon = seed.location or (None, None)
            draft = ComplaintDraft(seed.text, seed.sector, seed.category,
                                   municipality=seed.municipality, address=seed.address,
                                   latitude=lat, longitude=lon, confidence=0.87,
                                   photos=[Photo(ref) for ref in seed.photos])
            filed.append(await register_complaint(uow, cat, calendar, citizen, seed.channel,
                                                  draft, at))
            await uow.commit()
    return filed


async def start_portal(tmp_path: Path, seeds: Sequence[Seed],
                       now: datetime = FRIDAY_EVENING) -> tuple[PortalServer, TestServer]:
    """Migrate a fresh SQLite file, seed it, add one user per role and serve the portal."""
    url = sqlite_url(tmp_path / "var" / "tsur.db")
    await upgrade_async(url)
    events: list[DomainEvent] = []

    async def record(_uow: UnitOfWork, batch: Sequence[DomainEvent]) -> None:
        events.extend(batch)

    clock = FixedClock(now)
    database = Database.from_url(url, clock=clock, event_handler=record)
    complaints = await seed_complaints(database, seeds, now)
    events.clear()
    for login, role in USERS.items():
        await add_user(database, login, PASSWORD, role, now=now)
    app = web.Application()
    setup_portal(app, database=database, catalogue=catalogue(), clock=clock)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    return PortalServer(base, database, clock, complaints, events), server
