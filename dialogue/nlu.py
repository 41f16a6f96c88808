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
        self._categories: list[tuple[str, str, tuple[tuple[str, ...], ...]]] = []
        self._sector_stems: dict[str, tuple[tuple[str, ...], ...]] = {}
        for sector in catalogue.sectors:
            own: set[str] = set()
            for category in sector.categories:
                own.update(category.keywords)
                self._categories.append(
                    (sector.slug, category.slug, _split(category.keywords)))
            self._sector_stems[sector.slug] = _split(
                tuple(k for k in sector.keywords if k not in own))

    async def classify(self, text: str) -> list[Suggestion]:
        words = _WORD.findall(_normalize(text))
        if not words:
            return []
        sector_hits = {s: _hits(stems, words) for s, stems in self._sector_stems.items()}
        scored: list[tuple[float, str, str]] = []
        for sector, category, stems in self._categories:
            cat_hits = _hits(stems, words)
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


def _split(keywords: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    result = []
    for keyword in keywords:
        parts = tuple(p for p in _WORD.findall(_normalize(keyword.replace("*", ""))) if p)
        if parts:
            result.append(parts)
    return tuple(result)


def _hits(stems: tuple[tuple[str, ...], ...], words: list[str]) -> int:
    """How many keywords occur in ``words`` (each keyword counted once)."""
    count = 0
    for stem in stems:
        n = len(stem)
        for i in range(len(words) - n + 1):
            if all(words[i + j].startswith(stem[j]) for j in range(n)):
                count += 1
                break
    return count


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
