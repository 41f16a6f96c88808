"""The embedded classifier: in-process, offline, a few milliseconds per message.

Features are TF-IDF over lemma word 1-2-grams and character 2-5-grams (``char_wb``) of the
lemmatised text (see :mod:`dialogue.classifiers.text`). Two multinomial logistic
regressions share them: a *sector head* trained on every labelled text (a region's CSV may
give only sectors) and a *category head* trained on texts labelled with a category. A
category's confidence is ``P(sector) * P(category | sector)``, the second factor being the
category head renormalised inside the sector, so the confidences of a sector's categories
sum to the sector's probability and all of them to at most 1.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dialogue.classifiers.text import prepare
from dialogue.nlu import Suggestion

#: Word and character TF-IDF settings; changing them changes the saved model format.
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 5)


def build_features() -> Any:
    """A fresh, unfitted ``FeatureUnion`` of word and character TF-IDF (input: prepared text)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion([
        ("words", TfidfVectorizer(analyzer="word", ngram_range=WORD_NGRAMS, sublinear_tf=True,
                                  token_pattern=r"(?u)\b\w+\b", min_df=1)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS,
                                  sublinear_tf=True, min_df=1, max_features=200_000)),
    ])


@dataclass(frozen=True, slots=True)
class Model:
    """A fitted model: the shared features and the two heads.

    ``sector_head.classes_`` are sector slugs; ``category_head.classes_`` are
    ``"<sector>.<category>"`` intents.
    """

    features: Any
    sector_head: Any
    category_head: Any

    def predict(self, texts: Sequence[str]) -> list[list[tuple[str, str, float]]]:
        """For each text, every category as ``(sector, category, probability)``, best first."""
        x = self.features.transform([prepare(t) for t in texts])
        p_sector = self.sector_head.predict_proba(x)
        p_category = self.category_head.predict_proba(x)
        sectors = [str(s) for s in self.sector_head.classes_]
        intents = [str(c).split(".", 1) for c in self.category_head.classes_]
        column = {s: i for i, s in enumerate(sectors)}
        owner = np.array([column.get(s, -1) for s, _ in intents])
        known = owner >= 0
        results = []
        for ps, pc in zip(p_sector, p_category, strict=True):
            # renormalise the category head inside each sector, then scale by P(sector)
            mass = np.zeros(len(sectors))
            np.add.at(mass, owner[known], pc[known])
            within = np.where(known, pc / np.where(mass[owner] > 0, mass[owner], 1.0), 0.0)
            joint = np.where(known, within * ps[owner], 0.0)
            order = np.argsort(-joint, kind="stable")
            results.append([(intents[i][0], intents[i][1], float(joint[i])) for i in order])
        return results

    def sector_probabilities(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """For each text, ``{sector: probability}`` from the sector head."""
        x = self.features.transform([prepare(t) for t in texts])
        sectors = [str(s) for s in self.sector_head.classes_]
        return [dict(zip(sectors, map(float, row), strict=True))
                for row in self.sector_head.predict_proba(x)]


class EmbeddedClassifier:
    """The default :class:`dialogue.nlu.Classifier`: ranked categories with probabilities.

    :param model: a fitted :class:`Model` (see :mod:`dialogue.classifiers.training`).
    :param limit: how many suggestions to return.

    Classification runs inline rather than in a thread: it takes about a millisecond
    (``bench/nlu.py`` measures it), less than a hop to the default executor would cost.
    """

    def __init__(self, model: Model, *, limit: int = 5) -> None:
        self.model = model
        self._limit = limit

    async def classify(self, text: str) -> list[Suggestion]:
        """Up to ``limit`` suggestions, best first; ``[]`` when the text has no words."""
        return self.classify_sync(text)

    def classify_sync(self, text: str) -> list[Suggestion]:
        """The same as :meth:`classify`, for scripts and benchmarks."""
        if not prepare(text):
            return []
        ranked = self.model.predict([text])[0][: self._limit]
        return [Suggestion(s, c, _floor(p)) for s, c, p in ranked]

    def sectors(self, texts: Sequence[str]) -> list[str]:
        """The most probable sector of each text (for evaluation)."""
        return [max(row, key=row.__getitem__) for row in self.model.sector_probabilities(texts)]

    def timed(self, text: str) -> tuple[list[Suggestion], float]:
        """Suggestions and the seconds they took."""
        start = time.perf_counter()
        result = self.classify_sync(text)
        return result, time.perf_counter() - start


def _floor(p: float) -> float:
    # rounded down so that the confidences never sum to more than 1
    return float(np.floor(p * 10_000) / 10_000)
