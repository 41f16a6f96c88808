"""A throwaway Redis server for tests: a real ``redis-server`` in a temporary directory.

It listens on a free port of 127.0.0.1 only, keeps nothing on disk (no RDB snapshots, no
AOF) and is killed and deleted by :meth:`RedisServer.stop`.

    server = RedisServer.start()
    url = server.url(db=1)      # redis://127.0.0.1:PORT/1
    ...
    server.stop()

Each test should use a fresh logical database (:meth:`RedisServer.next_url`) or flush
what it wrote, as each gets a fresh PostgreSQL database.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DATABASES = 16  # redis-server's default number of logical databases


class RedisUnavailable(RuntimeError):
    """No ``redis-server`` binary was found on this machine."""


def find_redis_server() -> Path | None:
    """``redis-server`` on the PATH, or Debian's ``/usr/bin/redis-server``."""
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin")
    return Path(found) if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    binary: Path
    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    _databases: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def logfile(self) -> Path:
        return self.root / "redis.log"

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def next_url(self) -> str:
        """The URL of a logical database no earlier caller got (1-15, then flushed reuse)."""
        db = next(self._databases) % DATABASES or 1
        self.flush(db)
        return self.url(db)

    @classmethod
    def start(cls, binary: Path | None = None) -> RedisServer:
        """Start ``redis-server`` in a fresh temporary directory; waits until it answers."""
        binary = binary or find_redis_server()
        if binary is None:
            raise RedisUnavailable("redis-server not found on PATH (Debian: redis-server)")
        root = Path(tempfile.mkdtemp(prefix="tsur-redis-"))
        server = cls(binary, root, _free_port())
        try:
            for _ in range(3):
                if server._start():
                    return server
                server.port = _free_port()  # lost the race for the port; try another
            raise RuntimeError("redis-server did not start:\n" + server._log())
        except BaseException:
            server.stop()
            raise

    def _start(self) -> bool:
        command = [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1",
                   "--protected-mode", "yes", "--save", "", "--appendonly", "no",
                   "--dir", str(self.root), "--logfile", str(self.logfile),
                   "--databases", str(DATABASES), "--daemonize", "no"]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if _ping(self.port):
                return True
            time.sleep(0.05)
        self.process.kill()
        self.process.wait()
        return False

    def _log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def flush(self, db: int) -> None:
        """Empty logical database ``db`` (``SELECT db`` then ``FLUSHDB``)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(f"SELECT {db}\r\nFLUSHDB\r\n".encode())
            answer = b""
            while answer.count(b"\r\n") < 2:
                chunk = sock.recv(64)
                if not chunk:
                    break
                answer += chunk
        if answer != b"+OK\r\n+OK\r\n":
            raise RuntimeError(f"FLUSHDB on db {db} answered {answer!r}")

    def stop(self) -> None:
        """Kill the server (nothing in it is worth saving) and delete its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)
