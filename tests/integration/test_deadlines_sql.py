"""The deadline watch on SQLite and PostgreSQL: levels by the working calendar across a
weekend, the overdue state stored on the complaint, each escalation written once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from domain.calendar import WorkingCalendar
from domain.citizen import Citizen, Identity
from domain.complaint import Complaint, Status
from domain.services import ComplaintDraft, answer_complaint, change_status, register_complaint
from domain.storage import Database
from domain.storage.orm import ComplaintRow
from notifications.deadlines import near_moment, run_deadline_check
from tests.fakes.dialogue import catalogue

MSK = ZoneInfo("Europe/Moscow")
FRIDAY_5PM = datetime(2026, 11, 27, 17, 0, tzinfo=MSK)
CAL = WorkingCalendar()


async def file(db: Database, at: datetime = FRIDAY_5PM, chat_id: str = "555") -> Complaint:
    async with db.uow() as uow:
        citizen = Citizen([Identity("telegram", "u" + chat_id, chat_id)], created_at=at)
        citizen.give_consent(at, "v1")
        await uow.citizens.add(citizen)
        complaint = await register_complaint(
            uow, catalogue(), CAL, citizen, "telegram",
            ComplaintDraft("Яма на улице Ленина", "roads", "potholes"), at)
        await uow.commit()
    return complaint


async def escalations(db: Database) -> list[tuple[int | None, str, str]]:
    async with db.uow() as uow:
        found = [m for m in await uow.outbox.find(channel="backoffice")]
    assert all(m.kind == "escalation" for m in found)
    return [(m.complaint_id, m.payload["deadline"], m.payload["level"]) for m in found]


async def marks(db: Database, complaint_id: int) -> ComplaintRow:
    async with db.session_factory() as session:
        row = await session.get(ComplaintRow, complaint_id)
        assert row is not None
        return row


async def check(db: Database, now: datetime) -> int:
    return await run_deadline_check(db.uow, CAL, now)


class TestDeadlinesSql:
    async def test_levels_across_a_weekend_stored_and_escalated_once(self, db: Database):
        complaint = await file(db)
        cid = complaint.id or 0
        fa_near = near_moment(CAL, complaint.created_at, complaint.first_answer_due)
        assert fa_near.astimezone(MSK).weekday() == 0  # not the weekend: Monday
        saturday = FRIDAY_5PM + timedelta(days=1)
        assert await check(db, saturday) == 0  # wall-clock 75 % would already be near
        row = await marks(db, cid)
        assert row.first_answer_near_at == fa_near  # computed and stored by the check
        assert row.resolution_near_at == near_moment(CAL, complaint.created_at,
                                                     complaint.resolution_due)

        assert await check(db, fa_near - timedelta(seconds=1)) == 0
        assert await check(db, fa_near) == 1
        assert await escalations(db) == [(cid, "first_answer", "near")]
        assert await check(db, fa_near + timedelta(minutes=5)) == 0  # once per level

        late = complaint.first_answer_due + timedelta(minutes=1)
        assert await check(db, late) == 1
        assert (await escalations(db))[-1] == (cid, "first_answer", "overdue")
        row = await marks(db, cid)
        assert row.first_answer_overdue_at == late and row.resolution_overdue_at is None
        assert await check(db, late + timedelta(hours=1)) == 0

        async with db.uow() as uow:  # answering stops the first-answer watch, not the other
            await answer_complaint(uow, cid, "Работаем", actor="op", now=late)
            await uow.commit()
        res_late = complaint.resolution_due + timedelta(seconds=1)
        assert await check(db, res_late) == 1  # straight to overdue: no "near" after it
        assert (await escalations(db))[-1] == (cid, "resolution", "overdue")
        assert await check(db, res_late + timedelta(days=1)) == 0
        row = await marks(db, cid)
        assert row.resolution_overdue_at == res_late and row.resolution_near_notified_at is None
        assert row.first_answer_overdue_at == late  # kept for the reports

    async def test_the_escalation_payload_is_self_describing(self, db: Database):
        complaint = await file(db)
        await check(db, complaint.first_answer_due + timedelta(minutes=1))
        async with db.uow() as uow:
            [row] = await uow.outbox.find(channel="backoffice")
        assert row.dedup_key == f"escalation:{complaint.id}:first_answer:overdue"
        assert row.citizen_id is None and row.complaint_id == complaint.id
        payload = row.payload
        assert (payload["type"], payload["number"], payload["complaint_id"], payload["level"],
                payload["deadline"], payload["status"], payload["sector"]) == (
            "escalation", complaint.number, complaint.id, "overdue", "first_answer", "new",
            "roads")
        assert datetime.fromisoformat(payload["due_at"]) == complaint.first_answer_due
        assert payload["text"].startswith(f"🔴 Обращение №{complaint.number}")

    async def test_closed_complaints_are_not_watched(self, db: Database):
        complaint = await file(db)
        async with db.uow() as uow:
            await answer_complaint(uow, complaint.id or 0, "Готово", actor="op",
                                   now=FRIDAY_5PM + timedelta(minutes=30))
            await change_status(uow, complaint.id or 0, Status.CLOSED, actor="op",
                                now=FRIDAY_5PM + timedelta(hours=1))
            await uow.commit()
        assert await check(db, FRIDAY_5PM + timedelta(days=60)) == 0
        assert await escalations(db) == []

    async def test_two_concurrent_checks_escalate_each_level_once(self, db: Database):
        complaints = [await file(db, chat_id=str(700 + i)) for i in range(7)]
        now = max(c.resolution_due for c in complaints) + timedelta(minutes=1)
        results = await asyncio.gather(run_deadline_check(db.uow, CAL, now, batch=3),
                                       run_deadline_check(db.uow, CAL, now, batch=3))
        assert sum(results) == 2 * len(complaints)  # first answer and resolution overdue
        found = await escalations(db)
        assert len(found) == len(set(found)) == 2 * len(complaints)
        async with db.session_factory() as session:
            overdue = (await session.execute(
                select(ComplaintRow.id).where(ComplaintRow.resolution_overdue_at.is_not(None))
            )).scalars().all()
        assert sorted(overdue) == sorted(c.id for c in complaints)
