"""The counts each crash or fault test prints, collected for the terminal summary."""

from __future__ import annotations

from collections import defaultdict

REPORT: defaultdict[str, list[str]] = defaultdict(list)


def report(suite: str, line: str) -> None:
    """Print ``line`` now (seen with ``-s``) and again in the terminal summary."""
    print(line, flush=True)
    REPORT[suite].append(line)
