"""The aggregated ratings (report_daily/report_monthly) equal the direct computation over the
complaints, on randomised data on SQLite and PostgreSQL, before and after complaints change
and a refresh: counts and shares exactly, medians within the documented precision."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta

import pytest

from domain.complaint import Complaint, IllegalTransition, Status
from domain.services import answer_complaint, change_status, reclassify
from domain.storage import Database
from domain.storage.report_daily import ratings as aggregated
from domain.storage.report_daily import tolerance
from domain.storage.report_daily_orm import ReportDayRow
from domain.storage.report_refresh import refresh
from domain.storage.reports import Period, RatingLine, Ratings
from domain.storage.reports import ratings as direct
from domain.survey import Survey, answer_solved, rate
from tests.e2e.portal_fixtures import Seed, seed_complaints
from tests.fakes.dialogue import FRIDAY_EVENING, MOSCOW, catalogue

NOW = FRIDAY_EVENING
OFFSET = timedelta(hours=3)  # Moscow
ACTIONS = ("answer", Status.IN_PROGRESS, Status.CLOSED, Status.REJECTED, Status.REOPENED)


def local_midnight(days_ago: int) -> datetime:
    return datetime.combine(NOW.date() - timedelta(days=days_ago), time(), tzinfo=MOSCOW)


PERIODS = [
    Period(local_midnight(80), local_midnight(-1)),  # whole months and days, and today
    Period(NOW - timedelta(days=47, hours=5), NOW - timedelta(days=2, hours=7)),  # ragged
    Period(local_midnight(31), local_midnight(3)),
    Period(NOW - timedelta(hours=20), NOW),  # less than a day: direct
]


def seeds(rnd: random.Random, n: int) -> list[Seed]:
    cat = catalogue()
    towns = [None, *(m.slug for m in cat.municipalities[:6])]
    out = []
    for i in range(n):
        sector = rnd.choice(cat.sectors)
        category = rnd.choice(sector.categories)
        out.append(Seed(f"Жалоба {i}", sector.slug, category.slug, rnd.choice(towns),
                        days_ago=rnd.uniform(0, 75), channel=rnd.choice(("telegram", "vk"))))
    return out


async def act(db: Database, rnd: random.Random, complaints: list[Complaint], steps: int,
              now: datetime) -> int:
    """Random lifecycle steps, each at a random time after filing and before ``now``;
    the number that were legal."""
    done = 0
    for _ in range(steps):
        c = rnd.choice(complaints)
        action = rnd.choice(ACTIONS)
        at = min(now, c.created_at + timedelta(hours=rnd.lognormvariate(2.5, 1.2)))
        async with db.uow() as uow:
            try:
                if action == "answer":
                    await answer_complaint(uow, c.id or 0, "Ответ", actor="op", now=at)
                else:
                    await change_status(uow, c.id or 0, Status(action), actor="op", now=at)
            except IllegalTransition:
                continue
            await uow.commit()
            done += 1
    return done


async def surveys(db: Database, rnd: random.Random, complaints: list[Complaint],
                  now: datetime) -> list[Survey]:
    """A survey for a third of the complaints; some answered, some of those rated. Returns
    the surveys left unanswered."""
    out = []
    for c in rnd.sample(complaints, len(complaints) // 3):
        async with db.uow() as uow:
            survey = await uow.surveys.add(Survey.start(
                c.id or 0, c.citizen_id, c.channel, now - timedelta(days=1),
                reminder_after=timedelta(days=1), followup_after=timedelta(days=7),
                reopen_within=timedelta(days=30)))
            await uow.commit()
        if rnd.random() < 0.6:
            await answer(db, survey, rnd, now, rated=rnd.random() < 0.7)
        else:
            out.append(survey)
    return out


async def answer(db: Database, survey: Survey, rnd: random.Random, now: datetime, *,
                 rated: bool) -> None:
    async with db.uow() as uow:
        await answer_solved(uow, survey.id or 0, survey.citizen_id, rnd.random() < 0.7,
                            now=now)
        await uow.commit()
    if rated:
        async with db.uow() as uow:
            await rate(uow, survey.id or 0, survey.citizen_id, rnd.randint(3, 5), now=now)
            await uow.commit()


def same_line(got: RatingLine, want: RatingLine) -> None:
    for name in ("key", "complaints", "rank"):
        assert getattr(got, name) == getattr(want, name), (name, got, want)
    for name in ("first_on_time", "resolution_on_time", "solved", "mean_rating",
                 "reopen_rate", "completeness", "score"):
        expected = getattr(want, name)
        assert getattr(got, name) == (None if expected is None else pytest.approx(expected)), (
            name, got, want)
    for name in ("median_first_hours", "median_resolution_hours"):
        expected, found = getattr(want, name), getattr(got, name)
        if expected is None:
            assert found is None, (name, got, want)
        else:
            assert abs(found - expected) <= tolerance(expected) + 1e-9, (name, got, want)


async def assert_same(db: Database, now: datetime) -> None:
    async with db.session_factory() as session:
        for period in PERIODS:
            got: Ratings = await aggregated(session, period, now, min_complaints=3)
            want: Ratings = await direct(session, period, now, min_complaints=3)
            assert [x.key for x in got.by_agency] == [x.key for x in want.by_agency]
            assert [x.key for x in got.by_municipality] == [
                x.key for x in want.by_municipality]
            for g, w in zip(got.by_agency + got.by_municipality + [got.total],
                            want.by_agency + want.by_municipality + [want.total], strict=True):
                same_line(g, w)


@pytest.mark.parametrize("seed", [1, 2])
async def test_aggregated_ratings_equal_the_direct_ones(db: Database, seed: int):
    rnd = random.Random(seed)
    complaints = await seed_complaints(db, seeds(rnd, 70), NOW)
    assert await act(db, rnd, complaints, 160, NOW) > 40
    waiting = await surveys(db, rnd, complaints, NOW)
    first = await refresh(db.session_factory, OFFSET)
    assert first.full and first.days > 40
    assert (await refresh(db.session_factory, OFFSET)).days == 0  # nothing changed
    await assert_same(db, NOW)

    later = NOW + timedelta(hours=30)  # deadlines pass; complaints change
    assert await act(db, rnd, complaints, 40, later) > 5
    async with db.uow() as uow:  # reclassified: another agency
        await reclassify(uow, catalogue(), complaints[0].id or 0, "roads", "potholes",
                         actor="op", now=later)
        await uow.commit()
    await answer(db, waiting[0], rnd, later, rated=False)  # answered, rating to come
    await answer(db, waiting[1], rnd, later, rated=True)
    step = await refresh(db.session_factory, OFFSET)
    assert not step.full and 0 < step.days < first.days
    await assert_same(db, later)

    async with db.uow() as uow:  # the rating arrives after the refresh
        await rate(uow, waiting[0].id or 0, waiting[0].citizen_id, 4, now=later)
        await uow.commit()
    assert (await refresh(db.session_factory, OFFSET)).days == 1
    await assert_same(db, later)


async def test_a_new_offset_rebuilds_and_unbuilt_aggregates_fall_back(db: Database):
    rnd = random.Random(3)
    complaints = await seed_complaints(db, seeds(rnd, 20), NOW)
    await act(db, rnd, complaints, 30, NOW)
    async with db.session_factory() as session:  # never refreshed: the direct computation
        assert await aggregated(session, PERIODS[0], NOW) == await direct(
            session, PERIODS[0], NOW)
    await refresh(db.session_factory, OFFSET)
    again = await refresh(db.session_factory, timedelta(hours=5))
    assert again.full
    await assert_same(db, NOW)


async def test_pending_counts_the_local_days_a_refresh_would_recompute(db: Database):
    from domain.storage.report_refresh import pending

    assert (await pending(db.session_factory, OFFSET)).days is None  # never built
    await seed_complaints(db, [Seed("Жалоба", days_ago=d) for d in (10, 20)], NOW)
    await refresh(db.session_factory, OFFSET)
    built = await pending(db.session_factory, OFFSET)
    assert built.days == 0 and built.refreshed_at is not None
    await seed_complaints(db, [Seed("Ещё", days_ago=d) for d in (3, 3.01, 5)], NOW)
    assert (await pending(db.session_factory, OFFSET)).days == 2
    assert (await pending(db.session_factory, timedelta(hours=4))).days is None  # rebuild
    await refresh(db.session_factory, OFFSET)
    assert (await pending(db.session_factory, OFFSET)).days == 0


async def test_changes_and_refreshes_during_a_refresh_are_not_lost(db: Database, monkeypatch):
    """A refresh plans from a snapshot and writes afterwards: a change committed in between
    waits for the next refresh, and a refresh that committed in between makes it plan
    again (the write lock is held only for the writing)."""
    import domain.storage.report_refresh as rr

    rnd = random.Random(5)
    complaints = await seed_complaints(db, seeds(rnd, 40), NOW)
    await act(db, rnd, complaints, 60, NOW)
    await refresh(db.session_factory, OFFSET)
    later = NOW + timedelta(hours=6)
    plan, plans = rr.make_plan, []

    async def meddling(*args, **kwargs):
        out = await plan(*args, **kwargs)
        plans.append(out)
        if len(plans) in (1, 3):  # between this plan's snapshot and its write: changes
            assert await act(db, rnd, complaints, 30, later) > 3
        if len(plans) == 1:  # and a concurrent refresh commits (it plans second)
            await refresh(db.session_factory, OFFSET)
        return out

    assert await act(db, rnd, complaints, 20, later) > 3
    monkeypatch.setattr(rr, "make_plan", meddling)
    await refresh(db.session_factory, OFFSET)
    assert len(plans) == 3  # the outer one, the inner refresh's, the outer one again
    monkeypatch.setattr(rr, "make_plan", plan)
    assert (await refresh(db.session_factory, OFFSET)).days > 0  # the later changes
    await assert_same(db, later)


async def test_top_categories_and_days_from_the_aggregates_equal_the_direct_ones(
        db: Database):
    from domain.storage import report_daily
    from domain.storage import reports as direct_reports

    rnd = random.Random(7)
    complaints = await seed_complaints(db, seeds(rnd, 80), NOW)
    async with db.uow() as uow:  # reclassified: counted under its new category
        await reclassify(uow, catalogue(), complaints[0].id or 0, "roads", "potholes",
                         actor="op", now=NOW)
        await uow.commit()
    await refresh(db.session_factory, OFFSET)
    whole = [Period(local_midnight(d), local_midnight(-1)) for d in (7, 30, 40)]
    ragged = Period(NOW - timedelta(days=20, hours=5), NOW)  # not whole days: direct
    async with db.session_factory() as session:
        for period in [*whole, ragged]:
            got = await report_daily.top_categories(session, period)
            want = await direct_reports.top_categories(session, period)
            assert got == want and sum(t.current for t in got) > 0, period
            got_days = await report_daily.daily_counts(session, period, OFFSET)
            assert got_days == await direct_reports.daily_counts(session, period, OFFSET)
        # the sums really come from the aggregates: a row changed behind their back shows
        await session.execute(ReportDayRow.__table__.update().values(complaints=1000))
        trends = await report_daily.top_categories(session, whole[1])
        assert trends[0].current >= 1000
        await session.rollback()
