"""A throwaway PostgreSQL server for tests: a real ``postgres`` in a temporary directory.

It listens on a free port of 127.0.0.1 (and a unix socket in its own directory), trusts
local connections, and runs with ``fsync=off``: data is meant to be lost. Under root (as
in CI) the server commands run as the ``postgres`` OS user, because PostgreSQL refuses
to run as root.

    server = PostgresServer.start()
    url = server.create_database()      # postgresql+asyncpg://postgres@127.0.0.1:PORT/test_1
    ...
    server.stop()
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")
SUPERUSER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries were found on this machine."""


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: the newest
    ``/usr/lib/postgresql/*/bin`` first, then the PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit()
                        else 0, reverse=True)
    for directory in candidates:
        if all((Path(directory) / tool).exists() for tool in SERVER_TOOLS):
            return Path(directory)
    found = [shutil.which(tool) for tool in SERVER_TOOLS]
    if all(found):
        return Path(str(found[0])).parent
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    bindir: Path
    root: Path
    port: int
    run_as: str | None = None
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, bindir: Path | None = None) -> PostgresServer:
        """initdb into a fresh temporary directory and start the server; waits until ready."""
        bindir = bindir or find_bindir()
        if bindir is None:
            raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl, postgres) "
                                      "not found in /usr/lib/postgresql/*/bin or on PATH")
        # Not under pytest's tmp_path: its parents are 0700 root, unreadable for "postgres".
        root = Path(tempfile.mkdtemp(prefix="tsur-pg-"))
        run_as = SUPERUSER if os.geteuid() == 0 else None
        if run_as:
            user = pwd.getpwnam(run_as)
            os.chown(root, user.pw_uid, user.pw_gid)
        server = cls(bindir, root, _free_port(), run_as)
        try:
            server._run("initdb", "-D", str(server.datadir), "-U", SUPERUSER, "--auth=trust",
                        "--encoding=UTF8", "--locale=C", "--no-sync")
            server._start()
        except BaseException:
            server.stop()
            raise
        return server

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(self.bindir / tool), *args]
        return ["runuser", "-u", self.run_as, "--", *command] if self.run_as else command

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(self._command(tool, *args), capture_output=True, text=True,
                                timeout=120, check=False)
        if result.returncode != 0:
            log = self.logfile.read_text() if self.logfile.exists() else ""
            raise RuntimeError(f"{tool} failed ({result.returncode}):\n{result.stdout}\n"
                               f"{result.stderr}\n{log}")

    def _start(self) -> None:
        for attempt in range(3):
            options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                       "-c max_connections=200")
            try:
                self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile),
                          "-o", options, "-w", "-t", "60", "start")
                return
            except RuntimeError:
                if attempt == 2:
                    raise
                self.port = _free_port()  # lost the race for the port; try another

    def create_database(self, name: str | None = None) -> str:
        """CREATE DATABASE ``name`` (default: the next ``test_N``) and return its URL."""
        name = name or f"test_{next(self._names)}"
        createdb = self.bindir / "createdb"
        tool = str(createdb) if createdb.exists() else (shutil.which("createdb") or "createdb")
        result = subprocess.run(
            [tool, "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name],
            capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"createdb {name} failed: {result.stderr}")
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (immediately: nothing here is worth a checkpoint) and delete it."""
        if (self.datadir / "postmaster.pid").exists():
            subprocess.run(self._command("pg_ctl", "-D", str(self.datadir), "-m", "immediate",
                                         "-w", "stop"), capture_output=True, timeout=60,
                           check=False)
        shutil.rmtree(self.root, ignore_errors=True)
