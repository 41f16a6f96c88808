"""Starting ``tsur run`` for crash and fault trials, and killing it with SIGKILL.

Two ways (``TSUR_CRASH_SPAWN``):

- ``fork`` (default): a fork server (:mod:`tests.crash.forkserver`) imports aiogram,
  vkbottle and the system once (:mod:`tests.crash.preload`); each start is a fork of it
  running :func:`tests.crash.child.run_tsur`, i.e. ``config.cli.main(["run"])``. A start then
  costs migrations and start-up only, not ~6 s of imports.
- ``exec``: a fresh ``python -c`` interpreter per start (slow; the same child function).

Either way the process is a real OS process with its own event loop, SQLite connections
and sockets, and :meth:`Tsur.kill` is a ``kill -9``.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.crash.child import ROOT

SPAWN = os.environ.get("TSUR_CRASH_SPAWN", "fork")


class ForkServer:
    """The client side of :mod:`tests.crash.forkserver`; one per test session.

    Synchronous (a pipe and a reader thread), so it does not belong to any event loop and
    every test's loop can use it.
    """

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._next = 0
        self._pids: dict[int, int] = {}
        self._exits: dict[int, int] = {}
        self._changed = threading.Condition()

    def start(self, timeout: float = 300) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.crash.forkserver"], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert b"ready" in line, line
        threading.Thread(target=self._read, name="forkserver-reader", daemon=True).start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            with self._changed:
                if "pid" in message:
                    self._pids[message["id"]] = message["pid"]
                elif "exit" in message:
                    self._exits[message["exit"]] = message["code"]
                self._changed.notify_all()

    def spawn(self, args: list[Any], timeout: float = 30) -> int:
        assert self.process is not None and self.process.stdin is not None
        with self._lock:
            self._next += 1
            request = self._next
            self.process.stdin.write(json.dumps({"id": request, "args": args}).encode()
                                     + b"\n")
            self.process.stdin.flush()
        with self._changed:
            if not self._changed.wait_for(lambda: request in self._pids, timeout):
                raise TimeoutError("the fork server did not answer")
            return self._pids.pop(request)

    def exit_code(self, pid: int) -> int | None:
        with self._changed:
            return self._exits.get(pid)

    async def wait(self, pid: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while (code := self.exit_code(pid)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"process {pid} did not exit")
            await asyncio.sleep(0.01)
        return code

    def close(self) -> None:
        if self.process is None:
            return
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)
        self.process = None


_shared: ForkServer | None = None


def shared_fork_server() -> ForkServer | None:
    """The one fork server of this test process (started on first use, closed at exit),
    or None when ``TSUR_CRASH_SPAWN=exec``; the crash and fault suites share it."""
    global _shared
    if SPAWN != "fork":
        return None
    if _shared is None:
        _shared = ForkServer()
        _shared.start()
        atexit.register(_shared.close)
    return _shared


@dataclass
class Tsur:
    """One running ``tsur run``."""

    pid: int
    server: ForkServer | None
    process: asyncio.subprocess.Process | None
    log_path: Path
    started: float
    up_at: float | None = None
    killed: bool = False
    exit_code: int | None = None
    _seen: int = field(default=0, repr=False)

    def alive(self) -> bool:
        if self.server is not None:
            return self.server.exit_code(self.pid) is None
        assert self.process is not None
        return self.process.returncode is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    async def wait_banner(self, timeout: float = 120) -> None:
        """Wait until ``tsur run`` prints that it is serving."""
        deadline = time.monotonic() + timeout
        while "Press Ctrl-C" not in self.log():
            if not self.alive():
                raise AssertionError("tsur exited before serving:\n" + self.log()[-4000:])
            if time.monotonic() > deadline:
                raise AssertionError("tsur did not start in time:\n" + self.log()[-4000:])
            await asyncio.sleep(0.02)
        self.up_at = time.monotonic()

    async def kill(self) -> None:
        """``kill -9``, then reap."""
        self.killed = True
        os.kill(self.pid, signal.SIGKILL)
        await self._reap()

    async def stop(self, timeout: float = 30) -> int:
        """Ctrl-C, as an operator would; returns the exit code."""
        os.kill(self.pid, signal.SIGINT)
        await self._reap(timeout)
        return self.exit_code if self.exit_code is not None else -1

    async def _reap(self, timeout: float = 30) -> None:
        try:
            if self.server is not None:
                self.exit_code = await self.server.wait(self.pid, timeout)
            else:
                assert self.process is not None
                self.exit_code = await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            os.kill(self.pid, signal.SIGKILL)
            raise


class Launcher:
    """Starts ``tsur run`` processes with one environment, each logging to its own file."""

    def __init__(self, server: ForkServer | None, env: dict[str, str], log_dir: Path, *,
                 lease_seconds: float | None = 3.0,
                 backoff: tuple[float, float, float] | None = None,
                 broadcast_batch: int | None = None) -> None:
        self.server = server
        self.broadcast_batch = broadcast_batch
        self.env = env
        self.log_dir = log_dir
        self.lease_seconds = lease_seconds
        self.backoff = backoff
        self.runs: list[Tsur] = []

    async def start(self, wait: bool = True) -> Tsur:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"tsur-{len(self.runs) + 1:03d}.log"
        args = [dict(self.env), str(log_path), self.lease_seconds, self.backoff,
                self.broadcast_batch]
        if self.server is not None:
            tsur = Tsur(self.server.spawn(args), self.server, None, log_path,
                        time.monotonic())
        else:
            code = ("import json, sys; from tests.crash.child import run_tsur; "
                    "run_tsur(*json.loads(sys.argv[1]))")
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", code, json.dumps(args), cwd=ROOT,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL)
            tsur = Tsur(process.pid, None, process, log_path, time.monotonic())
        self.runs.append(tsur)
        if wait:
            await tsur.wait_banner()
        return tsur

    async def close(self) -> None:
        for tsur in self.runs:
            if tsur.alive():
                await tsur.kill()

    def logs(self) -> str:
        return "\n".join(f"--- {t.log_path.name} ---\n{t.log()}" for t in self.runs)
