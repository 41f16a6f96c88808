"""Benchmark of the embedded NLU classifier on a labelled CSV of real appeals.

    python bench/nlu.py [--data ../shared/data/appeals-kursk/train.csv] [--folds 5]
                        [--seed 0] [--more-seeds 1,2] [--rasa http://127.0.0.1:5005]

Prints, side by side (macro F1 / accuracy over sectors):
  (a) the shipped model (trained only on dialogue/classifiers/data/nlu.yml) on every row;
  (b) our pipeline retrained with k-fold stratified cross-validation (shipped examples
      + the training folds: ``fit_region``, as ``tsur nlu train --data`` does), scored on
      the held-out folds;
  (c) a plain TF-IDF + logistic-regression baseline on the same folds (scikit-learn
      defaults, and (c') with balanced class weights);
plus training time, classification latency and memory. Latency is measured one text at a time
over every row, from cold caches (no lemma or n-gram seen before), both as wall-clock time and
as the CPU time of the classifying thread (which other processes on a shared machine do not
inflate), next to a baseline in the same run: the same fitted model through scikit-learn's
own ``transform`` + ``predict_proba`` (``Model.predict``) per text. The retrained model of the
first fold (with its nearest-neighbour vote) is timed the same way on that fold's held-out
rows, next to the same model without the vote.
With ``--rasa URL`` it also scores a running Rasa server (trained on the shipped nlu.yml,
see tools/rasa.sh) on the same CSV: row (a) for Rasa DIET. Cross-validated DIET is not
run here: one DIET training on a couple of thousand appeals takes hours on these machines.
The CSV is used for measurement only: nothing trained here is saved.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dialogue.classifiers.embedded import _FAST, EmbeddedClassifier  # noqa: E402
from dialogue.classifiers.evaluate import Metrics, compute, format_report  # noqa: E402
from dialogue.classifiers.text import lemma  # noqa: E402
from dialogue.classifiers.training import (  # noqa: E402
    Example,
    fit,
    fit_region,
    load_csv,
    load_nlu_yaml,
)

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "appeals-kursk" / "train.csv"


def _baseline(train_texts: list[str], train_y: list[str], test_texts: list[str],
              class_weight: str | None = None) -> list[str]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(),
                          LogisticRegression(max_iter=1000, class_weight=class_weight))
    model.fit(train_texts, train_y)
    return [str(p) for p in model.predict(test_texts)]


Retrained = tuple[EmbeddedClassifier, list[str]]


def _cross_validate(rows: list[Example], shipped: list[Example], folds: int, seed: int,
                    ) -> tuple[list[tuple[Metrics, list[float]]], list[float], Retrained]:
    """(b), (c) and (c') on stratified k folds drawn with ``seed``: each row's metrics and
    per-fold macro-F1, the seconds each fold's retraining took, and the first fold's
    retrained classifier with that fold's held-out texts."""
    from sklearn.model_selection import StratifiedKFold

    texts = [t for t, _, _ in rows]
    truth = [s for _, s, _ in rows]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    pred_b, pred_c, pred_d = [""] * len(rows), [""] * len(rows), [""] * len(rows)
    folds_b: list[float] = []
    folds_c: list[float] = []
    folds_d: list[float] = []
    fold_train: list[float] = []
    first: Retrained | None = None
    for train_idx, test_idx in splitter.split(texts, truth):
        start = time.perf_counter()
        model = EmbeddedClassifier(fit_region(shipped, [rows[i] for i in train_idx]))
        fold_train.append(time.perf_counter() - start)
        test_texts = [texts[i] for i in test_idx]
        first = first or (model, test_texts)
        b = model.sectors(test_texts)
        train_texts, train_y = [texts[i] for i in train_idx], [truth[i] for i in train_idx]
        c = _baseline(train_texts, train_y, test_texts)
        d = _baseline(train_texts, train_y, test_texts, "balanced")
        for i, pb, pc, pd in zip(test_idx, b, c, d, strict=True):
            pred_b[i], pred_c[i], pred_d[i] = pb, pc, pd
        fold_truth = [truth[i] for i in test_idx]
        folds_b.append(compute(fold_truth, b).macro_f1)
        folds_c.append(compute(fold_truth, c).macro_f1)
        folds_d.append(compute(fold_truth, d).macro_f1)
    assert first is not None
    return [(compute(truth, pred_b), folds_b), (compute(truth, pred_c), folds_c),
            (compute(truth, pred_d), folds_d)], fold_train, first


def _latency(classify: Callable[[str], object],
             texts: list[str]) -> tuple[list[float], list[float]]:
    """Milliseconds per text (wall clock, CPU time of this thread), lemma and n-gram caches
    emptied first so every run starts cold."""
    lemma.cache_clear()
    _FAST.clear()
    classify("вода")  # loads the pymorphy3 dictionaries, which happens once per process
    lemma.cache_clear()
    wall, cpu = [], []
    for text in texts:
        w, c = time.perf_counter(), time.thread_time()
        classify(text)
        cpu.append((time.thread_time() - c) * 1000)
        wall.append((time.perf_counter() - w) * 1000)
    return wall, cpu


def _pct(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, len(ordered) * q // 100)]


def _row(name: str, m: Metrics, folds: list[float] | None = None) -> str:
    spread = f"  folds {statistics.mean(folds):.3f}±{statistics.pstdev(folds):.3f}" if folds else ""
    return f"{name:<44} macro_f1={m.macro_f1:.3f} accuracy={m.accuracy:.3f} n={m.n}{spread}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="full reports")
    parser.add_argument("--rasa", metavar="URL", help="also score the Rasa server at URL")
    parser.add_argument("--more-seeds", metavar="N,M", default="",
                        help="also cross-validate on the folds of these seeds and print the "
                             "mean of (b) and (c') over all seeds (one fold seed moves "
                             "macro-F1 by about ±0.005 on 1,914 appeals)")
    args = parser.parse_args()
    rows = load_csv(args.data)
    texts = [t for t, _, _ in rows]
    truth = [s for _, s, _ in rows]
    shipped = load_nlu_yaml()

    start = time.perf_counter()
    classifier = EmbeddedClassifier(fit(shipped))
    train_seconds = time.perf_counter() - start
    latency_base = _latency(lambda text: classifier.model.predict([text]), texts)
    latency_ours = _latency(classifier.classify_sync, texts)
    predicted_a = [r[0].sector if r else "other" for r in map(classifier.classify_sync, texts)]
    sector_head = classifier.sectors(texts)
    m_a = compute(truth, sector_head)
    m_a_top = compute(truth, predicted_a)

    cv_rows, fold_train, (retrained, held_out) = _cross_validate(rows, shipped, args.folds,
                                                                 args.seed)
    (m_b, folds_b), (m_c, folds_c), (m_d, folds_d) = cv_rows
    heads_only = EmbeddedClassifier(dataclasses.replace(retrained.model, neighbours=None))
    latency_heads = _latency(heads_only.classify_sync, held_out)
    latency_vote = _latency(retrained.classify_sync, held_out)

    if args.verbose:
        for title, m in (("(a) shipped model", m_a), ("(b) our pipeline, cross-validated", m_b),
                         ("(c) TF-IDF + LR baseline, cross-validated", m_c)):
            print(f"== {title}\n{format_report(m)}\n")
    rasa_line = None
    if args.rasa:
        from dialogue.classifiers.rasa import evaluate_rasa

        start = time.perf_counter()
        report = evaluate_rasa(args.rasa, args.data)
        per_text = (time.perf_counter() - start) / len(rows) * 1000
        rasa_line = (f"{'(a) Rasa DIET (shipped nlu.yml), sector of top intent':<44} "
                     f"{report.splitlines()[-1]}  ~{per_text:.1f} ms/text over HTTP")
        if args.verbose:
            print(f"== (a) Rasa DIET\n{report}\n")
    print(f"data: {args.data} ({len(rows)} rows); shipped examples: {len(shipped)}")
    print(_row("(a) shipped model, sector head", m_a))
    print(_row("(a) shipped model, sector of top category", m_a_top))
    if rasa_line:
        print(rasa_line)
    print(_row(f"(b) our pipeline, {args.folds}-fold CV", m_b, folds_b))
    print(_row(f"(c) TF-IDF + LR baseline, {args.folds}-fold CV", m_c, folds_c))
    print(_row("(c') the same, class_weight=balanced", m_d, folds_d))
    print(f"training: shipped {train_seconds:.2f} s; shipped + {args.folds - 1}/{args.folds} "
          f"of the CSV {statistics.mean(fold_train):.2f} s per fold")
    print("classification (shipped model, one text at a time, cold caches):")
    for name, (wall, cpu) in (("ours (classify_sync)", latency_ours),
                              ("baseline: Model.predict via scikit-learn", latency_base)):
        print(f"  {name:<42} wall p50={_pct(wall, 50):.2f} ms p99={_pct(wall, 99):.2f} ms; "
              f"cpu p50={_pct(cpu, 50):.2f} ms p99={_pct(cpu, 99):.2f} ms; "
              f"{len(wall) / (sum(wall) / 1000):.0f} texts/s")
    (base_wall, base_cpu), (our_wall, our_cpu) = latency_base, latency_ours
    print(f"  ratio baseline/ours: p99 wall {_pct(base_wall, 99) / _pct(our_wall, 99):.1f}x, "
          f"p99 cpu {_pct(base_cpu, 99) / _pct(our_cpu, 99):.1f}x")
    print(f"classification (retrained model of fold 1, its {len(held_out)} held-out rows, "
          "cold caches):")
    for name, (wall, cpu) in (("with the neighbours' vote (as trained)", latency_vote),
                              ("baseline: the same heads without the vote", latency_heads)):
        print(f"  {name:<42} wall p50={_pct(wall, 50):.2f} ms p99={_pct(wall, 99):.2f} ms; "
              f"cpu p50={_pct(cpu, 50):.2f} ms p99={_pct(cpu, 99):.2f} ms")
    (vote_wall, vote_cpu), (heads_wall, heads_cpu) = latency_vote, latency_heads
    print(f"  ratio vote/heads: p99 wall {_pct(vote_wall, 99) / _pct(heads_wall, 99):.1f}x, "
          f"p99 cpu {_pct(vote_cpu, 99) / _pct(heads_cpu, 99):.1f}x")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"memory: peak RSS of this process {rss:.0f} MB")
    seeds = [int(s) for s in args.more_seeds.split(",") if s.strip()]
    if seeds:
        ours, balanced = [m_b.macro_f1], [m_d.macro_f1]
        for seed in seeds:
            (m_b, folds_b), _, (m_d, folds_d) = _cross_validate(rows, shipped, args.folds,
                                                                seed)[0]
            print(_row(f"(b) our pipeline, seed {seed}", m_b, folds_b))
            print(_row(f"(c') baseline balanced, seed {seed}", m_d, folds_d))
            ours.append(m_b.macro_f1)
            balanced.append(m_d.macro_f1)
        print(f"mean over seeds {[args.seed, *seeds]}: (b) macro_f1={statistics.mean(ours):.3f} "
              f"(c') macro_f1={statistics.mean(balanced):.3f}")


if __name__ == "__main__":
    main()
