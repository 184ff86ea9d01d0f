"""A PostgreSQL server of a test's own, on a free port, that the test may restart.

Tests that restart the database must not disturb the machine's shared server (other tests
run on it at the same time): :func:`postgres_instance` makes a cluster with ``initdb`` in
a temporary directory, starts ``postgres`` bound to 127.0.0.1 on a free port with trust
authentication, and stops it by its process id at the end. :meth:`PostgresInstance.restart`
stops it as operators do (a fast shutdown: sessions are disconnected, committed data
kept) and starts it again on the same port and directory.

PostgreSQL refuses to run as root: when this process is root, the server and ``initdb``
run as the ``postgres`` user (with ``runuser``), which owns the directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from treadle.testing.processes import wait_until
from treadle.testing.redis_server import free_port

__all__ = ["PostgresInstance", "postgres_instance"]


def _binary(name: str) -> str:
    """A PostgreSQL server program (they are not on PATH on Debian)."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise FileNotFoundError(f"PostgreSQL's {name} is not installed")
    return found


class PostgresInstance:
    """One private PostgreSQL server: its admin URL, and how to restart and stop it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self.admin_url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"
        self.log = directory / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._as_user: Sequence[str] = ()
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(directory, owner.pw_uid, owner.pw_gid)
            self._as_user = ("runuser", "-u", "postgres", "--")

    def __repr__(self) -> str:
        pid = self._process.pid if self._process is not None else None
        return f"<PostgresInstance 127.0.0.1:{self.port} pid={pid}>"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def initdb(self) -> None:
        subprocess.run(
            [
                *self._as_user,
                _binary("initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self, timeout: float = 30.0) -> None:
        """Start the server (if not running) and wait until it accepts connections."""
        if self._process is not None and self._process.poll() is None:
            return
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    *self._as_user,
                    _binary("postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-k",
                    str(self.directory),
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=200",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        wait_until(self._ready, timeout, f"PostgreSQL on port {self.port} accepting connections")

    def _ready(self) -> bool:
        if self._process is None or self._process.poll() is not None:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise AssertionError(f"PostgreSQL on port {self.port} exited:\n{log[-2000:]}")
        done = subprocess.run(
            [_binary("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"],
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its URL."""
        subprocess.run(
            [_binary("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return self.url(name)

    def stop(self, timeout: float = 30.0) -> None:
        """A fast shutdown (SIGINT to the postmaster: sessions end, committed data stays),
        then SIGKILL after ``timeout``; waits for the process either way."""
        process, self._process = self._process, None
        if process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)

    def restart(self) -> None:
        """Stop the server and start it again on the same port and directory."""
        self.stop()
        self.start()


@contextmanager
def postgres_instance() -> Iterator[PostgresInstance]:
    """A running private PostgreSQL server (see the module docstring), stopped at exit."""
    with tempfile.TemporaryDirectory(prefix="treadle-postgres-") as folder:
        instance = PostgresInstance(Path(folder))
        try:
            instance.initdb()
            instance.start()
            yield instance
        finally:
            instance.stop()
