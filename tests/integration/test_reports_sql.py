"""Ratings and report queries on SQLite and PostgreSQL, against hand-counted expectations
over complaints filed and handled through the domain services."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.complaint import Status
from domain.services import answer_complaint, change_status
from domain.storage import Database
from domain.storage.reports import (
    Period,
    daily_counts,
    other_texts,
    place_rows,
    ratings,
    top_categories,
)
from tests.e2e.portal_fixtures import Seed, seed_complaints
from tests.fakes.dialogue import FRIDAY_EVENING

NOW = FRIDAY_EVENING
PERIOD = Period(NOW - timedelta(days=10), NOW)
SEEDS = [
    Seed("Нет воды", days_ago=9, municipality="derbent"),  # 0: answered fast, closed
    Seed("Нет воды снова", days_ago=8, municipality="derbent"),  # 1: rejected, no answer
    Seed("Яма", "roads", "potholes", days_ago=7, municipality="kaspiysk"),  # 2: reopened
    Seed("Свалка", "waste", "illegal_dump", days_ago=6, municipality="derbent"),  # 3: open
    Seed("Что-то странное", "other", "public_order", days_ago=2),  # 4: untouched, "other"
    Seed("Старая", days_ago=15),  # 5: previous period
    Seed("Старая яма", "roads", "potholes", days_ago=12),  # 6: previous period
]


async def act(db: Database, complaints, steps) -> None:
    for index, action, hours in steps:
        at = complaints[index].created_at + timedelta(hours=hours)
        async with db.uow() as uow:
            cid = complaints[index].id or 0
            if action == "answer":
                await answer_complaint(uow, cid, "Ответ по существу", actor="op", now=at)
            else:
                await change_status(uow, cid, Status(action), actor="op", now=at)
            await uow.commit()


@pytest.fixture
async def handled(db: Database):
    complaints = await seed_complaints(db, SEEDS, NOW)
    await act(db, complaints, [
        (0, "answer", 2), (0, "closed", 24),
        (1, "in_progress", 1), (1, "rejected", 30),
        (2, "answer", 100), (2, "closed", 120), (2, "reopened", 130),
    ])
    return complaints


async def test_ratings_count_what_they_say(db: Database, handled):
    async with db.session_factory() as session:
        result = await ratings(session, PERIOD, NOW, min_complaints=2)
    total = result.total
    assert total.complaints == 5
    # first answers: #0 (2 h, on time), #2 (100 h, late); #1, #3 and #4 are past their
    # first-answer deadline without one (days old), so they count as late too
    assert total.first_on_time == pytest.approx(1 / 5)
    assert total.median_first_hours == pytest.approx(51.0)
    # resolutions: #0 in 24 h and #1 in 30 h; #2 was reopened and is open again
    assert total.median_resolution_hours == pytest.approx(27.0)
    assert total.reopen_rate == pytest.approx(1 / 5)
    assert total.completeness == pytest.approx(1 / 2)  # #0 closed with an answer, #1 rejected
    assert not result.satisfaction_known or total.solved is None
    by_town = {x.key: x for x in result.by_municipality}
    assert by_town["derbent"].complaints == 3 and by_town["kaspiysk"].complaints == 1
    assert by_town["derbent"].score is not None and by_town["derbent"].rank == 1
    assert by_town["kaspiysk"].score is None and by_town["kaspiysk"].rank is None  # < 2
    assert by_town["makhachkala"].complaints == 1 and by_town["kaspiysk"].reopen_rate == 1
    assert sum(x.complaints for x in result.by_agency) == 5


async def test_trends_days_places_and_other_texts(db: Database, handled):
    async with db.session_factory() as session:
        trends = await top_categories(session, PERIOD)
        daily = await daily_counts(session, PERIOD, timedelta(hours=3))
        rows, since = await place_rows(session, PERIOD, timedelta(days=30))
        newest, cut = await place_rows(session, PERIOD, timedelta(days=30), limit=2)
        texts = await other_texts(session, PERIOD)
    by_cat = {(t.sector, t.category): (t.current, t.previous) for t in trends}
    assert by_cat[("housing", "no_water")] == (2, 1)
    assert by_cat[("roads", "potholes")] == (1, 1)
    assert sum(daily.values()) == 5 and len(daily) == 5
    in_order = sorted(handled, key=lambda c: c.created_at)
    assert [r.number for r in rows] == [c.number for c in in_order] and since is None
    assert [r.at for r in rows] == [c.created_at.timestamp() for c in in_order]
    assert [r.number for r in newest] == [c.number for c in in_order[-2:]]
    assert cut == in_order[-2].created_at  # the oldest row read of a cut-off list
    assert texts == ["Что-то странное"]


class FakeSatisfaction:
    """A :class:`SatisfactionSource` with fixed answers: the ratings take whatever it says."""

    async def tallies(self, session, period):
        return {("minenergo", "derbent"): (4, 3, 4, 14.0)}


async def test_satisfaction_source_is_pluggable(db: Database, handled):
    async with db.session_factory() as session:
        result = await ratings(session, PERIOD, NOW, satisfaction=FakeSatisfaction())
    assert result.satisfaction_known
    assert result.total.solved == pytest.approx(3 / 4)
    assert result.total.mean_rating == pytest.approx(3.5)


async def test_satisfaction_comes_from_the_surveys_table(db: Database, handled):
    from sqlalchemy import Boolean, Integer, String, column, insert, inspect, table

    from domain.storage.orm import UtcDateTime

    async with db.engine.connect() as conn:
        assert await conn.run_sync(lambda c: inspect(c).has_table("surveys"))
    surveys = table("surveys", column("complaint_id", Integer), column("citizen_id", Integer),
                    column("channel", String), column("state", String),
                    column("created_at", UtcDateTime()), column("reopen_until", UtcDateTime()),
                    column("solved", Boolean), column("rating", Integer),
                    column("answered_at", UtcDateTime()))

    def survey(index: int, solved: bool | None, rating: int | None) -> dict:
        c = handled[index]
        return {"complaint_id": c.id, "citizen_id": c.citizen_id, "channel": c.channel,
                "state": "answered" if solved is not None else "asked", "created_at": NOW,
                "reopen_until": NOW + timedelta(days=30), "solved": solved, "rating": rating,
                "answered_at": NOW if solved is not None else None}

    async with db.engine.begin() as conn:
        await conn.execute(insert(surveys), [survey(0, True, 5), survey(2, False, 2),
                                             survey(1, None, None), survey(5, True, 1)])
    async with db.session_factory() as session:
        result = await ratings(session, PERIOD, NOW, min_complaints=1)
    assert result.satisfaction_known
    # #5 was filed in the previous period; #1 was asked but never answered
    assert result.total.solved == pytest.approx(1 / 2)
    assert result.total.mean_rating == pytest.approx(3.5)
    by_town = {x.key: x for x in result.by_municipality}
    assert by_town["derbent"].solved == 1 and by_town["kaspiysk"].solved == 0


async def test_repeats_read_at_most_repeat_rows_and_say_from_when(
        db: Database, monkeypatch: pytest.MonkeyPatch):
    import portal.views.reports as page

    same = [Seed(f"Нет воды {n}", address="ул. Ленина, 5", days_ago=n) for n in (9, 7, 5, 3, 1)]
    filed = await seed_complaints(db, same, NOW)
    whole = await page.report_data(db.session_factory, PERIOD, 3, str.split)
    assert whole.repeats_from is None
    assert [(r.number, r.earlier, r.reason) for r in whole.repeats] == [
        (filed[i].number, filed[i - 1].number, "address") for i in (1, 2, 3, 4)]
    monkeypatch.setattr(page, "REPEAT_ROWS", 3)  # the newest three complaints are read
    cut = await page.report_data(db.session_factory, PERIOD, 3, str.split)
    assert cut.repeats_from == filed[2].created_at + timedelta(days=3)
    assert [(r.number, r.earlier) for r in cut.repeats] == [(filed[4].number, filed[3].number)]
    assert cut.trends == whole.trends and cut.daily == whole.daily
