"""The ``tsur`` command. Each subcommand group lives in its own module and registers itself
with :func:`main`'s parser; handlers get the parsed arguments and the settings."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from config.cli import broadcast, nlu, run, users
from config.settings import Settings

GROUPS = (run, users, nlu, broadcast)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tsur", description="tsur — citizen interaction for a regional management center")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"tsur: bad configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    try:
        return int(args.handler(args, settings))
    except (ValueError, LookupError) as exc:  # bad input named on the command line
        print(f"tsur: {exc}", file=sys.stderr)
        return 2
