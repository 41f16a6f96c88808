"""Recognising place names in free Russian text, tolerant to inflection.

Residents write "в Махачкале", "Дербентского района", "р-н Кизляр": each known name or alias
is compiled into a regex over its inflected forms, and the longest phrase wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

_ADJ_ENDINGS: tuple[str, ...] = (
    "ий", "ый", "ой", "ая", "ое", "ие", "ые", "ого", "ому", "им", "ым", "ом", "ую",
    "их", "ых", "ими", "ыми", "ей", "ою",
)
_NOUN_A: tuple[str, ...] = ("а", "я", "ы", "и", "е", "у", "ю", "ой", "ою", "ей")
_NOUN_CONS: tuple[str, ...] = ("", "а", "у", "е", "ом", "ем", "ы", "ов", "ах", "ам")
_NOUN_SOFT: tuple[str, ...] = ("ь", "я", "ю", "е", "ем", "и", "ью")
_NOUN_PLURAL: tuple[str, ...] = ("и", "ы", "ей", "ов", "ам", "ям", "ах", "ях", "ами", "ями")
_WORD = re.compile(r"[a-zа-я0-9]+")
_STREET = re.compile(
    r"(?<![a-zа-я0-9])(?:ул|улиц[аеуы]|пр|пр-т|просп|проспект[аеу]?|пер|переул(?:ок|ке|ка)"
    r"|пл|площад[ьи]|шоссе|бульвар[ае]?|тупик[ае]?|наб|набережн(?:ая|ой))[.\s]*$")
_ABBREVIATIONS = ((re.compile(r"(?<![a-zа-я0-9])р-?н(?:а|е|у|ом)?(?![a-zа-я0-9])"), "район"),)


def normalize(text: str) -> str:
    """Lower-case, "ё" -> "е", common abbreviations expanded (``р-н`` -> ``район``)."""
    text = text.lower().replace("ё", "е")
    for pattern, repl in _ABBREVIATIONS:
        text = pattern.sub(repl, text)
    return text


def _is_adjective(word: str) -> bool:
    return len(word) > 4 and (word[-2:] in ("ий", "ый", "ая", "ое", "ие", "ые")
                              or word.endswith("ской"))


def _word_regex(word: str) -> str:
    """A regex matching one normalized word in its Russian inflected forms.

    A trailing ``*`` makes the word a prefix; Latin words and indeclinable words match exactly.
    """
    if word.endswith("*"):
        return re.escape(word[:-1]) + r"[a-zа-я0-9]*"
    if not re.fullmatch(r"[а-я]+", word) or len(word) < 3:
        return re.escape(word)
    if _is_adjective(word):
        stem, endings = word[:-2], _ADJ_ENDINGS
    elif word[-1] in "ая":
        stem, endings = word[:-1], _NOUN_A
    elif word[-1] == "ь":
        stem, endings = word[:-1], _NOUN_SOFT
    elif word[-1] in "иы":
        stem, endings = word[:-1], _NOUN_PLURAL
    elif word[-1] in "оеуюэ":
        return re.escape(word)
    elif word.endswith("ск"):  # "Каспийском" reads as the adjective ("в Каспийском море")
        stem, endings = word, tuple(e for e in _NOUN_CONS if e not in ("ом", "ем"))
    else:
        stem, endings = word, _NOUN_CONS
    return re.escape(stem) + "(?:" + "|".join(re.escape(e) for e in endings) + ")"


@dataclass(frozen=True, slots=True)
class _Pattern(Generic[T]):
    place: T
    regex: re.Pattern[str]
    rank: int  # more words rank higher; a lone adjective ("Буйнакский") below a lone noun


def _compile(place: T, phrases: Iterable[str]) -> list[_Pattern[T]]:
    patterns = []
    for phrase in {normalize(p) for p in phrases}:
        words = [w for w in re.split(r"[^a-zа-я0-9*]+", phrase) if w]
        if not words:
            continue
        body = r"[^a-zа-я0-9]+".join(_word_regex(w) for w in words)
        regex = re.compile(r"(?<![a-zа-я0-9])" + body + r"(?![a-zа-я0-9])")
        lone_adjective = len(words) == 1 and _is_adjective(words[0])
        patterns.append(_Pattern(place, regex, 2 * len(words) - lone_adjective))
    return patterns


class PlaceMatcher(Generic[T]):
    """Finds which of the given places a text names; built once, used many times."""

    def __init__(self, places: Iterable[tuple[T, Iterable[str]]]) -> None:
        self._patterns = [p for place, phrases in places for p in _compile(place, phrases)]

    def find(self, text: str) -> T | None:
        """The place named in ``text``: the longest phrase wins, on a tie the first
        mentioned; names right after a street word ("ул. Буйнакского") are skipped."""
        norm = normalize(text)
        best: tuple[int, int] | None = None
        found: T | None = None
        for pattern in self._patterns:
            for match in pattern.regex.finditer(norm):
                if _STREET.search(norm, 0, match.start()):
                    continue
                key = (pattern.rank, -match.start())
                if best is None or key > best:
                    best, found = key, pattern.place
                break
        return found
