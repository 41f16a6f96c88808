"""The few words channel adapters add themselves, translated through the dialogue's gettext
catalogues (``dialogue/locales``, domain ``messages``)."""

from __future__ import annotations

from dialogue.i18n import get_translator, normalize_language


def N_(msgid: str) -> str:
    """Marks ``msgid`` for extraction (``pybabel extract``) without translating it yet."""
    return msgid


def translate(msgid: str, language: str | None) -> str:
    """``msgid`` in ``language`` (Russian when unknown)."""
    return get_translator(normalize_language(language)).gettext(msgid)
