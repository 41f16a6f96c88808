"""The portal's catalogues are complete, and its templates escape what they show."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.pofile import read_po

from portal.i18n import LANGUAGES, LOCALES_DIR, local_time, translations
from portal.render import make_environment

PORTAL = Path(__file__).resolve().parents[2] / "portal"
# _("...") in templates and code, N_("...") markers in code.
MSGID = re.compile(r"""\b(?:_|N_)\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*[,)|]""")


def used_msgids() -> set[str]:
    found = set()
    for path in PORTAL.rglob("*"):
        if path.suffix in (".py", ".html"):
            for match in MSGID.finditer(path.read_text(encoding="utf-8")):
                found.add(match.group(1) if match.group(1) is not None else match.group(2))
    return found


def test_the_scanner_finds_msgids():
    assert {"Complaints", "Wrong login or password.", "New"} <= used_msgids()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_msgid_is_translated(lang: str):
    with (LOCALES_DIR / lang / "LC_MESSAGES" / "portal.po").open("rb") as fp:
        catalog = read_po(fp, locale=lang)
    translated = {m.id: m.string for m in catalog if m.id and not m.fuzzy}
    missing = sorted(i for i in used_msgids() if not translated.get(i))
    assert missing == []
    unused = sorted(set(translated) - used_msgids())
    assert unused == []


def test_russian_is_russian_and_placeholders_survive():
    ru = translations("ru")
    assert ru.gettext("Complaints") == "Обращения"
    assert ru.gettext("Found: %(total)s") % {"total": 7} == "Найдено: 7"
    assert ru.gettext("confidence %(pct)s%%") % {"pct": 87} == "уверенность 87%"
    assert translations("en").gettext("Complaints") == "Complaints"
    assert translations("xx").gettext("Complaints") == "Обращения"  # falls back to Russian


def test_templates_autoescape_user_text():
    env = make_environment()
    html = env.from_string("<p>{{ text }}</p>").render(text="<script>alert(1)</script>")
    assert html == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert env.list_templates() and all(env.autoescape(name) for name in env.list_templates())


def test_times_are_shown_in_the_office_time_zone():
    at = datetime(2026, 11, 27, 14, 5, tzinfo=UTC)
    assert local_time(at, ZoneInfo("Europe/Moscow")) == "27.11.2026 17:05"
    assert local_time(None, ZoneInfo("Europe/Moscow")) == ""
