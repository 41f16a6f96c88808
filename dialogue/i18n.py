"""Translations and locale-aware formatting for the dialogue.

Catalogues live in ``dialogue/locales/<lang>/LC_MESSAGES/messages.po`` (domain ``messages``).
A compiled ``.mo`` next to the ``.po`` is used when it is at least as new as the ``.po``;
otherwise the ``.po`` is compiled in memory, so a fresh checkout works without a build step
and a stale ``.mo`` never hides a newer translation.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date as _babel_format_date
from babel.dates import format_datetime as _babel_format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

DOMAIN = "messages"
LOCALES_DIR = Path(__file__).resolve().parent / "locales"
LANGUAGES: tuple[str, ...] = ("ru", "en")
DEFAULT_LANGUAGE = "ru"
TIMEZONE = ZoneInfo("Europe/Moscow")


class MissingTranslations(RuntimeError):
    """Raised when neither a ``.po`` nor a ``.mo`` catalogue exists for a language."""


def normalize_language(lang: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """Map a channel's language hint (``"en-US"``, ``"RU"``) to a supported language."""
    if not lang:
        return default
    short = lang.replace("_", "-").split("-")[0].lower()
    return short if short in LANGUAGES else default


@cache
def get_translator(lang: str) -> Translations:
    """The translations for ``lang`` (one of :data:`LANGUAGES`), cached per process."""
    if lang not in LANGUAGES:
        raise MissingTranslations(f"unsupported language {lang!r}; known: {LANGUAGES}")
    return load_translations(LOCALES_DIR / lang / "LC_MESSAGES", lang)


def load_translations(folder: Path, lang: str) -> Translations:
    """Read ``messages.mo`` from ``folder`` if it is current, else compile ``messages.po``."""
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if mo.is_file() and (not po.is_file() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fp:
            return Translations(fp, domain=DOMAIN)
    if not po.is_file():
        raise MissingTranslations(
            f"no translations for {lang!r}: expected {po} (or a compiled {mo.name}); "
            "run `pybabel compile -d dialogue/locales -D messages`")
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def format_date(value: date | datetime, lang: str) -> str:
    """A date in the citizen's language, e.g. ``4 декабря 2026 г.``; datetimes are shown
    in Moscow time."""
    if isinstance(value, datetime):
        value = _moscow(value).date()
    return _babel_format_date(value, format="long", locale=lang)


def format_datetime(value: datetime, lang: str) -> str:
    """A date and time in Moscow time, e.g. ``27 нояб. 2026 г., 17:00``."""
    return _babel_format_datetime(_moscow(value), format="medium", tzinfo=TIMEZONE,
                                  locale=lang)


def _moscow(value: datetime) -> datetime:
    if value.tzinfo is None:  # naive datetimes are taken as UTC, like the database's
        value = value.replace(tzinfo=ZoneInfo("UTC"))
    return value.astimezone(TIMEZONE)


def format_number(value: int | float, lang: str) -> str:
    """A number with the locale's grouping, e.g. ``10 000`` in Russian."""
    return format_decimal(value, locale=lang)
