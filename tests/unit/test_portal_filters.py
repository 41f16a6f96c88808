"""The register's query builder and the parsing of its GET form."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from multidict import MultiDict
from sqlalchemy.dialects import postgresql, sqlite

from domain.calendar import WorkingCalendar
from domain.storage.queries import (
    NO_MUNICIPALITY,
    ComplaintFilter,
    Sort,
    conditions,
    escape_like,
    register_select,
)
from portal.views.filters import link, parse_filter, parse_page, parse_sort, soon_days, windows
from tests.fakes.dialogue import catalogue

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # Friday 17:00 in Moscow


def sql(flt: ComplaintFilter, dialect: str = "sqlite", sort: Sort | None = None) -> str:
    d = sqlite.dialect() if dialect == "sqlite" else postgresql.dialect()
    query = register_select(flt, sort or Sort(), dialect)
    return str(query.compile(dialect=d, compile_kwargs={"literal_binds": True}))


def test_like_wildcards_and_the_escape_character_are_escaped():
    assert escape_like("100%_a\\b") == "100\\%\\_a\\\\b"
    assert escape_like("обычный текст") == "обычный текст"


def test_an_empty_filter_has_no_conditions_and_sorts_newest_first():
    assert conditions(ComplaintFilter(), "sqlite") == []
    text = sql(ComplaintFilter())
    assert "WHERE" not in text
    assert "ORDER BY complaints.created_at DESC, complaints.id DESC" in text


def test_every_filter_becomes_a_condition():
    flt = ComplaintFilter(statuses=("new",), sector="roads", category=("roads", "potholes"),
                          agency="a", municipality="derbent", channel="vk", open_only=True,
                          due_from=NOW, due_before=NOW, created_from=NOW, created_before=NOW,
                          search="яма")
    assert len(conditions(flt, "sqlite")) == 13
    text = sql(flt)
    for fragment in ("complaints.status IN ('new')", "complaints.sector = 'roads'",
                     "complaints.category = 'potholes'", "complaints.agency = 'a'",
                     "complaints.municipality = 'derbent'", "complaints.channel = 'vk'",
                     "complaints.resolution_due >=", "complaints.resolution_due <",
                     "complaints.created_at >=", "complaints.created_at <"):
        assert fragment in text


def test_unknown_municipality_filter_is_is_null():
    assert "complaints.municipality IS NULL" in sql(ComplaintFilter(municipality=NO_MUNICIPALITY))


def test_search_is_ilike_on_postgresql_and_case_variants_of_like_on_sqlite():
    pg = sql(ComplaintFilter(search="Вода 5%"), "postgresql")
    # literal_binds doubles "%" for the driver's paramstyle: this is ILIKE '%Вода 5\%%'
    assert "complaints.text ILIKE '%%Вода 5\\%%%%' ESCAPE '\\'" in pg
    assert "complaints.number ILIKE" in pg and "complaints.address ILIKE" in pg
    lite = sql(ComplaintFilter(search="Вода"))  # no ASCII letter: instr() finds the same
    for variant in ("Вода", "вода", "ВОДА"):
        assert f"instr(complaints.text, '{variant}') > 0" in lite
    assert "instr(complaints.number, 'Вода')" in lite and "LIKE" not in lite
    lite = sql(ComplaintFilter(search="Lenina"))  # LIKE folds ASCII case by itself
    for variant in ("%Lenina%", "%lenina%", "%LENINA%"):
        assert f"complaints.text LIKE '{variant}' ESCAPE '\\'" in lite
    assert "complaints.number LIKE" in lite and "complaints.address LIKE" in lite


def test_only_known_columns_can_be_sorted():
    assert "ORDER BY complaints.resolution_due ASC, complaints.id ASC" in sql(
        ComplaintFilter(), sort=Sort("resolution_due", descending=False))
    with pytest.raises(ValueError):
        Sort("text; DROP TABLE complaints")


def test_the_form_is_parsed_and_bad_values_are_dropped():
    cal = WorkingCalendar()
    win = windows(NOW, cal, 3)
    query = MultiDict([("status", "new"), ("status", "bogus"), ("sector", "roads"),
                       ("category", "roads/potholes"), ("agency", "nope"),
                       ("municipality", "derbent"), ("channel", "fax"), ("due", "overdue"),
                       ("from", "2026-11-01"), ("to", "2026-11-30"), ("q", " яма ")])
    flt = parse_filter(query, catalogue(), cal, win)
    assert flt.statuses == ("new",) and flt.sector == "roads"
    assert flt.category == ("roads", "potholes") and flt.agency is None
    assert flt.municipality == "derbent" and flt.channel is None
    assert flt.open_only and flt.due_before == NOW and flt.due_from is None
    assert flt.created_from == datetime(2026, 10, 31, 21, tzinfo=UTC)  # midnight in Moscow
    assert flt.created_before == datetime(2026, 11, 30, 21, tzinfo=UTC)  # to-date inclusive
    assert flt.search == " яма "
    bad = parse_filter(MultiDict([("category", "roads/no_water"), ("from", "yesterday")]),
                       catalogue(), cal, win)
    assert bad.category is None and bad.created_from is None


def test_deadline_windows_follow_the_moscow_day_and_working_days():
    win = windows(NOW, WorkingCalendar(), 1)  # Friday 17:00 MSK
    assert win.today_end == datetime(2026, 11, 27, 21, tzinfo=UTC)  # midnight MSK
    assert win.soon_end == datetime(2026, 11, 30, 15, tzinfo=UTC)  # Monday 18:00 MSK
    flt = parse_filter(MultiDict(due="today"), catalogue(), WorkingCalendar(), win)
    assert (flt.due_from, flt.due_before) == (NOW, win.today_end)
    flt = parse_filter(MultiDict(due="soon"), catalogue(), WorkingCalendar(), win)
    assert (flt.due_from, flt.due_before) == (win.today_end, win.soon_end)


def test_sort_page_days_and_links():
    assert parse_sort(MultiDict(sort="number", dir="asc")) == Sort("number", False)
    assert parse_sort(MultiDict(sort="password")) == Sort()
    assert parse_page(MultiDict(page="x")) == 1 and parse_page(MultiDict(page="-3")) == 1
    assert soon_days("99") == 20 and soon_days("0") == 1 and soon_days("abc") == 3
    q = MultiDict([("q", "a&b"), ("page", "2"), ("sort", "number")])
    assert link("/p", q, page=None, sort="status") == "/p?q=a%26b&sort=status"
