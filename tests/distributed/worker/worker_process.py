"""``treadle worker`` as a real process for the worker tests, always stopped by its pid.

:class:`WorkerProcess` starts one in a session of its own (so its prefork children can be
killed with it), logging to a file a test can wait on; :func:`worker_process_factory`
starts any number and stops every one on exit (the conftest's ``worker_processes``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from treadle.testing.processes import wait_until

TREADLE = Path(sys.executable).parent / "treadle"


def _message(line: str) -> str:
    """The message of a log line: a JSON line's ``message`` (the services write JSON when
    their stderr is not a terminal), else the line itself."""
    if line.startswith("{"):
        try:
            return str(json.loads(line).get("message", ""))
        except ValueError:
            return line
    return line


def worker_env(broker_url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TREADLE_")}
    env["TREADLE_BROKER_URL"] = broker_url
    env.update({f"TREADLE_{k.upper()}": v for k, v in settings.items()})
    return env


class WorkerProcess:
    """``treadle worker`` in a session of its own, logging to a file; stopped by its pid."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, name: str) -> None:
        self.log = log
        self.name = name
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            [str(TREADLE), "worker", "--hostname", f"{name}@%h", *args],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, text: str, timeout: float = 20) -> None:
        def seen() -> bool:
            if self.process.poll() is not None and text not in self.output():
                pytest.fail(f"worker exited ({self.process.returncode}):\n{self.output()}")
            return text in self.output()

        wait_until(seen, timeout, f"{text!r} in the worker's log")

    def wait_ready(self, timeout: float = 20) -> None:
        self.wait_for_log(" ready.", timeout)

    def node(self) -> str:
        """The worker's node name (``<name>@<host>``) as it logs it."""
        for line in self.output().splitlines():
            text = _message(line).rstrip()
            if text.endswith(" ready.") and f"{self.name}@" in text:
                return text.rsplit(" ", 2)[-2]
        pytest.fail(f"worker {self.name} has not logged that it is ready:\n{self.output()}")

    def terminate(self, timeout: float = 15) -> int:
        """SIGTERM and wait for the exit code (SIGKILL after ``timeout``)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes (its whole session)."""
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                self.terminate(timeout=10)
        finally:
            with suppress(ProcessLookupError, PermissionError):  # pool children left behind
                os.killpg(self.process.pid, signal.SIGKILL)
            self._out.close()


@contextmanager
def worker_process_factory(folder: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Starts ``treadle worker`` processes logging under ``folder``; stops them all on exit."""
    started: list[WorkerProcess] = []

    def start(broker_url: str, *args: str, **settings: str) -> WorkerProcess:
        name = f"w{len(started)}-{uuid.uuid4().hex[:6]}"
        worker = WorkerProcess(
            list(args), worker_env(broker_url, **settings), folder / f"{name}.log", name
        )
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.close()
