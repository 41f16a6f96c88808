"""Training data, training, and saved model directories of the embedded classifier.

Labelled examples are ``(text, sector, category | None)``. They come from the shipped Rasa
NLU file (``data/nlu.yml``, intents ``<sector>.<category>``), from a region's CSV of its own
appeals (columns ``text,sector`` and optionally ``category``) and from operators'
reclassifications (passed in as ``extra_examples``).

A model directory holds ``model.joblib`` (the fitted :class:`~.embedded.Model`, a pickle:
load only directories you made) and ``meta.json`` (intents, sectors, hash and size of the
training data, library versions).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dialogue.classifiers.embedded import EmbeddedClassifier, Model, build_features
from dialogue.classifiers.neighbours import MAX_ROWS as NEIGHBOURS_MAX
from dialogue.classifiers.neighbours import Neighbours
from dialogue.classifiers.text import prepare

Example = tuple[str, str, str | None]

SHIPPED_DATA = Path(__file__).resolve().parent / "data" / "nlu.yml"
MODEL_FILE = "model.joblib"
META_FILE = "meta.json"
#: Inverse regularisation of both heads, chosen with bench/nlu.py: higher makes the
#: confidences sharper, lower makes them smoother.
C_SECTOR = 20.0
C_CATEGORY = 20.0
#: Weight of the category head in P(sector) when every example has a category: 0.5 gave
#: the shipped model +0.02 macro-F1 on real appeals over either head alone.
BLEND = 0.5
#: Weight of each shipped example against a region's own (``tsur nlu train --data``). In
#: 5-fold CV on real appeals (bench/nlu.py) weights 0.25, 0.5, 1 and 2 all landed within
#: ±0.007 macro-F1 of each other, in a different order with each version of the data: no
#: measurable effect, so equal weight. Kept as a knob for a region whose data is large.
SHIPPED_WEIGHT = 1.0


def load_nlu_yaml(path: Path = SHIPPED_DATA) -> list[Example]:
    """Examples of a Rasa 3 NLU file whose intents are ``<sector>.<category>``.

    Raises ``ValueError`` on an intent without a dot or a file without an ``nlu`` list.
    """
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("nlu"), list):
        raise ValueError(f"{path}: not a Rasa NLU file (no 'nlu' list)")
    examples: list[Example] = []
    for block in data["nlu"]:
        intent = block.get("intent") if isinstance(block, dict) else None
        if intent is None:
            continue  # lookup tables, synonyms, regexes
        sector, dot, category = str(intent).partition(".")
        if not dot or not sector or not category:
            raise ValueError(f"{path}: intent {intent!r} is not '<sector>.<category>'")
        for line in str(block.get("examples") or "").splitlines():
            text = line.strip().removeprefix("- ").strip()
            if text:
                examples.append((text, sector, category))
    return examples


def load_csv(path: Path) -> list[Example]:
    """Rows of a CSV with columns ``text`` and ``sector`` (and optionally ``category``)."""
    with Path(path).open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"text", "sector"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: needs the columns 'text' and 'sector'")
        return [(row["text"], row["sector"].strip(), (row.get("category") or "").strip() or None)
                for row in reader if (row.get("text") or "").strip()]


def data_hash(examples: Sequence[Example]) -> str:
    """A SHA-256 of the examples, to tell which data a saved model was trained on."""
    digest = hashlib.sha256()
    for text, sector, category in examples:
        digest.update(f"{text}\t{sector}\t{category or ''}\n".encode())
    return digest.hexdigest()


def fit(examples: Sequence[Example], *, class_weight: str | None = "balanced",
        sample_weight: Sequence[float] | None = None, neighbours: bool = False,
        neighbours_max: int = NEIGHBOURS_MAX) -> Model:
    """Fit the features and both heads. Every example trains the sector head; those with a
    category also train the category head. Needs at least two sectors and two categories.
    ``sample_weight``, one per example, scales each example's loss. With ``neighbours`` the
    model also keeps the examples (the last ``neighbours_max`` of them) for a
    nearest-neighbour vote on the sector (:mod:`dialogue.classifiers.neighbours`)."""
    from sklearn.linear_model import LogisticRegression  # lbfgs is 5-10x slower here

    prepared = [prepare(text) for text, _, _ in examples]
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    features = build_features()
    x = features.fit_transform(prepared)
    sector_head = LogisticRegression(C=C_SECTOR, max_iter=2000, class_weight=class_weight,
                                     solver="newton-cg")
    sector_head.fit(x, [sector for _, sector, _ in examples], sample_weight=weights)
    rows = [i for i, (_, _, category) in enumerate(examples) if category]
    category_head = LogisticRegression(C=C_CATEGORY, max_iter=2000, class_weight=class_weight,
                                       solver="newton-cg")
    category_head.fit(x[rows], [f"{examples[i][1]}.{examples[i][2]}" for i in rows],
                      sample_weight=None if weights is None else weights[rows])
    # blend the heads only when the category head has seen every text (see embedded.py)
    blend = BLEND if len(rows) == len(examples) else 0.0
    near = None
    if neighbours:
        column = {str(s): i for i, s in enumerate(sector_head.classes_)}
        words = features.transformer_list[0][1]
        voters = slice(max(0, len(examples) - neighbours_max), None)  # the latest rows
        near = Neighbours.build(x[voters], np.array([column[sector] for _, sector, _
                                                     in examples[voters]]),
                                len(column), len(words.vocabulary_),
                                float((features.transformer_weights or {}).get("chars", 1.0)))
    return Model(features, sector_head, category_head, blend, near)


def fit_region(shipped: Sequence[Example], region: Sequence[Example]) -> Model:
    """:func:`fit` on the shipped examples and a region's own labelled examples (its CSV,
    operators' reclassifications), the shipped ones weighted :data:`SHIPPED_WEIGHT`; the
    model keeps all of them for the nearest-neighbour vote (measured: +0.009 macro-F1 on a
    region's unseen appeals, see :mod:`dialogue.classifiers.neighbours`)."""
    if not region:
        return fit(shipped)
    weights = [SHIPPED_WEIGHT] * len(shipped) + [1.0] * len(region)
    return fit([*shipped, *region], sample_weight=weights, neighbours=True)


def gather(data_csv: Path | None = None, extra_examples: Iterable[Example] = ()) -> list[Example]:
    """The shipped examples, then the CSV's rows, then the extra examples."""
    examples = load_nlu_yaml(SHIPPED_DATA)
    if data_csv is not None:
        examples += load_csv(data_csv)
    examples += [(t, s, c or None) for t, s, c in extra_examples]
    return examples


def save(model: Model, out_dir: Path, examples: Sequence[Example]) -> Path:
    """Write ``model.joblib`` and ``meta.json`` into ``out_dir`` (created if missing)."""
    import joblib
    import sklearn

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out_dir / MODEL_FILE, compress=3)
    meta: dict[str, Any] = {
        "format": 1,
        "sectors": [str(s) for s in model.sector_head.classes_],
        "intents": [str(c) for c in model.category_head.classes_],
        "examples": len(examples),
        "data_sha256": data_hash(examples),
        "sklearn": sklearn.__version__,
    }
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    return out_dir


def train(data_csv: Path | None, out_dir: Path,
          extra_examples: Iterable[Example] = ()) -> Path:
    """Train on the shipped examples plus an optional region CSV and extra labelled examples
    (e.g. operators' reclassifications) and save the model into ``out_dir``."""
    shipped = load_nlu_yaml(SHIPPED_DATA)
    region = gather(data_csv, extra_examples)[len(shipped):]
    return save(fit_region(shipped, region), out_dir, [*shipped, *region])


def read_meta(model_dir: Path) -> dict[str, Any]:
    """The ``meta.json`` of a saved model."""
    meta: dict[str, Any] = json.loads((Path(model_dir) / META_FILE).read_text(encoding="utf-8"))
    return meta


def load(model_dir: Path | None = None, *, limit: int = 5) -> EmbeddedClassifier:
    """A classifier from a saved model directory, or trained now on the shipped examples
    (a couple of seconds) when ``model_dir`` is ``None``."""
    if model_dir is None:
        return EmbeddedClassifier(fit(load_nlu_yaml(SHIPPED_DATA)), limit=limit)
    import joblib

    model = joblib.load(Path(model_dir) / MODEL_FILE)
    if not isinstance(model, Model):
        raise ValueError(f"{model_dir}: {MODEL_FILE} does not hold a tsur model")
    return EmbeddedClassifier(model, limit=limit)


def load_shipped(cache_dir: Path, *, limit: int = 5) -> EmbeddedClassifier:
    """The model of the shipped examples, trained once and kept in ``cache_dir`` under the
    hash of the examples and the code that fits them, so later starts only load it."""
    import sklearn

    examples = load_nlu_yaml(SHIPPED_DATA)
    here = Path(__file__).parent  # the text preparation is part of the model too
    code = hashlib.sha256(b"".join((here / name).read_bytes()
                                   for name in ("embedded.py", "neighbours.py", "text.py",
                                                "training.py")))
    code_hash = code.hexdigest()
    key = hashlib.sha256(f"{data_hash(examples)}:{code_hash}:{sklearn.__version__}".encode())
    model_dir = Path(cache_dir) / key.hexdigest()[:16]
    if not (model_dir / MODEL_FILE).is_file():
        tmp = model_dir.with_name(model_dir.name + f".tmp{os.getpid()}")
        save(fit(examples), tmp, examples)
        try:
            os.rename(tmp, model_dir)  # atomic: a reader sees no model or a whole one
        except OSError:  # another process got there first
            shutil.rmtree(tmp, ignore_errors=True)
    return load(model_dir, limit=limit)
