"""The register's search through the trigram index of migration 0009 finds exactly what the
scan of every row finds, on SQLite and PostgreSQL, also after rows change."""

from __future__ import annotations

import pytest
from sqlalchemy import text

import domain.storage.queries as queries
from domain.complaint import Complaint
from domain.storage import Database
from domain.storage.queries import FOLD, ComplaintFilter, register_page
from tests.e2e.portal_fixtures import Seed, seed_complaints
from tests.fakes.dialogue import FRIDAY_EVENING

NOW = FRIDAY_EVENING
SEEDS = [
    Seed("Нет воды в доме", address="ул. Гагарина, 10"),
    Seed("ВОДОПРОВОД прорвало", address="Ёлочная, 3"),
    Seed("вОДа ржавая", municipality=None),
    Seed("Счёт за свет 100% неверный", address="пр. Имама_Шамиля"),
    Seed("He said \"no\" — O'Neil, STREET lamp", "roads", "potholes"),
    Seed("Яма: глубина 30 см; 50_50 шансов", "roads", "potholes"),
    Seed("Ёжик в тумане ß", channel="vk"),
]
TERMS = ["вод", "Вода", "ВОДЫ", "вОДа", "водопровод", "гагарина", "ЁЛОЧ", "ёлоч", "елоч",
         "100%", "0%", "_50", "Имама_Ш", "имама", '"no"', "o'neil", "street", "Street",
         "2026-", "-0000", "ss", "SS", "ß", "ржав", "ржавая вода", "жираф", "яма:", "  см; ",
         "a\\b", "%%%", "___", "ВО", "в", "ёж"]


@pytest.fixture
async def seeded(db: Database) -> list[Complaint]:
    return await seed_complaints(db, SEEDS, NOW)


async def found(db: Database, term: str) -> list[str]:
    async with db.session_factory() as session:
        page = await register_page(session, ComplaintFilter(search=term), NOW, per_page=100)
    return sorted(r.number for r in page.rows)


async def scanned(db: Database, term: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    with monkeypatch.context() as m:
        m.setattr(queries, "INDEXED_SEARCH", 10_000)  # every term read row by row
        return await found(db, term)


async def test_indexed_search_finds_what_the_scan_finds(db: Database, seeded: list[Complaint],
                                                        monkeypatch: pytest.MonkeyPatch):
    expected = {t: await scanned(db, t, monkeypatch) for t in TERMS}
    assert expected["вод"] and expected["имама"] and not expected["жираф"]  # not vacuous
    assert {t: await found(db, t) for t in TERMS} == expected
    with monkeypatch.context() as m:  # SQLite: pages of many matches read in sort order
        m.setattr(queries, "SCAN_PAGE_AFTER", 0)
        assert {t: await found(db, t) for t in TERMS} == expected

    # the index follows inserts, updates and deletes (database triggers on SQLite)
    gone, changed = seeded[0], seeded[3]
    async with db.session_factory() as session, session.begin():
        await session.execute(text("DELETE FROM complaint_history WHERE complaint_id = :i"),
                              {"i": gone.id})
        await session.execute(text("DELETE FROM complaints WHERE id = :i"), {"i": gone.id})
        await session.execute(text("UPDATE complaints SET text = 'Жираф в подъезде',"
                                   " address = NULL WHERE id = :i"), {"i": changed.id})
    await seed_complaints(db, [Seed("Опять нет ВОДЫ и жирафа")], NOW)
    expected = {t: await scanned(db, t, monkeypatch) for t in TERMS}
    assert len(expected["жираф"]) == 2 and not expected["имама"]
    assert {t: await found(db, t) for t in TERMS} == expected


async def test_postgresql_fold_function_is_the_queries_copy(db: Database):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's tsur_search_fold")
    sample = "Ёлка ЁЖ абвгдеёжзийклмнопрстуфхцчшщъыьэюя ABC xyz 123 %_\\ ӏ"
    sample += sample.upper()
    async with db.session_factory() as session:
        folded = (await session.execute(text("SELECT tsur_search_fold(:s)"), {"s": sample})
                  ).scalar_one()
    assert folded == sample.translate(FOLD)
