"""Evaluation of sector classification: per-sector precision, recall, F1 and support, a
confusion matrix, macro F1 and accuracy, and a plain-text report.

The report's last line is always ``macro_f1=<0.xxx> accuracy=<0.xxx> n=<rows>`` so scripts
can read it. Macro F1 averages over the sectors that occur in the data or in the
predictions (as scikit-learn does), so a sector absent from both does not count as 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from domain.catalogue import SECTOR_SLUGS


@dataclass(frozen=True, slots=True)
class LabelScore:
    """Precision, recall, F1 and support (true rows) of one label."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class Metrics:
    """Scores of predictions against true labels. ``confusion[i][j]`` counts rows of
    ``labels[i]`` predicted as ``labels[j]``."""

    labels: tuple[str, ...]
    scores: tuple[LabelScore, ...]
    confusion: tuple[tuple[int, ...], ...]
    macro_f1: float
    accuracy: float
    n: int


def compute(y_true: Sequence[str], y_pred: Sequence[str],
            labels: Sequence[str] = SECTOR_SLUGS) -> Metrics:
    """Metrics of ``y_pred`` against ``y_true``; labels outside ``labels`` are appended."""
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    order = list(dict.fromkeys([*labels, *sorted(set(y_true) | set(y_pred))]))
    index = {label: i for i, label in enumerate(order)}
    confusion = [[0] * len(order) for _ in order]
    for t, p in zip(y_true, y_pred, strict=True):
        confusion[index[t]][index[p]] += 1
    scores, f1s = [], []
    for i, label in enumerate(order):
        tp = confusion[i][i]
        support = sum(confusion[i])
        predicted = sum(row[i] for row in confusion)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append(LabelScore(label, precision, recall, f1, support))
        if support or predicted:
            f1s.append(f1)
    n = len(y_true)
    correct = sum(confusion[i][i] for i in range(len(order)))
    return Metrics(tuple(order), tuple(scores), tuple(tuple(r) for r in confusion),
                   sum(f1s) / len(f1s) if f1s else 0.0, correct / n if n else 0.0, n)


def summary(metrics: Metrics) -> str:
    """The machine-readable last line of a report."""
    return f"macro_f1={metrics.macro_f1:.3f} accuracy={metrics.accuracy:.3f} n={metrics.n}"


def format_report(metrics: Metrics) -> str:
    """Per-label scores, the confusion matrix (rows: true, columns: predicted) and the
    summary line, last."""
    width = max(9, *(len(label) for label in metrics.labels))
    lines = [f"{'sector':<{width}} precision recall    f1 support"]
    for s in metrics.scores:
        lines.append(f"{s.label:<{width}} {s.precision:9.3f} {s.recall:6.3f} {s.f1:5.3f} "
                     f"{s.support:7d}")
    short = [label[:5] for label in metrics.labels]
    lines += ["", "confusion (rows: true, columns: predicted)",
              " " * width + "".join(f"{h:>6}" for h in short)]
    for label, row in zip(metrics.labels, metrics.confusion, strict=True):
        lines.append(f"{label:<{width}}" + "".join(f"{v:6d}" for v in row))
    lines += ["", summary(metrics)]
    return "\n".join(lines)


def evaluate(model_dir: Path | None, data_csv: Path) -> str:
    """Report of a saved model (or of one trained on the shipped examples when ``model_dir``
    is ``None``) on a CSV with columns ``text,sector``."""
    from dialogue.classifiers.training import load, load_csv

    rows = load_csv(data_csv)
    classifier = load(model_dir)
    predicted = classifier.sectors([text for text, _, _ in rows])
    return format_report(compute([sector for _, sector, _ in rows], predicted))
