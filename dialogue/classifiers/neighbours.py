"""A nearest-neighbour vote over a region's training texts, mixed into ``P(sector)``.

A model retrained on a region's own appeals (``tsur nlu train --data``) keeps its training
rows and, for a new text, lets the :data:`K` most similar ones (cosine over the TF-IDF word
and character blocks, weighted equally) vote for their sectors, each with its similarity.
The logistic regression draws one smooth boundary per sector; the vote follows the local
shape of a region's data (near-duplicates, a district's recurring wording), which the linear
heads average away. ``P(sector)`` becomes ``(1 - WEIGHT) * heads + WEIGHT * vote``.

Measured with 5-fold CV on 1,914 real appeals (README, "Complaint classification"): mean
sector macro-F1 over three fold seeds 0.812 → 0.821; k of 5 to 10 and weights 0.3 to 0.4 all
gave 0.820–0.822, and the blocks weighted as the heads weight them (characters 0.6) gave
0.819. The shipped model has no vote: over our own short examples it did not help on real
appeals (0.763 → 0.759 with these settings, 0.748–0.765 with k 5 or 10 and weights 0.2 or
0.35).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: How many neighbours vote, and the vote's share of P(sector).
K = 10
WEIGHT = 0.35
#: At most this many training rows vote (the latest: a region's newest appeals come last).
#: A vote reads the rows sharing the text's n-grams, so its time and the model's memory
#: grow with the rows: ~0.5 ms / 8 MB with 3,600 rows, p99 5.4 ms / ~100 MB with 31,600
#: (synthetic texts made of our own examples, 2-core machine).
MAX_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class Neighbours:
    """Training rows for the vote.

    ``rows`` is a CSC matrix (rows × features) of the training texts in the feature space of
    the model with the character block unweighted, each row L2-normalised; ``labels[i]`` is
    the sector column (in ``sector_head.classes_``) of row ``i``; ``chars_offset`` is the
    first column of the character block and ``chars_weight`` the weight the model's features
    give it (undone here; the word block's weight is 1, see ``embedded.BLOCK_WEIGHTS``).
    """

    rows: Any
    labels: np.ndarray
    sectors: int
    chars_offset: int
    chars_weight: float
    k: int = K
    weight: float = WEIGHT

    @classmethod
    def build(cls, x: Any, labels: np.ndarray, sectors: int, chars_offset: int,
              chars_weight: float) -> Neighbours:
        """From the model's (weighted) feature rows ``x`` of the training texts."""
        self = cls(None, np.asarray(labels, dtype=np.intp), sectors, chars_offset, chars_weight)
        object.__setattr__(self, "rows", self.unweighted(x).tocsc().astype(np.float32))
        return self

    def unweighted(self, x: Any) -> Any:
        """Rows of ``x`` with the character block's weight undone, L2-normalised (CSR)."""
        from scipy import sparse
        from sklearn.preprocessing import normalize

        scale = np.ones(x.shape[1])
        scale[self.chars_offset:] = 1.0 / self.chars_weight
        return normalize(sparse.csr_matrix(x) @ sparse.diags(scale), copy=False)

    def vote(self, similarities: np.ndarray) -> np.ndarray | None:
        """Sector shares of the :attr:`k` most similar rows, or ``None`` if none is similar."""
        k = min(self.k, len(similarities))
        top = np.argpartition(-similarities, k - 1)[:k]
        votes = np.zeros(self.sectors)
        np.add.at(votes, self.labels[top], similarities[top])
        total = votes.sum()
        return votes / total if total > 0 else None

    def mix(self, ps: np.ndarray, similarities: np.ndarray) -> np.ndarray:
        """``P(sector)`` of the heads mixed with the vote (unchanged when nothing is similar)."""
        votes = self.vote(similarities)
        return ps if votes is None else np.asarray((1.0 - self.weight) * ps
                                                   + self.weight * votes)

    def similarities(self, x: Any) -> np.ndarray:
        """Cosine similarities (texts × training rows) of the model's feature rows ``x``."""
        return np.asarray((self.unweighted(x) @ self.rows.T).toarray())

    def similarities_one(self, word_idx: np.ndarray, word_val: np.ndarray,
                         char_idx: np.ndarray, char_val: np.ndarray) -> np.ndarray:
        """The same for one text given as its two L2-normalised (unweighted) blocks."""
        idx = np.concatenate([word_idx, char_idx + self.chars_offset])
        val = np.concatenate([word_val, char_val])
        norm = float(np.sqrt(val @ val))
        if not norm:
            return np.zeros(self.rows.shape[0])
        return np.asarray(self.rows[:, idx] @ (val / norm))
