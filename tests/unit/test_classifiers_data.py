"""The shipped NLU training data: parses as Rasa 3 NLU YAML and covers the catalogue."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from dialogue.classifiers.text import HEAD_LEMMAS, normalize, prepare
from dialogue.classifiers.training import SHIPPED_DATA, load_csv, load_nlu_yaml
from domain.catalogue import load_catalogue


def test_nlu_yml_is_rasa_3_nlu_format() -> None:
    data = yaml.safe_load(SHIPPED_DATA.read_text(encoding="utf-8"))
    assert data["version"] == "3.1"
    intents = [block for block in data["nlu"] if "intent" in block]
    assert intents
    for block in intents:
        lines = [line for line in block["examples"].splitlines() if line.strip()]
        assert all(line.startswith("- ") for line in lines), block["intent"]


def test_every_catalogue_category_has_at_least_8_examples_and_no_unknown_intents() -> None:
    catalogue = load_catalogue()
    expected = {f"{s.slug}.{c.slug}" for s in catalogue.sectors for c in s.categories}
    counts = Counter(f"{sector}.{category}" for _, sector, category in load_nlu_yaml())
    assert set(counts) == expected
    thin = {intent: n for intent, n in counts.items() if n < 8}
    assert not thin


def test_examples_are_not_duplicated_across_intents() -> None:
    labels: dict[str, set[str]] = {}
    for text, sector, category in load_nlu_yaml():
        labels.setdefault(normalize(text), set()).add(f"{sector}.{category}")
    assert not {text: intents for text, intents in labels.items() if len(intents) > 1}


def test_intent_without_a_sector_is_rejected(tmp_path) -> None:
    bad = tmp_path / "nlu.yml"
    bad.write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n',
                   encoding="utf-8")
    with pytest.raises(ValueError, match="greet"):
        load_nlu_yaml(bad)


def test_csv_with_optional_category(tmp_path) -> None:
    path = tmp_path / "region.csv"
    path.write_text("text,sector,category\nнет воды,housing,no_water\nяма,roads,\n , roads,\n",
                    encoding="utf-8")
    assert load_csv(path) == [("нет воды", "housing", "no_water"), ("яма", "roads", None)]


def test_csv_without_sector_column_is_rejected(tmp_path) -> None:
    path = tmp_path / "region.csv"
    path.write_text("text,label\nнет воды,housing\n", encoding="utf-8")
    with pytest.raises(ValueError, match="sector"):
        load_csv(path)


def test_normalisation_drops_links_digits_and_folds_yo() -> None:
    assert normalize("ЁЛКИ! https://vk.com/x ул.Ленина 12, кв 5") == "елки ул ленина кв"
    assert prepare("Трубы прорвало, воды нет") == "труба прорвать вода нет"
    assert prepare("🙂🙂") == ""


def test_a_long_text_repeats_its_first_lemmas_at_the_end() -> None:
    words = [f"слово{chr(ord('а') + i)}" for i in range(HEAD_LEMMAS + 5)]
    prepared = prepare(" ".join(words)).split()
    assert len(prepared) == len(words) + HEAD_LEMMAS
    assert prepared[len(words):] == prepared[:HEAD_LEMMAS]
    short = " ".join(words[:HEAD_LEMMAS])
    assert len(prepare(short).split()) == HEAD_LEMMAS


def test_municipality_lookup_covers_every_municipality() -> None:
    path = SHIPPED_DATA.parent / "lookup_municipalities.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    (table,) = [block for block in data["nlu"] if block.get("lookup") == "municipality"]
    names = [line.removeprefix("- ") for line in table["examples"].splitlines() if line]
    catalogue = load_catalogue()
    found = [catalogue.find_municipality(name) for name in names]
    assert None not in found
    assert {m.slug for m in found if m} == {m.slug for m in catalogue.municipalities}
    for municipality in catalogue.municipalities:
        assert municipality.names["ru"] in names
