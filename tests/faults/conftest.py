"""Fixtures of the fault suite: the fork server of the crash suite, and the printed counts."""

from __future__ import annotations

import pytest

from tests.crash.launcher import ForkServer, shared_fork_server
from tests.crash.report import REPORT


@pytest.fixture(scope="session")
def fork_server() -> ForkServer | None:
    return shared_fork_server()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = REPORT.pop("faults", [])
    if lines:
        terminalreporter.section("fault suite")
        for line in lines:
            terminalreporter.write_line(line)
