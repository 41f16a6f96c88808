"""Trained complaint classifiers behind :class:`dialogue.nlu.Classifier`.

The entry points for the CLI (``tsur nlu train|eval|classify``): :func:`train`,
:func:`evaluate` and :func:`load`. scikit-learn and pymorphy3 are imported on first use.
"""

from dialogue.classifiers.embedded import EmbeddedClassifier
from dialogue.classifiers.evaluate import evaluate
from dialogue.classifiers.training import load, train

__all__ = ["EmbeddedClassifier", "evaluate", "load", "train"]
