"""Complaint classification: the narrow interface the dialogue needs and a provisional
keyword classifier built from the catalogue's keyword stems."""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Protocol

from domain.catalogue import Catalogue

_WORD = re.compile(r"[a-zа-я0-9]+")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A sector/category guess with a confidence in 0..1."""

    sector: str
    category: str
    confidence: float


class Classifier(Protocol):
    async def classify(self, text: str) -> list[Suggestion]:
        """Suggestions ranked best first; confidences sum to at most 1; ``[]`` if unsure."""
        ...


def _normalize(text: str) -> str:
    return text.lower().replace("ё", "е")


class KeywordClassifier:
    """Counts keyword stem hits per category (plus its sector's own stems) and turns the
    scores into confidences with a softmax that keeps some mass for "none of these".

    A stem matches a word that starts with it; a keyword of several words matches those
    words in a row. Placeholder until a trained model replaces it.
    """

    CATEGORY_WEIGHT = 2.0
    SECTOR_WEIGHT = 1.0
    TEMPERATURE = 1.5
    NONE_SCORE = 0.0  # the score of an implicit "nothing matched" option

    def __init__(self, catalogue: Catalogue, *, limit: int = 5) -> None:
        self._limit = limit
        # every distinct keyword (a tuple of stems) once; categories and sectors list the
        # indexes of theirs, so a text is scanned once whatever the size of the catalogue
        self._keywords: list[tuple[str, ...]] = []
        ids: dict[tuple[str, ...], int] = {}

        def index(keywords: tuple[str, ...]) -> tuple[int, ...]:
            return tuple(ids.setdefault(k, len(ids)) for k in _split(keywords))

        self._categories: list[tuple[str, str, tuple[int, ...]]] = []
        self._sector_keywords: dict[str, tuple[int, ...]] = {}
        for sector in catalogue.sectors:
            own: set[str] = set()
            for category in sector.categories:
                own.update(category.keywords)
                self._categories.append((sector.slug, category.slug, index(category.keywords)))
            self._sector_keywords[sector.slug] = index(
                tuple(k for k in sector.keywords if k not in own))
        self._keywords = list(ids)
        # first stem -> (keyword index, the stems that must follow)
        self._by_first: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
        for i, stems in enumerate(self._keywords):
            self._by_first.setdefault(stems[0], []).append((i, stems[1:]))
        self._longest = max((len(stem) for stem in self._by_first), default=0)

    async def classify(self, text: str) -> list[Suggestion]:
        words = _WORD.findall(_normalize(text))
        if not words:
            return []
        found = self._matches(words)
        if not found:
            return []
        sector_hits = {s: sum(k in found for k in keywords)
                       for s, keywords in self._sector_keywords.items()}
        scored: list[tuple[float, str, str]] = []
        for sector, category, keywords in self._categories:
            cat_hits = sum(k in found for k in keywords)
            if cat_hits == 0 and sector_hits[sector] == 0:
                continue
            score = self.CATEGORY_WEIGHT * cat_hits + self.SECTOR_WEIGHT * sector_hits[sector]
            scored.append((score, sector, category))
        if not scored:
            return []
        scored.sort(key=lambda item: -item[0])
        top = scored[0][0]
        exps = [math.exp((s - top) / self.TEMPERATURE) for s, _, _ in scored]
        total = sum(exps) + math.exp((self.NONE_SCORE - top) / self.TEMPERATURE)
        return [Suggestion(sector, category, math.floor(e / total * 10_000) / 10_000)
                for e, (_, sector, category) in zip(exps, scored, strict=True)][: self._limit]

    def _matches(self, words: list[str]) -> set[int]:
        """Indexes of the keywords that occur in ``words``: a stem matches a word that
        starts with it, a keyword of several stems matches those words in a row."""
        found: set[int] = set()
        by_first = self._by_first
        for i, word in enumerate(words):
            for end in range(1, min(len(word), self._longest) + 1):
                for keyword, rest in by_first.get(word[:end], ()):
                    if keyword not in found and i + len(rest) < len(words) and all(
                            words[i + 1 + j].startswith(stem) for j, stem in enumerate(rest)):
                        found.add(keyword)
        return found


def _split(keywords: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    result = []
    for keyword in keywords:
        parts = tuple(p for p in _WORD.findall(_normalize(keyword.replace("*", ""))) if p)
        if parts:
            result.append(parts)
    return tuple(result)


class FallbackClassifier:
    """Asks ``primary`` (e.g. a Rasa server) and, when it fails, ``fallback`` — so a
    classifier service that is down never stops citizens from filing complaints."""

    def __init__(self, primary: Classifier, fallback: Classifier) -> None:
        self.primary = primary
        self.fallback = fallback

    async def classify(self, text: str) -> list[Suggestion]:
        try:
            return await self.primary.classify(text)
        except Exception as exc:  # any failure of the service: answer from the fallback
            log.warning("classifier %s failed (%s); using %s", type(self.primary).__name__,
                        exc, type(self.fallback).__name__)
            return await self.fallback.classify(text)
