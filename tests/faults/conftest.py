"""Fixtures of the fault suite: the fork server of the crash suite, and the printed counts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.crash.launcher import SPAWN, ForkServer
from tests.crash.report import REPORT


@pytest.fixture(scope="session")
def fork_server() -> Iterator[ForkServer | None]:
    if SPAWN != "fork":
        yield None
        return
    server = ForkServer()
    server.start()
    yield server
    server.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = REPORT.pop("faults", [])
    if lines:
        terminalreporter.section("fault suite")
        for line in lines:
            terminalreporter.write_line(line)
