"""The embedded classifier trained on the shipped examples: accuracy on phrases it has never
seen, calibrated and ranked confidences, garbage input, save/load and the fast path."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest

from dialogue.classifiers.embedded import EmbeddedClassifier, Model
from dialogue.classifiers.training import fit, load, load_nlu_yaml, read_meta, train
from dialogue.nlu import Suggestion
from domain.catalogue import load_catalogue

THRESHOLD = 0.6  # the dialogue's default confidence threshold (config/settings.py)
INTENTS = sum(len(s.categories) for s in load_catalogue().sectors)

# Written for this test only; none of them is in nlu.yml.
HELD_OUT = [
    ("в доме на ул. гагарина в хасавюрте пятый день нету воды совсем", "housing"),
    ("батареи холодные как лед в квартире дети мерзнут", "housing"),
    ("лифт опять встал в нашем доме по ярагского", "housing"),
    ("после дождя с потолка течет на последнем этаже крыша худая", "housing"),
    ("баки у дома забиты мусор никто не вывозит неделю избербаш", "waste"),
    ("у речки кто то устроил свалку мусора", "waste"),
    ("с вечера пропал свет на всей улице в буйнакске", "energy"),
    ("пахнет газом возле трубы во дворе", "energy"),
    ("ребенка не берут в садик очередь стоит на месте", "education"),
    ("в школе дети голодные столовая не работает", "education"),
    ("талон к врачу получить невозможно в поликлинике", "health"),
    ("ждали скорую помощь три часа бабушке плохо", "health"),
    ("льготный инсулин в аптеке не выдают третий месяц", "health"),
    ("на трассе кизляр ямы огромные подвеску разбил", "roads"),
    ("светофор на перекрестке у рынка не работает", "roads"),
    ("маршрутки по вечерам не ходят уехать с работы невозможно", "transport"),
    ("водитель автобуса грубо разговаривает с пассажирами", "transport"),
    ("пособие на ребенка перестали платить", "social"),
    ("пенсию маме не пересчитали хотя стаж большой", "social"),
    ("собаки бродячие стаей ходят по поселку", "other"),
    ("мобильный интернет не работает в нашем селе", "other"),
    ("сосед самовольно забрал часть моего земельного участка", "other"),
]


@pytest.fixture(scope="module")
def classifier() -> EmbeddedClassifier:
    return load(None)


def test_held_out_phrases_get_the_right_sector(classifier: EmbeddedClassifier) -> None:
    texts = [text for text, _ in HELD_OUT]
    top = [classifier.classify_sync(text)[0].sector for text in texts]
    right = sum(p == t for p, (_, t) in zip(top, HELD_OUT, strict=True))
    assert right / len(HELD_OUT) >= 0.85, list(zip(texts, top, strict=True))
    # the sector head used by evaluation agrees just as well
    heads = classifier.sectors(texts)
    assert sum(p == t for p, (_, t) in zip(heads, HELD_OUT, strict=True)) / len(HELD_OUT) >= 0.85


def test_clear_complaints_pass_the_threshold_with_the_right_category(
        classifier: EmbeddedClassifier) -> None:
    for text, category in [("в каспийске третий день нет воды", "no_water"),
                           ("мусор не вывозят вторую неделю", "container_overflow"),
                           ("света нет с утра на всей улице", "power_outage")]:
        best = classifier.classify_sync(text)[0]
        assert best.category == category
        assert best.confidence >= THRESHOLD, (text, best)


def test_confidences_are_ranked_and_sum_to_at_most_one(classifier: EmbeddedClassifier) -> None:
    for text, _ in HELD_OUT:
        result = classifier.classify_sync(text)
        assert 1 <= len(result) <= 5
        confidences = [s.confidence for s in result]
        assert confidences == sorted(confidences, reverse=True)
        assert all(0.0 <= c <= 1.0 for c in confidences)
        assert sum(confidences) <= 1.0
        assert len({(s.sector, s.category) for s in result}) == len(result)


def test_all_categories_of_a_text_sum_to_one(classifier: EmbeddedClassifier) -> None:
    everything = classifier.model.predict(["крыша течет"])[0]
    assert len(everything) == INTENTS
    assert sum(p for _, _, p in everything) == pytest.approx(1.0)


@pytest.mark.parametrize("text", ["", "   ", "🙂🙂", "asdkjh", "12345", "ааааааа", "?!"])
def test_garbage_gets_low_confidence_not_an_error(classifier: EmbeddedClassifier,
                                                  text: str) -> None:
    result = asyncio.run(classifier.classify(text))
    assert all(isinstance(s, Suggestion) for s in result)
    assert not result or result[0].confidence < THRESHOLD


def test_fast_path_matches_scikit_learn(classifier: EmbeddedClassifier) -> None:
    for text, _ in HELD_OUT[:8]:
        slow = classifier.model.predict([text])[0]
        fast = classifier.model.predict_one(text)
        assert [(s, c) for s, c, _ in slow[:5]] == [(s, c) for s, c, _ in fast[:5]]
        assert np.allclose([p for *_, p in slow], [p for *_, p in fast])


def test_save_and_load_give_identical_predictions(classifier: EmbeddedClassifier,
                                                  tmp_path) -> None:
    out = train(None, tmp_path / "model")
    meta = read_meta(out)
    assert len(meta["intents"]) == INTENTS and meta["examples"] == len(load_nlu_yaml())
    reloaded = load(out)
    for text, _ in HELD_OUT:
        assert reloaded.classify_sync(text) == classifier.classify_sync(text)


def test_extra_examples_teach_a_new_phrase(tmp_path) -> None:
    phrase = "квакозябра сломалась опять"
    extra = [(phrase, "roads", "traffic_lights"), ("квакозябра не горит", "roads",
                                                   "traffic_lights")]
    assert load(train(None, tmp_path / "m", extra)).classify_sync(phrase)[0].category == \
        "traffic_lights"


@pytest.fixture(scope="module")
def region_model(tmp_path_factory) -> Model:
    """Trained (and saved and loaded) with a region's CSV of sectors only."""
    tmp_path = tmp_path_factory.mktemp("region")
    csv = tmp_path / "region.csv"
    csv.write_text("text,sector\n" + "".join(f"шлагбаум номер {i} сломан,other\n"
                                             for i in range(20)), encoding="utf-8")
    return load(train(csv, tmp_path / "m")).model


def test_region_csv_with_sectors_only_trains_the_sector_head(region_model: Model) -> None:
    model = region_model
    assert model.sector_probabilities(["шлагбаум сломан"])[0]["other"] > 0.5
    # categories still come from the shipped examples only
    assert len(model.category_head.classes_) == INTENTS
    # its category head never saw the region's texts, so P(sector) is the sector head alone
    assert model.blend == 0.0


def test_region_model_mixes_in_the_vote_of_its_nearest_training_texts(
        region_model: Model) -> None:
    near = region_model.neighbours
    assert near is not None and near.rows.shape[0] == len(load_nlu_yaml()) + 20
    text = "шлагбаум номер 3 сломан"  # a region row: its nearest rows are the region's
    heads_only = dataclasses.replace(region_model, neighbours=None)
    p_heads = heads_only.sector_probabilities([text])[0]
    p_mixed = region_model.sector_probabilities([text])[0]
    assert sum(p_mixed.values()) == pytest.approx(1.0)
    assert p_mixed["other"] > p_heads["other"]
    assert p_mixed["other"] == pytest.approx((1 - near.weight) * p_heads["other"]
                                             + near.weight, abs=0.02)
    # the fast path mixes the same vote in
    for probe in (text, "во дворе шлагбаум не открывается", "нет воды третий день"):
        slow, fast = region_model.predict([probe])[0], region_model.predict_one(probe)
        assert [(s, c) for s, c, _ in slow[:5]] == [(s, c) for s, c, _ in fast[:5]]
        assert np.allclose([p for *_, p in slow], [p for *_, p in fast])


def test_only_the_latest_training_rows_vote() -> None:
    shipped = load_nlu_yaml()
    region = [(f"шлагбаум номер {i} сломан", "other", None) for i in range(5)]
    model = fit([*shipped, *region], neighbours=True, neighbours_max=5)
    near = model.neighbours
    assert near is not None and near.rows.shape[0] == 5
    assert set(near.labels) == {list(model.sector_head.classes_).index("other")}


def test_a_text_like_no_training_text_keeps_the_heads_probabilities(
        region_model: Model) -> None:
    near = region_model.neighbours
    assert near is not None
    ps = np.full(near.sectors, 1 / near.sectors)
    assert near.vote(np.zeros(near.rows.shape[0])) is None
    assert near.mix(ps, np.zeros(near.rows.shape[0])) is ps


def test_shipped_model_blends_both_heads(classifier: EmbeddedClassifier) -> None:
    assert 0.0 < classifier.model.blend < 1.0
    assert classifier.model.neighbours is None  # the vote lowered the shipped model's F1
    for row in classifier.model.sector_probabilities([t for t, _ in HELD_OUT[:5]]):
        assert sum(row.values()) == pytest.approx(1.0)


def test_fit_needs_labelled_examples() -> None:
    with pytest.raises(ValueError):
        fit([("нет воды", "housing", "no_water")])


def test_the_shipped_model_is_trained_once_and_then_loaded(tmp_path, monkeypatch):
    from dialogue.classifiers import training

    first = training.load_shipped(tmp_path)
    [cached] = list(tmp_path.iterdir())
    assert (cached / training.MODEL_FILE).is_file()

    def no_training(*args, **kwargs):
        raise AssertionError("the cached model should have been loaded")

    monkeypatch.setattr(training, "fit", no_training)
    again = training.load_shipped(tmp_path)
    text = "третий день нет воды в доме на Ленина"
    assert again.classify_sync(text) == first.classify_sync(text)
