"""The translation catalogues are complete, current and consistent."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from dialogue.i18n import (
    LOCALES_DIR,
    MissingTranslations,
    format_date,
    format_datetime,
    format_number,
    get_translator,
    load_translations,
    normalize_language,
)

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\{[^}]*\}")


def catalog(lang: str):
    with (LOCALES_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as fp:
        return read_po(fp, locale=lang)


def messages(lang: str):
    return [m for m in catalog(lang) if m.id]


def code_msgids() -> set[str | tuple[str, ...]]:
    found: set[str | tuple[str, ...]] = set()
    for package in ("dialogue", "bots", "notifications"):  # all share this catalogue
        for _file, _line, message, _comments, _context in extract_from_dir(
                str(ROOT / package), method_map=[("**.py", "python")]):
            found.add(message)
    return found


def test_every_msgid_has_a_non_empty_russian_translation():
    missing = []
    for m in messages("ru"):
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        if "fuzzy" in m.flags or not all(s.strip() for s in strings):
            missing.append(m.id)
        if isinstance(m.id, tuple):
            assert len(strings) == 3, f"Russian needs three plural forms: {m.id}"
    assert missing == []


def test_english_is_complete_too():
    assert all(m.string and "fuzzy" not in m.flags for m in messages("en"))


def test_catalogues_cover_every_string_in_the_code():
    in_code = {m if isinstance(m, str) else tuple(m) for m in code_msgids()}
    for lang in ("ru", "en"):
        in_po = {m.id if isinstance(m.id, str) else tuple(m.id) for m in messages(lang)}
        assert in_code - in_po == set(), f"run pybabel extract/update for {lang}"


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_placeholders_match(lang):
    for m in messages(lang):
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        expected = set(PLACEHOLDER.findall(ids[-1]))
        for s in strings:
            assert set(PLACEHOLDER.findall(s)) == expected, (m.id, s)


def test_translator_translates_and_pluralises():
    ru = get_translator("ru")
    assert ru.gettext("Registered") == "Зарегистрировано"
    assert ru.gettext("In progress") == "В работе"
    assert ru.gettext("Answered") == "Дан ответ"
    forms = [ru.ngettext("{n} photo", "{n} photos", n).format(n=n) for n in (1, 3, 5, 21)]
    assert forms == ["1 фотография", "3 фотографии", "5 фотографий", "21 фотография"]
    assert get_translator("en").ngettext("{n} photo", "{n} photos", 2) == "{n} photos"


def test_po_is_compiled_in_memory_when_no_mo(tmp_path):
    folder = tmp_path / "ru" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    shutil.copy(LOCALES_DIR / "ru" / "LC_MESSAGES" / "messages.po", folder)
    assert load_translations(folder, "ru").gettext("Closed") == "Закрыто"


def test_missing_catalogue_gives_a_clear_error(tmp_path):
    with pytest.raises(MissingTranslations, match="pybabel compile"):
        load_translations(tmp_path, "ru")
    with pytest.raises(MissingTranslations, match="unsupported"):
        get_translator("fr")


def test_dates_are_shown_in_moscow_time_per_locale():
    late_utc = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)  # already 2 December in Moscow
    assert format_date(late_utc, "ru") == "2 декабря 2026\u202fг."
    assert format_date(late_utc, "en") == "December 2, 2026"
    assert format_date(date(2026, 3, 8), "en") == "March 8, 2026"
    assert "01:30" in format_datetime(late_utc, "ru")
    assert format_number(10_000, "ru") == "10\xa0000" and format_number(10_000, "en") == "10,000"


@pytest.mark.parametrize(("hint", "expected"), [
    ("en-US", "en"), ("RU", "ru"), ("de", "ru"), (None, "ru"), ("", "ru"), ("en_GB", "en"),
])
def test_language_hints(hint, expected):
    assert normalize_language(hint) == expected
