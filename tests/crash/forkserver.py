"""A tiny fork server: ``python -m tests.crash.forkserver``.

Imports :mod:`tests.crash.preload` once, then forks a ``tsur run`` per request. One JSON
object per line on stdin, ``{"id": n, "args": [...]}`` (the arguments of
:func:`tests.crash.child.run_tsur`); it answers ``{"id": n, "pid": pid}`` on stdout, and
``{"exit": pid, "code": code}`` when a child ends (a negative code is the killing
signal). On EOF it kills its children and exits.

Not :mod:`multiprocessing`'s forkserver: that one re-runs the parent's ``__main__`` (pytest's
script) in every child.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import sys
import traceback


def _child(args: list) -> None:
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.close(devnull)
        from tests.crash.child import run_tsur

        run_tsur(*args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main() -> None:
    import tests.crash.preload  # noqa: F401

    out = sys.stdout
    children: set[int] = set()
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    selector = selectors.DefaultSelector()
    stdin = sys.stdin.buffer.raw  # type: ignore[attr-defined]
    selector.register(stdin, selectors.EVENT_READ, "stdin")
    selector.register(read_fd, selectors.EVENT_READ, "sigchld")

    def say(obj: dict) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    say({"ready": os.getpid()})
    buffer = b""
    running = True
    while running or children:
        for key, _ in selector.select(timeout=1.0):
            if key.data == "sigchld":
                with contextlib.suppress(BlockingIOError):
                    os.read(read_fd, 4096)
            elif running:
                chunk = os.read(stdin.fileno(), 65536)
                if not chunk:
                    running = False
                    selector.unregister(stdin)
                    for pid in children:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                    continue
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    request = json.loads(line)
                    out.flush()
                    pid = os.fork()
                    if pid == 0:
                        _child(request["args"])
                    children.add(pid)
                    say({"id": request["id"], "pid": pid})
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                children.clear()
                break
            if pid == 0:
                break
            children.discard(pid)
            say({"exit": pid, "code": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    main()
