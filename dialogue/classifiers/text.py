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
#: Lemmas that say nothing about the topic: greetings, requests and politeness of a formal
#: appeal, pronouns and connectives. Our examples are short and rarely formal, so these words
#: are rare in them and would get a high IDF and a sector's weight by chance; dropped, a long
#: letter ("Здравствуйте! Прошу Вас помочь решить проблему ...") is classified by its topic.
#: Measured with bench/nlu.py: +0.015 macro-F1 of the shipped model on real appeals.
_STOP = """
    здравствуйте здравствовать добрый день вечер утро уважаемый уважаемая прошу просить
    пожалуйста помочь помогать принять мера разобраться решить решение проблема вопрос
    обращение обращаться обратиться ответ спасибо заранее подсказать ситуация данный также
    который это быть наш мы я вы ваш они он она свой весь этот тот такой как так что чтобы
    и а но или же ли бы уже еще очень просто почему когда где куда ведь вот тоже только
"""
STOP_LEMMAS = frozenset(_STOP.split())
#: A long appeal states its topic in its first sentences and then adds history, addresses and
#: politeness: the first lemmas of a text longer than this are repeated once at its end, so
#: their n-grams count twice (sublinear tf: 1 + ln 2) against the rest. Measured with
#: bench/nlu.py, together with the block weights of embedded.py: see the README NLU table.
HEAD_LEMMAS = 20


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
    """The space-joined lemmas of ``text`` without :data:`STOP_LEMMAS`, the first
    :data:`HEAD_LEMMAS` of them repeated at the end when there are more: the input of the
    vectorizers."""
    kept = [w for w in lemmas(text) if w not in STOP_LEMMAS]
    if len(kept) > HEAD_LEMMAS:
        kept += kept[:HEAD_LEMMAS]
    return " ".join(kept)
