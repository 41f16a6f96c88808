"""The provisional keyword classifier."""

from __future__ import annotations

import pytest

from dialogue.nlu import KeywordClassifier, Suggestion
from domain.catalogue import Agency, Catalogue, Category, Sector
from tests.fakes.dialogue import catalogue


def tiny_catalogue() -> Catalogue:
    def cat(sector: str, slug: str, *keywords: str) -> Category:
        return Category(slug, sector, {"ru": slug, "en": slug}, 8, 10, keywords, False)

    housing = (cat("housing", "water", "вод", "кран"), cat("housing", "lift", "лифт"),
               cat("housing", "heat", "отоплен", "батаре", "мерзн"))
    waste = (cat("waste", "bins", "контейнер"), cat("waste", "dump", "свалк"),
             cat("waste", "smell", "запах"))
    sectors = [Sector("housing", {"ru": "ЖКХ", "en": "Housing"}, "a",
                      housing, ("жкх", "подъезд", "вод", "кран", "лифт")),
               Sector("waste", {"ru": "Мусор", "en": "Waste"}, "a", waste,
                      ("мусор", "контейнер", "свалк", "запах"))]
    return Catalogue(sectors, {"a": Agency("a", "A", "A", "regional")}, [], "v1")


@pytest.fixture
def real() -> KeywordClassifier:
    return KeywordClassifier(catalogue())


@pytest.mark.parametrize(("text", "sector", "category"), [
    ("НЕТ ВОДЫ в доме третий день", "housing", "no_water"),
    ("Отопления нет, батареи холодные, в квартире мёрзнем", "housing", "heating"),
    ("Мусор не вывозят, контейнеры переполнены", "waste", "container_overflow"),
    ("Ямы на дороге, разбитый асфальт", "roads", "potholes"),
    ("Свет отключили, нет электричества", "energy", "power_outage"),
])
async def test_clear_texts_are_classified_confidently(real, text, sector, category):
    best = (await real.classify(text))[0]
    assert (best.sector, best.category) == (sector, category)
    assert best.confidence >= 0.6


@pytest.mark.parametrize("text", ["", "   ", "Привет, как дела?", "12345", "🙂🙂"])
async def test_nothing_matches_gives_an_empty_list(real, text):
    assert await real.classify(text) == []


async def test_ranked_confidences_are_probabilities(real):
    for text in ("В подъезде грязно и лифт не работает, вода течёт с крыши",
                 "Мусор и свалка возле школы, дети болеют"):
        result = await real.classify(text)
        assert result
        confidences = [s.confidence for s in result]
        assert confidences == sorted(confidences, reverse=True)
        assert all(0 < c <= 1 for c in confidences) and sum(confidences) <= 1


async def test_yo_is_folded_and_stems_match_inflections():
    classifier = KeywordClassifier(tiny_catalogue())
    result = await classifier.classify("Батарею ПОМЕНЯЛИ, а отопления нет")
    assert result[0] == Suggestion("housing", "heat", result[0].confidence)
    assert result[0].confidence > 0.9
    assert [(s.sector, s.category) for s in await classifier.classify("МЁРЗНЕМ всю зиму")] == [
        ("housing", "heat")]


async def test_sector_keyword_alone_is_not_confident():
    classifier = KeywordClassifier(tiny_catalogue())
    result = await classifier.classify("Проблема в подъезде")
    assert {s.sector for s in result} == {"housing"}
    assert len(result) == 3 and max(s.confidence for s in result) < 0.6


async def test_category_hits_outrank_sector_hits():
    classifier = KeywordClassifier(tiny_catalogue())
    result = await classifier.classify("Мусор: переполнен контейнер и пахнет")
    assert (result[0].sector, result[0].category) == ("waste", "bins")
    assert result[0].confidence > result[1].confidence


async def test_limit():
    result = await KeywordClassifier(tiny_catalogue(), limit=2).classify("жкх")
    assert len(result) == 2


async def test_fallback_classifier_answers_when_the_primary_fails() -> None:
    from dialogue.nlu import FallbackClassifier, Suggestion

    class Down:
        async def classify(self, text: str) -> list[Suggestion]:
            raise ConnectionError("rasa is down")

    class Up:
        async def classify(self, text: str) -> list[Suggestion]:
            return [Suggestion("roads", "potholes", 0.9)]

    assert await FallbackClassifier(Down(), Up()).classify("яма") == [
        Suggestion("roads", "potholes", 0.9)]
    assert await FallbackClassifier(Up(), Down()).classify("яма") == [
        Suggestion("roads", "potholes", 0.9)]
