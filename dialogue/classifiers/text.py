"""Text preparation for the embedded classifier: normalisation and pymorphy3 lemmas.

Citizens write on phones: mixed case, "ё" or "е", links, phone numbers, house numbers,
emoji. The classifier sees only lowercase word lemmas, so "трубы прорвало" and "труба
прорвалась" share features. The pymorphy3 analyzer loads its dictionaries (about 0.5 s)
on first use, never at import time.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

_URL = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\w+")
_WORD = re.compile(r"[a-zа-я]+(?:-[a-zа-я]+)*")
#: Long texts are cut: an appeal's topic is almost always stated in its first lines, and the
#: cost of lemmatising a 1,500-word letter is paid on every message otherwise. 150 words keep
#: the p99 latency under 10 ms (bench/nlu.py) and lose no macro-F1 on real appeals.
MAX_WORDS = 150


def normalize(text: str) -> str:
    """Lowercase, "ё" → "е", drop links and e-mail addresses, keep only words.

    Digits (house numbers, phones, dates) and punctuation become spaces; hyphenated words
    stay whole ("из-за", "кое-где").
    """
    text = _URL.sub(" ", text.lower().replace("ё", "е"))
    return " ".join(_WORD.findall(text)[:MAX_WORDS])


@cache
def _analyzer() -> Any:
    import pymorphy3  # imported lazily: loading the dictionaries takes a moment

    return pymorphy3.MorphAnalyzer(lang="ru")


@lru_cache(maxsize=200_000)
def lemma(word: str) -> str:
    """The most probable normal form of one lowercase word (the word itself if not Russian)."""
    if not re.fullmatch(r"[а-я-]+", word):
        return word
    return str(_analyzer().parse(word)[0].normal_form).replace("ё", "е")


def lemmas(text: str) -> list[str]:
    """Lemmas of the words of ``text`` after :func:`normalize`."""
    return [lemma(w) for w in normalize(text).split()]


def prepare(text: str) -> str:
    """The space-joined lemmas of ``text``: the input of the vectorizers."""
    return " ".join(lemmas(text))
