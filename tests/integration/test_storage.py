"""SQL storage on SQLite and on a real PostgreSQL: migrations, repositories, unit of work."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError, StatementError

from domain.citizen import Citizen, Consent, Identity
from domain.complaint import Complaint, EventKind, Photo, Status
from domain.events import ComplaintRegistered, StatusChanged
from domain.ports import Conversation
from domain.storage import Database
from domain.storage.orm import CounterRow

MSK = timezone(timedelta(hours=3))
T0 = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=MSK)


def make_citizen(external_id: str = "1001") -> Citizen:
    return Citizen([Identity("telegram", external_id, external_id)], name="Патимат",
                   created_at=T0)


def make_complaint(citizen_id: int, number: str, *, at: datetime = T0) -> Complaint:
    complaint = Complaint(
        number=number, citizen_id=citizen_id, channel="telegram",
        text="Нет воды третий день, ул. Ленина 5", sector="housing", category="no_water",
        agency="minenergo", municipality="makhachkala", created_at=at,
        first_answer_due=at + timedelta(hours=2), resolution_due=at + timedelta(days=3),
        confidence=0.87, address="Махачкала, ул. Ленина, 5", latitude=42.98, longitude=47.5,
        photos=[Photo("telegram:AAA", "image/jpeg"), Photo("telegram:BBB")], updated_at=at,
    )
    complaint.record_registration()
    return complaint


def stored(complaint: Complaint) -> Complaint:
    """What a reload should give back: everything but the pending events."""
    return dataclasses.replace(complaint, events=[])


def assert_utc(*moments: datetime | None) -> None:
    for moment in moments:
        assert moment is not None and moment.utcoffset() == timedelta(0), moment
        assert moment.tzinfo is UTC, moment


async def add_citizen(db: Database, external_id: str = "1001") -> Citizen:
    async with db.uow() as uow:
        citizen = await uow.citizens.add(make_citizen(external_id))
        await uow.commit()
    return citizen


class TestSqlStorage:
    async def test_citizen_roundtrip(self, db: Database):
        citizen = make_citizen()
        citizen.identities.append(Identity("vk", "42", "2000000042"))
        citizen.give_consent(T0, "v1")
        citizen.subscribed_sectors = ["roads", "waste"]
        async with db.uow() as uow:
            await uow.citizens.add(citizen)
            await uow.commit()
        assert citizen.id is not None

        async with db.uow() as uow:
            by_vk = await uow.citizens.by_identity("vk", "42")
            assert by_vk == citizen
            assert await uow.citizens.get(citizen.id) == citizen
            assert await uow.citizens.by_identity("vk", "1001") is None
            assert await uow.citizens.get(citizen.id + 100) is None
            assert by_vk is not None and by_vk.consent is not None
            assert_utc(by_vk.consent.given_at, by_vk.created_at)
            by_vk.language = "en"
            by_vk.give_consent(T0 + timedelta(days=1), "v2")
            by_vk.subscribed_municipality = "derbent"
            by_vk.subscribed_sectors = ["health"]
            by_vk.reachable = False
            by_vk.identities = [Identity("vk", "42", "77"), Identity("web", "s-1", "s-1")]
            await uow.citizens.save(by_vk)
            await uow.commit()

        async with db.uow() as uow:
            again = await uow.citizens.by_identity("web", "s-1")
            assert again == by_vk
            assert again is not None
            assert again.consent == Consent(T0 + timedelta(days=1), "v2")
            assert again.identity_on("vk") == Identity("vk", "42", "77")
            assert await uow.citizens.by_identity("telegram", "1001") is None

    async def test_an_identity_belongs_to_one_citizen(self, db: Database):
        await add_citizen(db, "555")
        async with db.uow() as uow:
            with pytest.raises(IntegrityError):
                await uow.citizens.add(make_citizen("555"))

    async def test_complaint_roundtrip(self, db: Database):
        citizen = await add_citizen(db)
        assert citizen.id is not None
        async with db.uow() as uow:
            complaint = make_complaint(citizen.id, await uow.complaints.next_number(2026))
            await uow.complaints.add(complaint)
            older = make_complaint(citizen.id, await uow.complaints.next_number(2026),
                                   at=T0 - timedelta(days=1))
            older.address = older.latitude = older.longitude = older.municipality = None
            await uow.complaints.add(older)
            # the flush gave the pending event its complaint id; commit hands it over
            assert complaint.events == [ComplaintRegistered(complaint.id, T0,
                                                            complaint.number)]
            await uow.commit()

        assert complaint.id is not None and complaint.number == "2026-000001"
        assert [e.id for e in complaint.history] != [None]
        assert complaint.events == []
        async with db.uow() as uow:
            loaded = await uow.complaints.get(complaint.id)
            assert loaded == stored(complaint)
            assert loaded is not None
            assert loaded.photos == [Photo("telegram:AAA", "image/jpeg"), Photo("telegram:BBB")]
            assert loaded.history[0].kind is EventKind.REGISTERED
            assert loaded.status is Status.NEW
            assert_utc(loaded.created_at, loaded.first_answer_due, loaded.resolution_due,
                       loaded.updated_at, loaded.history[0].at)
            assert loaded.created_at.hour == 6  # 09:30 in Moscow is 06:30 UTC
            assert await uow.complaints.by_number("2026-000002") == stored(older)
            assert await uow.complaints.by_number("2026-999999") is None
            newest_first = await uow.complaints.for_citizen(citizen.id)
            assert [c.number for c in newest_first] == ["2026-000001", "2026-000002"]
            assert len(await uow.complaints.for_citizen(citizen.id, limit=1)) == 1
            assert await uow.complaints.for_citizen(citizen.id + 1) == []

    async def test_change_status_use_case_appends_history(self, db: Database):
        from domain.services import change_status

        citizen = await add_citizen(db)
        assert citizen.id is not None
        async with db.uow() as uow:
            complaint = await uow.complaints.add(make_complaint(citizen.id, "2026-000010"))
            await uow.commit()
        assert complaint.id is not None
        later = T0 + timedelta(hours=5)
        async with db.uow() as uow:
            changed = await change_status(uow, complaint.id, Status.IN_PROGRESS,
                                          actor="operator:7", now=later, reason="взято")
            assert changed.events == [StatusChanged(complaint.id, later, "new", "in_progress",
                                                    "operator:7", "взято")]
            await uow.commit()
        assert changed.history[-1].id is not None
        assert changed.events == []

        async with db.uow() as uow:
            loaded = await uow.complaints.get(complaint.id)
            assert loaded is not None
            assert loaded.status is Status.IN_PROGRESS
            assert loaded.updated_at == later
            assert [h.kind for h in loaded.history] == [EventKind.REGISTERED, EventKind.STATUS]
            assert loaded.history[-1].data == {"old": "new", "new": "in_progress"}
            assert loaded.history[-1].actor == "operator:7"
            assert loaded.history[-1].text == "взято"
            assert loaded == stored(changed)
            loaded.add_citizen_message("ещё фото", at=later, photos=[Photo("telegram:CCC")])
            loaded.answer("Бригада выехала", actor="operator:7", at=later)
            await uow.complaints.save(loaded)
            await uow.commit()

        async with db.uow() as uow:
            final = await uow.complaints.get(complaint.id)
            assert final == stored(loaded)
            assert final is not None and final.status is Status.ANSWERED
            assert [p.ref for p in final.photos][-1] == "telegram:CCC"
            assert len(final.history) == 6
            assert final.first_answered_at == later

    async def test_unit_of_work_rolls_back_unless_committed(self, db: Database):
        async with db.uow() as uow:
            await uow.citizens.add(make_citizen("1"))
            await uow.conversations.save(Conversation("vk", "1", "ask_text", {"a": 1}))
        with pytest.raises(RuntimeError):
            async with db.uow() as uow:
                await uow.citizens.add(make_citizen("2"))
                await uow.commit()
                await uow.citizens.add(make_citizen("3"))
                raise RuntimeError("boom")
        async with db.uow() as uow:
            await uow.citizens.add(make_citizen("4"))
            await uow.rollback()
            await uow.commit()
        async with db.uow() as uow:
            assert await uow.citizens.by_identity("telegram", "1") is None
            assert await uow.citizens.by_identity("telegram", "2") is not None
            assert await uow.citizens.by_identity("telegram", "3") is None
            assert await uow.citizens.by_identity("telegram", "4") is None
            assert (await uow.conversations.load("vk", "1")).state == "idle"

    async def test_foreign_keys_and_aware_datetimes_are_enforced(self, db: Database):
        async with db.uow() as uow:
            with pytest.raises(IntegrityError):
                await uow.complaints.add(make_complaint(424242, "2026-000001"))
        citizen = await add_citizen(db)
        assert citizen.id is not None
        async with db.uow() as uow:
            with pytest.raises(StatementError, match="naive datetime"):
                await uow.complaints.add(make_complaint(citizen.id, "2026-000001",
                                                        at=datetime(2026, 3, 2, 9, 30)))

    async def test_next_number_is_sequential_per_year(self, db: Database):
        async with db.uow() as uow:
            numbers = [await uow.complaints.next_number(2026) for _ in range(3)]
            assert await uow.complaints.next_number(2027) == "2027-000001"
            await uow.commit()
        assert numbers == ["2026-000001", "2026-000002", "2026-000003"]
        async with db.uow() as uow:
            await uow.complaints.next_number(2026)  # rolled back
        async with db.uow() as uow:
            # SQLite hands the number out again; a PostgreSQL sequence leaves a gap
            expected = "2026-000004" if db.dialect == "sqlite" else "2026-000005"
            assert await uow.complaints.next_number(2026) == expected

    async def test_next_number_continues_after_the_counter_row(self, db: Database):
        """Numbers given before PostgreSQL took them from a sequence are never reused."""
        async with db.uow() as uow:
            await uow.session.execute(CounterRow.__table__.insert().values(
                name="complaint:2026", value=41))
            await uow.commit()
        async with db.uow() as uow:
            numbers = [await uow.complaints.next_number(2026) for _ in range(2)]
            await uow.commit()
        assert numbers == ["2026-000042", "2026-000043"]

    async def test_next_number_is_unique_under_concurrency(self, db: Database):
        citizen = await add_citizen(db)
        assert citizen.id is not None
        citizen_id = citizen.id

        async def register() -> str:
            async with db.uow() as uow:
                number = await uow.complaints.next_number(2026)
                await asyncio.sleep(0.005)  # hold the number while others try to get one
                await uow.complaints.add(make_complaint(citizen_id, number))
                await uow.commit()
                return number

        numbers = await asyncio.gather(*(register() for _ in range(20)))
        assert sorted(numbers) == [f"2026-{n:06d}" for n in range(1, 21)]
        async with db.uow() as uow:
            assert len(await uow.complaints.for_citizen(citizen_id, limit=50)) == 20

    async def test_next_number_is_unique_when_some_units_roll_back(self, db: Database):
        citizen = await add_citizen(db)
        assert citizen.id is not None
        citizen_id = citizen.id

        async def register(i: int) -> str | None:
            async with db.uow() as uow:
                number = await uow.complaints.next_number(2026)
                await asyncio.sleep(0.005)
                if i % 3 == 0:
                    return None  # given up: rolled back, the number may be a gap
                await uow.complaints.add(make_complaint(citizen_id, number))
                await uow.commit()
                return number

        numbers = [n for n in await asyncio.gather(*(register(i) for i in range(21))) if n]
        assert len(set(numbers)) == len(numbers) == 14
        async with db.uow() as uow:
            stored_numbers = {c.number for c in await uow.complaints.for_citizen(citizen_id)}
        assert stored_numbers == set(numbers)

    async def test_citizen_read_with_the_conversation_is_current(self, db: Database):
        """load() reads the citizen of the same identity along (one query per step);
        by_identity hands it out once, and never after the citizen was written."""
        citizen = await add_citizen(db, "2002")
        async with db.uow() as uow:
            conversation = await uow.conversations.load("telegram", "2002")
            await uow.conversations.save(conversation)
            await uow.commit()
        async with db.uow() as uow:
            await uow.conversations.load("telegram", "2002")
            found = await uow.citizens.by_identity("telegram", "2002")
            assert found == citizen
            assert found is not None
            found.language = "en"
            await uow.citizens.save(found)
            await uow.conversations.load("telegram", "2002")
            found.name = "changed in memory only"
            await uow.citizens.save(found)  # drops what load() read before
            again = await uow.citizens.by_identity("telegram", "2002")
            assert again is not None and again.name == "changed in memory only"
            assert await uow.citizens.by_identity("telegram", "404") is None
            await uow.conversations.load("telegram", "404")  # no citizen: read as None
            assert await uow.citizens.by_identity("telegram", "404") is None

    async def test_conversation_store_roundtrip(self, db: Database):
        stamps = iter([T0, T0 + timedelta(minutes=1)])
        clocked = Database(db.engine, clock=lambda: next(stamps))
        draft = {"text": "Яма на дороге — «опасно»", "photos": ["telegram:X"],
                 "nested": {"sector": "roads", "score": 0.5, "ok": True, "none": None}}
        async with clocked.uow() as uow:
            fresh = await uow.conversations.load("telegram", "777")
            assert (fresh.state, fresh.data, fresh.updated_at) == ("idle", {}, None)
            await uow.conversations.save(Conversation("telegram", "777", "ask_photo", draft))
            await uow.commit()
        async with clocked.uow() as uow:
            conv = await uow.conversations.load("telegram", "777")
            assert (conv.state, conv.data, conv.updated_at) == ("ask_photo", draft, T0)
            assert_utc(conv.updated_at)
            assert (await uow.conversations.load("vk", "777")).state == "idle"
            assert conv.data is not None
            conv.data["text"] = "Исправлено"  # in-place edit of the loaded draft
            conv.state = "confirm"
            await uow.conversations.save(conv)
            await uow.commit()
        async with clocked.uow() as uow:
            again = await uow.conversations.load("telegram", "777")
            assert again.state == "confirm"
            assert again.data == {**draft, "text": "Исправлено"}
            assert again.updated_at == T0 + timedelta(minutes=1)
