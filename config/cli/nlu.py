"""``tsur nlu train|eval|classify``: teach and measure the complaint classifier."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from config.settings import Settings


def register(sub: Any) -> None:
    nlu = sub.add_parser("nlu", help="train, evaluate and try the complaint classifier")
    actions = nlu.add_subparsers(dest="action", required=True)
    train = actions.add_parser(
        "train", help="train on the shipped examples, an optional CSV of a region's appeals "
                      "(text,sector[,category]) and the operators' reclassifications")
    train.add_argument("--data", type=Path, help="CSV with columns text,sector[,category]")
    train.add_argument("--out", type=Path, required=True, help="model directory to write")
    train.add_argument("--no-reclassifications", action="store_true",
                       help="leave out the examples stored from operators' reclassifications")
    train.set_defaults(handler=_train)
    ev = actions.add_parser("eval", help="per-sector precision/recall/F1 on a labelled CSV")
    ev.add_argument("--data", type=Path, required=True)
    ev.add_argument("--model", type=Path, help="model directory (default: TSUR_NLU_MODEL, "
                                                "else the shipped examples)")
    ev.set_defaults(handler=_eval)
    cl = actions.add_parser("classify", help="one text per line on stdin, JSON lines out")
    cl.add_argument("--model", type=Path)
    cl.set_defaults(handler=_classify)


def _train(args: argparse.Namespace, settings: Settings) -> int:
    from dialogue.classifiers import train

    extra: list[tuple[str, str, str | None]] = []
    if not args.no_reclassifications:
        extra = asyncio.run(_reclassified(settings))
    out = train(args.data, args.out, extra)
    print(f"model written to {out} ({len(extra)} examples from reclassifications)")
    return 0


async def _reclassified(settings: Settings) -> list[tuple[str, str, str | None]]:
    from domain.storage import Database, upgrade_async
    from domain.storage.learning import reclassified_examples

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade_async(settings.sqlalchemy_url)
    database = Database.from_url(settings.sqlalchemy_url)
    try:
        return [(t, s, c) for t, s, c in await reclassified_examples(database)]
    finally:
        await database.dispose()


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    if settings.nlu == "rasa":
        from dialogue.classifiers.rasa import evaluate_rasa

        print(evaluate_rasa(settings.rasa_url, args.data))
        return 0
    from dialogue.classifiers import evaluate

    print(evaluate(args.model or settings.nlu_model, args.data))
    return 0


def _classify(args: argparse.Namespace, settings: Settings) -> int:
    from config.bootstrap import make_classifier
    from domain.catalogue import load_catalogue

    catalogue = load_catalogue(settings.catalogue)
    classifier = make_classifier(settings, catalogue, model_dir=args.model)

    async def run() -> None:
        for line in sys.stdin:
            text = line.rstrip("\n")
            suggestions = await classifier.classify(text)
            best = suggestions[0] if suggestions else None
            place = catalogue.find_municipality(text)
            print(json.dumps({
                "sector": best.sector if best else None,
                "category": best.category if best else None,
                "confidence": round(best.confidence, 4) if best else 0.0,
                "municipality": place.slug if place else None,
            }, ensure_ascii=False), flush=True)

    asyncio.run(run())
    return 0
