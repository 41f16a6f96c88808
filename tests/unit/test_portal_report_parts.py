"""Pure parts of ratings and reports: the score, ranking, repeat detection, themes, the
formula-injection guard of downloads, SVG charts and the public view of Open311."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from multidict import MultiDict
from openpyxl import load_workbook

from domain.storage.reports import PlaceRow, RatingLine, Tally, ranked, score
from portal.charts import Bar, bar_chart, line_chart, paired_chart
from portal.open311 import public_request
from portal.views.export import Table, safe_cell, to_csv, to_xlsx
from portal.views.ratings import parse_period
from portal.views.reports import find_repeats, metres, normalize_address, themes
from tests.fakes.dialogue import catalogue

MSK = ZoneInfo("Europe/Moscow")


def test_score_weighs_parts_and_shares_out_missing_ones():
    perfect = Tally(complaints=10, first_due=10, first_on_time=10, resolution_due=10,
                    resolution_on_time=10, finished=10, substantive=10, surveyed=4, solved=4)
    assert score(perfect) == pytest.approx(100)
    half_late = Tally(complaints=10, first_due=10, first_on_time=5, resolution_due=10,
                      resolution_on_time=5, finished=10, substantive=10, surveyed=4, solved=4)
    assert score(half_late) == pytest.approx(100 - 0.40 * 50)
    # no surveys: satisfaction's 20 % goes to the rest, so the same lateness costs more
    no_surveys = Tally(complaints=10, first_due=10, first_on_time=5, resolution_due=10,
                       resolution_on_time=5, finished=10, substantive=10)
    assert score(no_surveys) == pytest.approx(100 - 50 * 0.40 / 0.80)
    reopened = Tally(complaints=10, reopened=5)  # only the reopen part has data
    assert score(reopened) == pytest.approx(50)
    assert score(Tally()) is None


def line(key: str, n: int, value: float | None) -> RatingLine:
    return RatingLine(key, n, None, None, None, None, None, None, None, None, value)


def test_ranking_shares_ties_and_puts_unranked_last():
    got = ranked([line("a", 20, 70.0), line("b", 3, None), line("c", 15, 90.0),
                  line("d", 12, 70.0), line("e", 9, None)])
    assert [(x.key, x.rank) for x in got] == [("c", 1), ("a", 2), ("d", 2), ("e", None),
                                              ("b", None)]


def row(i: int, citizen: int, days: float, *, category: str = "no_water",
        address: str | None = None, at: tuple[float, float] | None = None) -> PlaceRow:
    lat, lon = at or (None, None)
    return PlaceRow(i, f"N{i}", citizen, "housing", category, "makhachkala", address, lat, lon,
                    days * 86400)


def test_repeats_by_citizen_address_and_distance():
    rows = [
        row(1, 1, 0), row(2, 1, 10),  # same citizen 10 days later
        row(3, 2, 1, address="ул. Ленина, 5"), row(4, 3, 2, address="Ул Ленина 5"),
        row(5, 4, 3, address="ул. Ленина, 7"),  # another house: not a repeat
        row(6, 5, 4, at=(42.9800, 47.5000)), row(7, 6, 5, at=(42.9805, 47.5005)),  # ~68 m
        row(8, 7, 6, at=(42.9900, 47.5000)),  # ~1.1 km away
        row(9, 8, 7, category="no_heating", at=(42.98, 47.50)),  # other category
        row(10, 1, 50),  # the citizen again, but 40 days after the last one
    ]
    found = find_repeats(rows, start=0, window=timedelta(days=30))
    assert [(r.number, r.earlier, r.reason) for r in found] == [
        ("N2", "N1", "citizen"), ("N4", "N3", "address"), ("N7", "N6", "nearby")]
    assert found[0].days == pytest.approx(10)
    # only complaints filed in the period count; earlier ones are there to be matched
    assert [r.number for r in find_repeats(rows, start=4.5 * 86400,
                                           window=timedelta(days=30))] == ["N2", "N7"]
    assert 60 < metres(42.98, 47.5, 42.9805, 47.5005) < 75
    assert normalize_address("Ул.  Ленина,5ё") == normalize_address("ул ленина 5е")


def test_themes_count_each_word_once_per_complaint_without_stopwords():
    def lemmas(text: str) -> list[str]:
        return text.lower().split()

    words, pairs = themes(["шум шум от соседей ночью", "шум соседей", "и на не"], lemmas)
    assert words[:2] == [("соседей", 2), ("шум", 2)]  # ties in alphabetical order
    assert not {"от", "и", "на", "не"} & {w for w, _ in words}
    assert pairs == [("шум соседей", 2)]  # "шум шум" is no pair; pairs seen once are dropped


@pytest.mark.parametrize("text", ["=1+2", "+7 928", "-2+3", "@SUM(A1)", "\tx"])
def test_cells_that_could_start_a_formula_are_quoted(text):
    assert safe_cell(text) == "'" + text and safe_cell("\rx") == "'\rx"
    table = Table("t", "T", ["h"], [[text], [-5], [1.5]])
    rows = list(csv.reader(io.StringIO(to_csv(table).decode("utf-8-sig"))))
    assert rows[1] == ["'" + text] and rows[2] == ["-5"]  # numbers stay numbers
    sheet = load_workbook(io.BytesIO(to_xlsx([table]))).active
    assert sheet["A2"].value == "'" + text and sheet["A2"].data_type == "s"
    assert sheet["A3"].value == -5 and sheet["A3"].data_type == "n"


def test_xlsx_has_a_sheet_per_table_with_unique_safe_names():
    tables = [Table("a", "Рейтинг: ведомства/районы", ["x"], [[1]]),
              Table("b", "Рейтинг: ведомства/районы", ["x"], [[2]])]
    book = load_workbook(io.BytesIO(to_xlsx(tables)))
    assert len(set(book.sheetnames)) == 2 and not any(":" in n or "/" in n
                                                      for n in book.sheetnames)
    when = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    assert safe_cell(when) == datetime(2026, 11, 27, 14, 0) and safe_cell(None) == ""


def test_charts_escape_labels_and_use_no_inline_style():
    evil = '<script>alert(1)</script> & "x"'
    for svg in (bar_chart([Bar(evil, 5, "5")], evil), paired_chart([(evil, 1, 2)], evil,
                                                                    ("a", "b")),
                line_chart([(evil, 1), ("b", 3)], evil)):
        assert "<script>" not in svg and "&lt;script&gt;" in svg
        assert "style=" not in svg and svg.startswith("<svg")
    bars = bar_chart([Bar("a", 50, "50"), Bar("b", 100, "100")], "t", maximum=100)
    assert 'width="180.0"' in bars and 'width="360.0"' in bars


def test_period_defaults_to_the_last_30_days_and_swaps_reversed_dates():
    today = date(2026, 11, 27)
    choice = parse_period(MultiDict(), today, MSK)
    assert (choice.first, choice.last) == (date(2026, 10, 29), today)
    assert choice.period.end == datetime(2026, 11, 28, tzinfo=MSK)
    swapped = parse_period(MultiDict({"from": "2026-11-10", "to": "2026-11-01"}), today, MSK)
    assert (swapped.first, swapped.last) == (date(2026, 11, 1), date(2026, 11, 10))
    assert parse_period(MultiDict({"from": "junk"}), today, MSK).first == date(2026, 10, 29)


def test_open311_request_has_only_public_fields():
    at = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    out = public_request(("2026-000001", "reopened", "roads", "potholes", "minenergo",
                          "derbent", at, None, at + timedelta(days=30), 42.0581234,
                          48.2891234), catalogue())
    assert set(out) == {"service_request_id", "status", "service_name", "service_code",
                        "agency_responsible", "municipality", "requested_datetime",
                        "updated_datetime", "expected_datetime", "lat", "long"}
    assert (out["status"], out["lat"], out["long"]) == ("open", 42.058, 48.289)
    assert out["service_code"] == "roads.potholes" and out["municipality"] == "Дербент"
    assert out["updated_datetime"] == out["requested_datetime"] == "2026-11-20T09:30:00+00:00"
