"""The embedded classifier: in-process, offline, a few milliseconds per message.

Features are TF-IDF over lemma word 1-2-grams and character 3-6-grams (``char_wb``, the
blocks weighted :data:`BLOCK_WEIGHTS`) of the lemmatised text (see
:mod:`dialogue.classifiers.text`). Two multinomial logistic
regressions share them: a *sector head* trained on every labelled text (a region's CSV may
give only sectors) and a *category head* trained on texts labelled with a category. A
category's confidence is ``P(sector) * P(category | sector)``, the second factor being the
category head renormalised inside the sector, so the confidences of a sector's categories
sum to the sector's probability and all of them to at most 1.

When every training example carries a category (the shipped model), ``P(sector)`` blends
the sector head with the category head summed per sector (``Model.blend``): two views of
the same few examples, which generalise better to real appeals than either alone. A model
trained on a region's sector-only CSV uses the sector head alone (``blend = 0``), since
its category head has not seen the region's texts; such a model adds instead a vote of the
region's nearest training texts (``Model.neighbours``, see
:mod:`dialogue.classifiers.neighbours`).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dialogue.classifiers.neighbours import Neighbours
from dialogue.classifiers.text import normalize, prepare
from dialogue.nlu import Suggestion

#: Word and character TF-IDF settings; changing them changes the saved model format.
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (3, 6)
#: Vocabulary caps: they bound the size of the heads' weight matrices (and of a saved model)
#: when a region trains on thousands of long appeals.
MAX_WORDS = 50_000
MAX_CHARS = 100_000
#: Weights of the word and character blocks (each L2-normalised on its own). Character
#: n-grams catch typos and unseen word forms, but weighted equally they outvote the lemmas
#: that name the topic. Together with text.HEAD_LEMMAS: shipped model +0.004 macro-F1 on real
#: appeals, 5-fold retraining +0.002 averaged over three fold seeds (bench/nlu.py; within
#: the noise of one seed, ±0.003); 0.4 was worse than 0.6 (-0.009).
BLOCK_WEIGHTS = {"words": 1.0, "chars": 0.6}
#: How many distinct lemmas keep their character n-grams in the fast path's cache.
_GRAM_CACHE = 200_000


def build_features() -> Any:
    """A fresh, unfitted ``FeatureUnion`` of word and character TF-IDF (input: prepared text)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion([
        ("words", TfidfVectorizer(analyzer="word", ngram_range=WORD_NGRAMS, sublinear_tf=True,
                                  token_pattern=r"(?u)\b\w+\b", max_features=MAX_WORDS)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS,
                                  sublinear_tf=True, max_features=MAX_CHARS)),
    ], transformer_weights=dict(BLOCK_WEIGHTS))


@dataclass(frozen=True, slots=True)
class Model:
    """A fitted model: the shared features and the two heads.

    ``sector_head.classes_`` are sector slugs; ``category_head.classes_`` are
    ``"<sector>.<category>"`` intents. ``neighbours``, when set, mixes a vote of the nearest
    training texts into ``P(sector)``.
    """

    features: Any
    sector_head: Any
    category_head: Any
    blend: float = 0.0
    neighbours: Neighbours | None = None

    def _neighbours(self) -> Neighbours | None:
        # a model saved before the vote existed unpickles without the slot
        return getattr(self, "neighbours", None)

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
        neighbours = self._neighbours()
        near = neighbours.similarities(x) if neighbours else None
        results = []
        for i, (ps, pc) in enumerate(zip(p_sector, p_category, strict=True)):
            ps = _blend(ps, pc, owner, known, self.blend)
            if neighbours is not None and near is not None:
                ps = neighbours.mix(ps, near[i])
            # renormalise the category head inside each sector, then scale by P(sector)
            mass = np.zeros(len(sectors))
            np.add.at(mass, owner[known], pc[known])
            within = np.where(known, pc / np.where(mass[owner] > 0, mass[owner], 1.0), 0.0)
            joint = np.where(known, within * ps[owner], 0.0)
            order = np.argsort(-joint, kind="stable")
            results.append([(intents[i][0], intents[i][1], float(joint[i])) for i in order])
        return results

    def predict_one(self, text: str) -> list[tuple[str, str, float]]:
        """:meth:`predict` for one text, without scikit-learn's per-call overhead."""
        return _fast(self).rank(prepare(text))

    def sector_probabilities(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """For each text, ``{sector: probability}`` (the sector head, blended with the
        category head summed per sector when ``blend`` > 0, mixed with the neighbours' vote
        when the model has one)."""
        x = self.features.transform([prepare(t) for t in texts])
        sectors = [str(s) for s in self.sector_head.classes_]
        column = {s: i for i, s in enumerate(sectors)}
        owner = np.array([column.get(str(c).split(".", 1)[0], -1)
                          for c in self.category_head.classes_])
        p_category = self.category_head.predict_proba(x) if self.blend else None
        neighbours = self._neighbours()
        near = neighbours.similarities(x) if neighbours else None
        rows = []
        for i, ps in enumerate(self.sector_head.predict_proba(x)):
            if p_category is not None:
                ps = _blend(ps, p_category[i], owner, owner >= 0, self.blend)
            if neighbours is not None and near is not None:
                ps = neighbours.mix(ps, near[i])
            rows.append(dict(zip(sectors, map(float, ps), strict=True)))
        return rows


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
        if not normalize(text):
            return []
        ranked = self.model.predict_one(text)[: self._limit]
        return [Suggestion(s, c, _floor(p)) for s, c, p in ranked]

    def sectors(self, texts: Sequence[str]) -> list[str]:
        """The most probable sector of each text (for evaluation)."""
        return [max(row, key=row.__getitem__) for row in self.model.sector_probabilities(texts)]

    def timed(self, text: str) -> tuple[list[Suggestion], float]:
        """Suggestions and the seconds they took."""
        start = time.perf_counter()
        result = self.classify_sync(text)
        return result, time.perf_counter() - start


class _Fast:
    """The fitted model's arithmetic in plain numpy: the same numbers as :meth:`Model.predict`
    (a test checks it) in a tenth of the time for a single text.

    ``char_wb`` n-grams never cross a space, so the character features of a text are the
    concatenation of those of its words: they are computed once per distinct lemma and kept
    (as vocabulary indices) in a bounded cache, which makes a long appeal cost little more
    than a dictionary look-up per word.
    """

    def __init__(self, model: Model) -> None:
        (_, words), (_, chars) = model.features.transformer_list
        self.words_vocabulary: dict[str, int] = words.vocabulary_
        self.words_idf = np.asarray(words.idf_)
        self.token = re.compile(words.token_pattern)
        self.bigrams = WORD_NGRAMS == (1, 2) and tuple(words.ngram_range) == (1, 2)
        self.words_analyzer = words.build_analyzer()
        self.chars_analyzer = chars.build_analyzer()
        self.chars_vocabulary: dict[str, int] = chars.vocabulary_
        self.chars_idf = np.asarray(chars.idf_)
        weights = model.features.transformer_weights or {}
        self.words_weight = float(weights.get("words", 1.0))
        self.chars_weight = float(weights.get("chars", 1.0))
        self.chars_offset = len(self.words_vocabulary)
        self.grams: dict[str, tuple[int, ...]] = {}
        self.sector = _Head(model.sector_head)
        self.category = _Head(model.category_head)
        self.sectors = [str(s) for s in model.sector_head.classes_]
        column = {s: i for i, s in enumerate(self.sectors)}
        self.intents = [str(c).split(".", 1) for c in model.category_head.classes_]
        self.owner = np.array([column.get(s, -1) for s, _ in self.intents])
        self.known = self.owner >= 0
        self.blend = model.blend
        self.neighbours = model._neighbours()

    def _word_indices(self, prepared: str) -> list[int]:
        vocabulary = self.words_vocabulary
        if not self.bigrams:
            return [vocabulary[t] for t in self.words_analyzer(prepared) if t in vocabulary]
        tokens = self.token.findall(prepared)
        found = [vocabulary[t] for t in tokens if t in vocabulary]
        pairs = (f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False))
        found += [vocabulary[p] for p in pairs if p in vocabulary]
        return found

    def _char_indices(self, prepared: str) -> list[int]:
        found: list[int] = []
        grams, vocabulary = self.grams, self.chars_vocabulary
        for word in prepared.split():
            indices = grams.get(word)
            if indices is None:
                indices = tuple(vocabulary[g] for g in self.chars_analyzer(word)
                                if g in vocabulary)
                if len(grams) < _GRAM_CACHE:
                    grams[word] = indices
            found += indices
        return found

    @staticmethod
    def _tfidf(indices: list[int], idf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not indices:
            return np.empty(0, dtype=np.intp), np.empty(0)
        unique, counts = np.unique(np.array(indices, dtype=np.intp), return_counts=True)
        values = (1.0 + np.log(counts)) * idf[unique]
        return unique, values / (np.sqrt(values @ values) or 1.0)

    def rank(self, prepared: str) -> list[tuple[str, str, float]]:
        wi, wv = self._tfidf(self._word_indices(prepared), self.words_idf)
        ci, cv = self._tfidf(self._char_indices(prepared), self.chars_idf)
        idx = np.concatenate([wi, ci + self.chars_offset])
        val = np.concatenate([wv * self.words_weight, cv * self.chars_weight])
        ps, pc = self.sector.proba(idx, val), self.category.proba(idx, val)
        known = self.known
        ps = _blend(ps, pc, self.owner, known, self.blend)
        if self.neighbours is not None:
            ps = self.neighbours.mix(ps, self.neighbours.similarities_one(wi, wv, ci, cv))
        mass = np.zeros(len(self.sectors))
        np.add.at(mass, self.owner[known], pc[known])
        within = np.where(known, pc / np.where(mass[self.owner] > 0, mass[self.owner], 1.0), 0.0)
        joint = np.where(known, within * ps[self.owner], 0.0)
        order = np.argsort(-joint, kind="stable")
        return [(self.intents[i][0], self.intents[i][1], float(joint[i])) for i in order]


class _Head:
    """A fitted logistic regression's ``predict_proba`` for one sparse row."""

    def __init__(self, head: Any) -> None:
        self.coef = head.coef_
        self.intercept = head.intercept_

    def proba(self, idx: np.ndarray, val: np.ndarray) -> np.ndarray:
        scores = self.coef[:, idx] @ val + self.intercept
        if len(scores) == 1:  # two classes: scikit-learn keeps one row of weights
            p = 1.0 / (1.0 + math.exp(-float(scores[0])))
            return np.array([1.0 - p, p])
        scores = np.exp(scores - scores.max())
        return np.asarray(scores / scores.sum())


_FAST: dict[int, _Fast] = {}


def _fast(model: Model) -> _Fast:
    # keyed by id: Model is frozen and slotted, so it cannot carry the cache itself
    fast = _FAST.get(id(model))
    if fast is None or fast.sector.coef is not model.sector_head.coef_:
        fast = _FAST[id(model)] = _Fast(model)
    return fast


def _blend(ps: np.ndarray, pc: np.ndarray, owner: np.ndarray, known: np.ndarray,
           weight: float) -> np.ndarray:
    """``(1 - weight) * P(sector) + weight * sum of P(category) over the sector``."""
    if not weight:
        return ps
    summed = np.zeros(len(ps))
    np.add.at(summed, owner[known], pc[known])
    total = summed.sum()
    return np.asarray((1.0 - weight) * ps + weight * (summed / total if total else ps))


def _floor(p: float) -> float:
    # rounded down so that the confidences never sum to more than 1
    return float(np.floor(p * 10_000) / 10_000)
