"""The portal's translations (gettext domain ``portal``) and formatting of times.

Catalogues: ``portal/locales/<lang>/LC_MESSAGES/portal.po``, msgids in English. A compiled
``.mo`` is used when it is at least as new as the ``.po``; otherwise the ``.po`` is compiled
in memory (as :mod:`dialogue.i18n` does for the dialogue), so a checkout works as it is.
"""

from __future__ import annotations

import io
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

DOMAIN = "portal"
LOCALES_DIR = Path(__file__).resolve().parent / "locales"
LANGUAGES: tuple[str, ...] = ("ru", "en")
DEFAULT_LANGUAGE = "ru"


@cache
def translations(lang: str) -> Translations:
    """The portal's catalogue for ``lang`` (falls back to Russian), cached per process."""
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    folder = LOCALES_DIR / lang / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if mo.is_file() and (not po.is_file() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fp:
            return Translations(fp, domain=DOMAIN)
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def pick_language(raw: str | None) -> str:
    return raw if raw in LANGUAGES else DEFAULT_LANGUAGE


def local_time(value: datetime | None, tz: ZoneInfo) -> str:
    """``27.11.2026 17:00`` in the office's time zone; empty for None. Compact on purpose:
    it fills table columns all day."""
    if value is None:
        return ""
    return value.astimezone(tz).strftime("%d.%m.%Y %H:%M")
