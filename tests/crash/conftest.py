"""Fixtures of the crash suite: the fork server (once per session) and the printed counts.

``TSUR_CRASH_TRIALS`` (default 20) sets the kills per mode, ``TSUR_CRASH_SEED`` repeats
a run's random kill points, ``TSUR_CRASH_SPAWN=exec`` starts every ``tsur run`` as a new
interpreter instead of a fork of a preloaded one.
"""

from __future__ import annotations

import pytest

from tests.crash.launcher import ForkServer, shared_fork_server
from tests.crash.report import REPORT


@pytest.fixture(scope="session")
def fork_server() -> ForkServer | None:
    return shared_fork_server()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = REPORT.pop("crash", [])
    if lines:
        terminalreporter.section("crash suite")
        for line in lines:
            terminalreporter.write_line(line)
