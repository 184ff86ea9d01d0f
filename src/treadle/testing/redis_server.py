"""A ``redis-server`` of a test's own, on a free port, that the test may restart.

Tests that restart a broker must not disturb the machine's shared Redis: :func:`redis_instance`
starts a private ``redis-server`` bound to 127.0.0.1 on a free port, in a temporary
directory, with or without persistence (an append-only file written on every command, or
nothing saved at all), and stops it by its process id at the end. Its
:meth:`RedisInstance.restart` stops the server and starts it again on the same port and
directory: without persistence it comes back empty, with persistence it comes back with
what it held. Either way it has a new ``run_id`` (``INFO server``).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from treadle.testing.processes import wait_until

__all__ = ["RedisInstance", "free_port", "redis_instance"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisInstance:
    """One private ``redis-server``: its URL, and how to restart and stop it."""

    def __init__(self, directory: Path, *, persistence: bool, port: int | None = None) -> None:
        self.directory = directory
        self.persistence = persistence
        self.port = port if port is not None else free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = directory / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        pid = self._process.pid if self._process is not None else None
        return f"<RedisInstance {self.url} persistence={self.persistence} pid={pid}>"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _arguments(self) -> list[str]:
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        common = [server, "--port", str(self.port), "--bind", "127.0.0.1"]
        common += ["--dir", str(self.directory), "--logfile", str(self.log)]
        common += ["--daemonize", "no", "--protected-mode", "no", "--save", ""]
        if self.persistence:
            return [*common, "--appendonly", "yes", "--appendfsync", "always"]
        return [*common, "--appendonly", "no"]

    def start(self, timeout: float = 20.0) -> None:
        """Start the server (if not running) and wait until it answers PING."""
        if self._process is not None and self._process.poll() is None:
            return
        self._process = subprocess.Popen(
            self._arguments(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(self._answers, timeout, f"redis-server on port {self.port} answering PING")

    def _answers(self) -> bool:
        import redis

        if self._process is None or self._process.poll() is not None:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise AssertionError(f"redis-server on port {self.port} exited:\n{log[-2000:]}")
        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def run_id(self) -> str:
        """The server's ``run_id``: new at every start."""
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=5)
        try:
            return str(client.info("server")["run_id"])
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Redis's own clean shutdown: the append-only file is flushed), then
        SIGKILL after ``timeout``; waits for the process either way."""
        process, self._process = self._process, None
        if process is None:
            return
        with suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout)

    def restart(self) -> None:
        """Stop the server and start it again on the same port and directory."""
        self.stop()
        self.start()


@contextmanager
def redis_instance(persistence: bool) -> Iterator[RedisInstance]:
    """A running private ``redis-server`` (see the module docstring), stopped at exit."""
    with tempfile.TemporaryDirectory(prefix="treadle-redis-") as folder:
        instance = RedisInstance(Path(folder), persistence=persistence)
        try:
            instance.start()
            yield instance
        finally:
            instance.stop()
