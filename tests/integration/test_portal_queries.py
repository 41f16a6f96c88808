"""The portal's read-side queries on SQLite and PostgreSQL, checked against the same
selection done in Python over the seeded complaints."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from domain.complaint import OPEN_STATUSES, Complaint, Status
from domain.services import change_status
from domain.storage import Database
from domain.storage.queries import (
    NO_MUNICIPALITY,
    SORT_COLUMNS,
    ComplaintFilter,
    Sort,
    deadline_board,
    register_page,
)
from tests.e2e.portal_fixtures import Seed, seed_complaints
from tests.fakes.dialogue import FRIDAY_EVENING

NOW = FRIDAY_EVENING
SEEDS = [
    Seed("Нет воды в доме", days_ago=1, address="ул. Гагарина, 10"),
    Seed("нет воды третий день", days_ago=2, municipality="derbent", channel="vk"),
    Seed("Скидка 100% на воду?", days_ago=3, municipality=None, channel="web"),
    Seed("Счёт под_чёркнутый", days_ago=4, address="пр. Имама_Шамиля"),
    Seed("Он сказал \"нет\" и O'Neil ушёл", days_ago=5, channel="vk"),
    Seed("Яма на дороге", "roads", "potholes", days_ago=20, municipality="kaspiysk"),
    Seed("ЯМА огромная", "roads", "potholes", days_ago=30),
    Seed("Свалка у реки", "waste", "illegal_dump", days_ago=13, municipality="derbent"),
    Seed("Автобус не ходит", "transport", "bus_schedule", days_ago=40, channel="web"),
    Seed("Back\\slash и 50%", "roads", "road_repair", days_ago=8, municipality=None),
    Seed("Старая жалоба, закрыта", days_ago=60),
    Seed("Ещё одна яма", "roads", "potholes", days_ago=0.1, municipality="kaspiysk"),
]


@pytest.fixture
async def seeded(db: Database) -> list[Complaint]:
    complaints = await seed_complaints(db, SEEDS, NOW)
    async with db.uow() as uow:  # close the oldest one, start work on another
        for c, status in ((complaints[10], Status.IN_PROGRESS), (complaints[10], Status.REJECTED),
                          (complaints[6], Status.IN_PROGRESS)):
            changed = await change_status(uow, c.id or 0, status, actor="t", now=NOW)
            c.status = changed.status
        await uow.commit()
    return complaints


async def numbers(db: Database, flt: ComplaintFilter, sort: Sort | None = None) -> list[str]:
    async with db.session_factory() as session:
        page = await register_page(session, flt, NOW, sort=sort, per_page=100)
    return [r.number for r in page.rows]


def expect(complaints: list[Complaint], keep: Callable[[Complaint], bool]) -> set[str]:
    return {c.number for c in complaints if keep(c)}


def overdue(c: Complaint) -> bool:
    return c.status in OPEN_STATUSES and c.resolution_due < NOW


async def test_each_filter_selects_what_it_says(db: Database, seeded: list[Complaint]):
    cases: list[tuple[ComplaintFilter, Callable[[Complaint], bool]]] = [
        (ComplaintFilter(), lambda c: True),
        (ComplaintFilter(statuses=("in_progress", "rejected")),
         lambda c: c.status in ("in_progress", "rejected")),
        (ComplaintFilter(sector="roads"), lambda c: c.sector == "roads"),
        (ComplaintFilter(category=("roads", "potholes")), lambda c: c.category == "potholes"),
        (ComplaintFilter(agency=seeded[7].agency), lambda c: c.agency == seeded[7].agency),
        (ComplaintFilter(municipality="derbent"), lambda c: c.municipality == "derbent"),
        (ComplaintFilter(municipality=NO_MUNICIPALITY), lambda c: c.municipality is None),
        (ComplaintFilter(channel="vk"), lambda c: c.channel == "vk"),
        (ComplaintFilter(open_only=True, due_before=NOW), overdue),
        (ComplaintFilter(open_only=True, due_from=NOW, due_before=NOW + timedelta(days=5)),
         lambda c: c.is_open and NOW <= c.resolution_due < NOW + timedelta(days=5)),
        (ComplaintFilter(created_from=NOW - timedelta(days=10),
                         created_before=NOW - timedelta(days=2)),
         lambda c: NOW - timedelta(days=10) <= c.created_at < NOW - timedelta(days=2)),
        (ComplaintFilter(sector="housing", channel="vk", municipality="derbent"),
         lambda c: c.sector == "housing" and c.channel == "vk" and c.municipality == "derbent"),
    ]
    for flt, keep in cases:
        wanted = expect(seeded, keep)
        assert wanted or flt == ComplaintFilter(open_only=True, due_before=NOW), flt
        assert set(await numbers(db, flt)) == wanted, flt
    assert len(expect(seeded, overdue)) >= 2


@pytest.mark.parametrize(("term", "texts"), [
    ("воды", {"Нет воды в доме", "нет воды третий день"}),
    ("ЯМА", {"Яма на дороге", "ЯМА огромная", "Ещё одна яма"}),  # case-insensitive Cyrillic
    ("100%", {"Скидка 100% на воду?"}),  # "%" is a character, not "anything"
    ("%", {"Скидка 100% на воду?", "Back\\slash и 50%"}),
    ("_", {"Счёт под_чёркнутый"}),  # matches the text; "Имама_Шамиля" is the same row
    ("Имама_Ш", {"Счёт под_чёркнутый"}),  # the address is searched
    ("гагарина", {"Нет воды в доме"}),
    ('"нет"', {"Он сказал \"нет\" и O'Neil ушёл"}),
    ("O'Neil", {"Он сказал \"нет\" и O'Neil ушёл"}),
    ("k\\s", {"Back\\slash и 50%"}),
    ("под%ный", set()),
    ("2026-0000", {s.text for s in SEEDS}),  # the number is searched
    ("2026-000003", {"Скидка 100% на воду?"}),
])
async def test_search_matches_substrings_literally(db: Database, seeded: list[Complaint],
                                                   term: str, texts: set[str]):
    by_number = {c.number: c.text for c in seeded}
    found = {by_number[n] for n in await numbers(db, ComplaintFilter(search=term))}
    assert found == texts


async def test_sorting_by_every_allowed_column(db: Database, seeded: list[Complaint]):
    for column in SORT_COLUMNS:
        for descending in (False, True):
            got = await numbers(db, ComplaintFilter(), Sort(column, descending))

            def key(c: Complaint, column: str = column) -> tuple[bool, object, int]:
                value = getattr(c, column)
                value = str(value) if column in ("status",) else value
                return (value is None, value or "", c.id or 0)

            ordered = sorted(seeded, key=key)
            if descending:
                ordered.reverse()
            expected_values = [getattr(c, column) for c in ordered]
            got_values = [getattr(next(c for c in seeded if c.number == n), column)
                          for n in got]
            # NULLs sort differently on the two databases: compare the non-null order.
            assert ([v for v in got_values if v is not None]
                    == [v for v in expected_values if v is not None]), (column, descending)
    assert await numbers(db, ComplaintFilter(), Sort("number", False)) == sorted(
        c.number for c in seeded)


async def test_pages_of_the_register(db: Database, seeded: list[Complaint]):
    all_numbers = await numbers(db, ComplaintFilter(), Sort("number", False))
    async with db.session_factory() as session:
        pages = [await register_page(session, ComplaintFilter(), NOW,
                                     sort=Sort("number", False), page=p, per_page=5)
                 for p in (1, 2, 3, 4)]
    assert [p.total for p in pages] == [12] * 4 and pages[0].pages == 3
    assert [r.number for p in pages for r in p.rows] == all_numbers
    assert [len(p.rows) for p in pages] == [5, 5, 2, 0]
    assert pages[0].overdue == len(expect(seeded, overdue))


async def test_overdue_count_follows_the_filter(db: Database, seeded: list[Complaint]):
    async with db.session_factory() as session:
        page = await register_page(session, ComplaintFilter(sector="roads"), NOW)
    assert page.total == 4
    assert page.overdue == len(expect(seeded, lambda c: c.sector == "roads" and overdue(c)))
    async with db.session_factory() as session:
        empty = await register_page(session, ComplaintFilter(search="нет такого"), NOW)
    assert (empty.total, empty.overdue, empty.rows, empty.pages) == (0, 0, [], 1)


async def test_deadline_board_per_agency_and_municipality(db: Database,
                                                          seeded: list[Complaint]):
    today_end, soon_end = NOW + timedelta(hours=7), NOW + timedelta(days=4)

    def bucket(c: Complaint) -> str | None:
        if not c.is_open or c.resolution_due >= soon_end:
            return None
        if c.resolution_due < NOW:
            return "overdue"
        return "today" if c.resolution_due < today_end else "soon"

    for group_by in ("agency", "municipality"):
        async with db.session_factory() as session:
            lines = await deadline_board(session, group_by, NOW, today_end, soon_end)
        expected: dict[str | None, list[int]] = {}
        for c in seeded:
            b = bucket(c)
            if b is not None:
                counts = expected.setdefault(getattr(c, group_by), [0, 0, 0])
                counts[("overdue", "today", "soon").index(b)] += 1
        assert {ln.key: [ln.overdue, ln.due_today, ln.due_soon] for ln in lines} == expected
        assert [ln.overdue for ln in lines] == sorted((ln.overdue for ln in lines), reverse=True)
    assert sum(ln.total for ln in lines) == sum(1 for c in seeded if bucket(c))
    assert any(ln.overdue for ln in lines) and any(ln.due_soon for ln in lines)
    with pytest.raises(ValueError):
        await deadline_board(session, "citizen_id", NOW, today_end, soon_end)


async def test_a_period_of_a_day_uses_half_open_bounds(db: Database, seeded: list[Complaint]):
    at = seeded[0].created_at
    got = await numbers(db, ComplaintFilter(created_from=at, created_before=at + timedelta(
        seconds=1)))
    assert got == [seeded[0].number]
    assert await numbers(db, ComplaintFilter(created_from=at + timedelta(seconds=1),
                                             created_before=at + timedelta(hours=1))) == []
    assert isinstance(at, datetime)


async def test_a_search_counts_its_matches_up_to_the_cap(db: Database, seeded: list[Complaint],
                                                         monkeypatch: pytest.MonkeyPatch):
    import domain.storage.queries as queries

    matching = expect(seeded, lambda c: "вод" in c.text.lower())
    assert len(matching) == 3
    async with db.session_factory() as session:
        whole = await register_page(session, ComplaintFilter(search="вод"), NOW)
        monkeypatch.setattr(queries, "SEARCH_COUNT_CAP", 2)
        capped = await register_page(session, ComplaintFilter(search="вод"), NOW)
        exact = await register_page(session, ComplaintFilter(search="нет воды"), NOW)
    assert (whole.total, whole.capped) == (3, False)
    assert {r.number for r in whole.rows} == matching
    assert (capped.total, capped.capped) == (2, True)  # "more than 2"
    assert {r.number for r in capped.rows} == matching  # the page itself is not cut
    assert (exact.total, exact.capped) == (2, False)
