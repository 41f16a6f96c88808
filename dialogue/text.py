"""Cleaning and checking what citizens type."""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

MIN_MEANINGFUL = 10
MAX_LENGTH = 10_000

_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


class TextProblem(StrEnum):
    EMPTY = "empty"  # nothing but whitespace, emoji or punctuation
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"


def clean(text: str) -> str:
    """Drop control and format characters (keeping newlines), squeeze spaces, trim."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept = []
    for ch in text:
        if ch == "\n":
            kept.append(ch)
        elif ch == "\t":
            kept.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") and ch != "\u200d":
            continue
        else:
            kept.append(ch)
    lines = [_SPACES.sub(" ", line).strip() for line in "".join(kept).split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def meaningful(text: str) -> int:
    """How many letters and digits ``text`` has."""
    return sum(1 for ch in text if ch.isalnum())


def check_description(text: str) -> TextProblem | None:
    """Why a cleaned complaint description cannot be accepted, or ``None`` if it can."""
    count = meaningful(text)
    if count == 0:
        return TextProblem.EMPTY
    if count < MIN_MEANINGFUL:
        return TextProblem.TOO_SHORT
    if len(text) > MAX_LENGTH:
        return TextProblem.TOO_LONG
    return None
