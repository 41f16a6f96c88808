"""Rasa DIET measured the same ways as the embedded classifier (bench/nlu.py).

    python bench/nlu_rasa.py shipped [--data CSV] [--epochs N] [--model FILE.tar.gz]
    python bench/nlu_rasa.py cv [--data CSV] [--folds 5] [--only 0,1] [--epochs N] [--max-words N]

``shipped``: a DIET model (rasa/config.yml) trained on the shipped nlu.yml alone, scored
on every row of the CSV (``--model``: score an already trained model instead, e.g. the one
``make rasa`` keeps in var/rasa/models). ``cv``: the same stratified folds as bench/nlu.py
(same seed); for each selected fold a DIET model trained on the shipped examples plus the
fold's training rows (intent ``<sector>.region``), scored on the held-out rows, next to our
pipeline and the balanced TF-IDF + LR baseline on the very same fold. The prediction is the
sector of Rasa's top intent. Each model is served by ``tools/rasa.sh serve`` on a free
127.0.0.1 port and stopped afterwards. Everything trained here lives in a temporary
directory and is deleted: the CSV is for measurement only.

One DIET training on a couple of thousand appeals takes a long time on 2 cores, so ``cv``
can run fewer epochs (``--epochs``), cut training texts shorter (``--max-words``) and run
only some folds (``--only``); the printed lines say which.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.nlu import DEFAULT_DATA, _baseline  # noqa: E402
from dialogue.classifiers.embedded import EmbeddedClassifier  # noqa: E402
from dialogue.classifiers.evaluate import compute, format_report  # noqa: E402
from dialogue.classifiers.training import (  # noqa: E402
    SHIPPED_DATA,
    Example,
    fit_region,
    load_csv,
    load_nlu_yaml,
)

SCRIPT = ROOT / "tools" / "rasa.sh"
CONFIG = ROOT / "rasa" / "config.yml"
#: Characters that Rasa's training-data reader takes for entity annotations or YAML syntax.
_MARKUP = re.compile(r"[\[\]{}()\"\\]")


def _clean(text: str, max_words: int) -> str:
    return " ".join(_MARKUP.sub(" ", text).split()[:max_words])


def write_nlu(path: Path, region: list[Example], max_words: int) -> None:
    """The shipped nlu.yml plus one ``<sector>.region`` intent per sector of ``region``."""
    data = yaml.safe_load(SHIPPED_DATA.read_text(encoding="utf-8"))
    by_sector: dict[str, list[str]] = {}
    for text, sector, _ in region:
        cleaned = _clean(text, max_words)
        if cleaned:
            by_sector.setdefault(sector, []).append(cleaned)
    for sector, texts in sorted(by_sector.items()):
        unique = list(dict.fromkeys(texts))  # Rasa rejects duplicate examples of an intent
        data["nlu"].append({"intent": f"{sector}.region",
                            "examples": "".join(f"- {t}\n" for t in unique)})
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=10**6),
                    encoding="utf-8")


def write_config(path: Path, epochs: int | None) -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    if epochs is not None:
        for component in config["pipeline"]:
            if component["name"] == "DIETClassifier":
                component["epochs"] = epochs
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def train(work: Path, name: str, region: list[Example], epochs: int | None,
          max_words: int) -> tuple[Path, float]:
    nlu, config = work / f"{name}.nlu.yml", work / f"{name}.config.yml"
    write_nlu(nlu, region, max_words)
    write_config(config, epochs)
    start = time.perf_counter()
    subprocess.run([str(SCRIPT), "train", "--config", str(config), "--data", str(nlu),
                    "--out", str(work / "models"), "--name", name], check=True,
                   stdout=subprocess.DEVNULL)
    return work / "models" / f"{name}.tar.gz", time.perf_counter() - start


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _parse(url: str, text: str) -> str:
    body = json.dumps({"text": text}, ensure_ascii=False).encode()
    request = urllib.request.Request(f"{url}/model/parse", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    name = str((answer.get("intent") or {}).get("name") or "")
    return name.partition(".")[0] or "other"


def score(model: Path, texts: list[str]) -> tuple[list[str], list[float]]:
    """Top-intent sectors of ``texts`` from a server started on ``model``, and the seconds
    each request took."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(SCRIPT), "serve", "--model", str(model), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                with urllib.request.urlopen(f"{url}/status", timeout=5) as response:
                    if response.status == 200:
                        break
            except (OSError, urllib.error.URLError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Rasa server for {model} did not start")
            time.sleep(2)
        predicted, seconds = [], []
        for text in texts:
            start = time.perf_counter()
            predicted.append(_parse(url, " ".join(text.lstrip("/").split()[:256]) or "."))
            seconds.append(time.perf_counter() - start)
        return predicted, seconds
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _latency(seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    return f"p50={ms[len(ms) // 2]:.1f} ms p99={ms[int(len(ms) * 0.99)]:.1f} ms over HTTP"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("shipped", "cv"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated fold numbers (from 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None,
                        help="DIET epochs (default: rasa/config.yml's)")
    parser.add_argument("--max-words", type=int, default=256,
                        help="training texts cut to this many words")
    parser.add_argument("--model", type=Path, help="shipped: score this model, train none")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    rows = load_csv(args.data)
    texts, truth = [t for t, _, _ in rows], [s for _, s, _ in rows]
    epochs: int | str = args.epochs or "config"
    work = Path(tempfile.mkdtemp(prefix="tsur-rasa-bench-"))
    try:
        if args.mode == "shipped":
            if args.model:
                model, seconds, epochs = args.model.resolve(), 0.0, f"of {args.model.name}"
            else:
                model, seconds = train(work, "shipped", [], args.epochs, args.max_words)
            predicted, latency = score(model, texts)
            m = compute(truth, predicted)
            if args.verbose:
                print(format_report(m))
            what = (f"model {args.model}" if args.model
                    else f"shipped nlu.yml ({len(load_nlu_yaml())} examples)")
            print(f"Rasa DIET, {what}, epochs={epochs}: macro_f1={m.macro_f1:.3f} "
                  f"accuracy={m.accuracy:.3f} n={m.n}")
            print(f"training {seconds:.0f} s; classification {_latency(latency)}")
            return
        from sklearn.model_selection import StratifiedKFold

        shipped = load_nlu_yaml()
        splitter = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=args.seed)
        only = {int(f) for f in args.only.split(",") if f.strip()}
        scores: dict[str, list[float]] = {"rasa": [], "ours": [], "baseline": []}
        for fold, (train_idx, test_idx) in enumerate(splitter.split(texts, truth)):
            if only and fold not in only:
                continue
            region = [rows[i] for i in train_idx]
            test_texts, fold_truth = [texts[i] for i in test_idx], [truth[i] for i in test_idx]
            model, seconds = train(work, f"fold{fold}", region, args.epochs, args.max_words)
            predicted, latency = score(model, test_texts)
            ours = EmbeddedClassifier(fit_region(shipped, region)).sectors(test_texts)
            base = _baseline([t for t, _, _ in region], [s for _, s, _ in region], test_texts,
                             "balanced")
            for key, p in (("rasa", predicted), ("ours", ours), ("baseline", base)):
                scores[key].append(compute(fold_truth, p).macro_f1)
            print(f"fold {fold}/{args.folds} (n={len(test_idx)}): Rasa DIET (epochs={epochs}, "
                  f"max_words={args.max_words}) macro_f1={scores['rasa'][-1]:.3f}; "
                  f"our pipeline {scores['ours'][-1]:.3f}; TF-IDF+LR balanced "
                  f"{scores['baseline'][-1]:.3f}; DIET training {seconds:.0f} s, "
                  f"{_latency(latency)}", flush=True)
        print("mean over the folds run: " + "; ".join(
            f"{key} {statistics.mean(v):.3f}" for key, v in scores.items() if v))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
