"""Sector evaluation: metrics by hand-checked numbers and the report's format."""

from __future__ import annotations

import re

import pytest

from dialogue.classifiers.evaluate import compute, evaluate, format_report
from dialogue.classifiers.training import train

LAST_LINE = re.compile(r"macro_f1=\d\.\d{3} accuracy=\d\.\d{3} n=\d+")


def test_metrics_of_a_small_case() -> None:
    truth = ["housing", "housing", "housing", "roads", "roads", "waste"]
    guess = ["housing", "housing", "roads", "roads", "housing", "waste"]
    m = compute(truth, guess)
    scores = {s.label: s for s in m.scores}
    assert scores["housing"].precision == pytest.approx(2 / 3)
    assert scores["housing"].recall == pytest.approx(2 / 3)
    assert scores["roads"].precision == pytest.approx(1 / 2)
    assert scores["roads"].f1 == pytest.approx(1 / 2)
    assert scores["waste"].f1 == 1.0 and scores["waste"].support == 1
    assert scores["energy"].support == 0
    # macro F1 over the sectors that occur: housing 2/3, roads 1/2, waste 1
    assert m.macro_f1 == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m.accuracy == pytest.approx(4 / 6) and m.n == 6
    i, j = m.labels.index("roads"), m.labels.index("housing")
    assert m.confusion[i][j] == 1 and m.confusion[j][i] == 1


def test_unknown_labels_are_kept_not_dropped() -> None:
    m = compute(["housing", "parking"], ["housing", "housing"])
    assert m.labels[-1] == "parking"
    assert m.accuracy == 0.5


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError):
        compute(["housing"], [])


def test_report_ends_with_the_summary_line() -> None:
    report = format_report(compute(["housing", "roads", "roads"], ["housing", "roads", "waste"]))
    lines = report.splitlines()
    assert lines[-1] == "macro_f1=0.556 accuracy=0.667 n=3"
    assert LAST_LINE.fullmatch(lines[-1])
    assert any(line.startswith("housing ") for line in lines)
    assert "confusion (rows: true, columns: predicted)" in report


def test_evaluate_a_saved_model_on_a_csv(tmp_path) -> None:
    data = tmp_path / "eval.csv"
    data.write_text("text,sector\n"
                    "нет воды в доме третий день,housing\n"
                    "мусор не вывозят неделю,waste\n"
                    "свет отключили на всей улице,energy\n"
                    "яма на дороге пробил колесо,roads\n", encoding="utf-8")
    report = evaluate(train(None, tmp_path / "model"), data)
    assert report.splitlines()[-1] == "macro_f1=1.000 accuracy=1.000 n=4"
