"""Real ``treadle scheduler`` and ``treadle worker`` processes for tests, always stopped by pid.

Fault-injection tests need the services as operators run them: separate processes that can
be killed, restarted and starved of their database or broker. :class:`ServiceProcess`
starts one ``treadle`` command in a session of its own (so its Celery pool children can be
signalled with it), writes its output to a log file the test can read and print, and
stops it by its process id: ``SIGTERM``, then ``SIGKILL`` to the whole process group after
a timeout, so nothing is left running whatever the test did. Waiting is done by polling a
condition with a deadline (:func:`wait_until`), never by sleeping a fixed time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

from treadle.clientlib.polling import Look, poll

__all__ = [
    "SCHEDULER_READY",
    "TREADLE",
    "WORKER_READY",
    "ServiceProcess",
    "treadle_environment",
    "wait_until",
    "wait_until_serving",
]

T = TypeVar("T")

#: The ``treadle`` command of the running interpreter's environment.
TREADLE = Path(sys.executable).parent / "treadle"
#: What ``treadle scheduler`` logs once it consumes reports and relays work.
SCHEDULER_READY = "scheduler started"
#: What a Celery worker (``treadle worker``) logs once it consumes its queues.
WORKER_READY = " ready."


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
    describe: Callable[[], str] | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Raises AssertionError naming ``what`` (and ``describe()``, the state seen last) when
    ``timeout`` seconds pass first.
    """

    def look() -> Look[T]:
        value = predicate()
        return Look(value, done=bool(value))

    polled = poll(look, interval=interval, timeout=timeout)
    if not polled.done:
        seen = f"; last seen: {describe()}" if describe is not None else ""
        raise AssertionError(f"{what} did not happen within {timeout:g} s{seen}")
    return polled.value


def wait_until_serving(process: ServiceProcess, base_url: str, timeout: float = 60.0) -> None:
    """Wait until ``treadle api`` (``process``) answers ``GET {base_url}/healthz`` with 200;
    AssertionError with its log's tail if it exits or ``timeout`` seconds pass first."""
    import httpx  # only the API's tests need it

    def healthy() -> bool:
        if not process.running:
            raise AssertionError(f"treadle api exited {process.returncode}:\n{process.tail()}")
        try:
            return httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, timeout, "treadle api answering /healthz", describe=process.tail)


def treadle_environment(
    base: Mapping[str, str] | None = None, **settings: str | int | float | Sequence[str]
) -> dict[str, str]:
    """The environment of a ``treadle`` process: ``base`` (default: this process's)
    without any ``TREADLE_*`` variable, plus ``TREADLE_<NAME>`` for each setting.

    Names follow :class:`treadle.common.settings.Settings` (``limits__max_payload_bytes``
    for a nested one); lists are written as JSON, as pydantic-settings reads them.
    """
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not k.startswith("TREADLE_")}
    for name, value in settings.items():
        text = json.dumps(list(value)) if isinstance(value, list | tuple) else str(value)
        env[f"TREADLE_{name.upper()}"] = text
    return env


class ServiceProcess:
    """One ``treadle`` process (``scheduler``, ``worker`` ...) logging to ``log``, in the
    folder ``cwd`` (default: this process's).

    The process leads a new session, so :meth:`kill` reaches its children too (a worker's
    prefork pool). Every way of ending it waits for the process, so no zombie is left.
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str],
        log: Path,
        *,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.args = tuple(args)
        self.log = log
        self.started_at = time.time()
        self.closed_at: float | None = None
        self._terminated = False
        log.parent.mkdir(parents=True, exist_ok=True)
        self._out = log.open("ab")
        try:
            self.process = subprocess.Popen(
                [str(TREADLE), *self.args],
                stdin=subprocess.DEVNULL,
                stdout=self._out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )
        except BaseException:
            self._out.close()
            raise

    def __repr__(self) -> str:
        return f"<ServiceProcess {self.name} pid={self.pid} {' '.join(self.args[:1])}>"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    # -- output --------------------------------------------------------------------------

    def output(self) -> str:
        """Everything the process wrote so far (stdout and stderr, interleaved)."""
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 150) -> str:
        kept = self.output().splitlines()[-lines:]
        return "\n".join(kept)

    def logged(self, text: str) -> bool:
        return text in self.output()

    def lines_with(self, text: str) -> list[str]:
        return [line for line in self.output().splitlines() if text in line]

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        """Wait until ``text`` appears in the log; fail at once if the process exits first."""

        def seen() -> bool:
            if text in self.output():
                return True
            if not self.running:
                raise AssertionError(
                    f"{self.name} exited with {self.returncode} before logging {text!r}:\n"
                    f"{self.tail()}"
                )
            return False

        wait_until(seen, timeout, f"{text!r} in the log of {self.name}", describe=self.tail)

    # -- stopping --------------------------------------------------------------------------

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process itself (not its children)."""
        if self.running:
            with suppress(ProcessLookupError):
                os.kill(self.pid, signum)
            if signum == signal.SIGTERM:
                self._terminated = True

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM, wait for the exit code; SIGKILL the group if it takes over ``timeout``."""
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} did not exit within {timeout:g} s of SIGTERM:\n{self.tail()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL the process and every process of its session (pool children)."""
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(10)

    def close(self, timeout: float = 10.0) -> None:
        """Stop it for good: SIGTERM, SIGKILL after ``timeout``, then SIGKILL whatever of
        its session is left (children that outlived it). Safe to call twice."""
        if self.closed_at is not None:
            return
        try:
            if self.running:
                if not self._terminated:  # a second SIGTERM would hurry a Celery worker
                    self.signal(signal.SIGTERM)
                with suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout)
        finally:
            self.kill()
            self._out.close()
            self.closed_at = time.time()


def stop_all(processes: Sequence[ServiceProcess], timeout: float = 10.0) -> None:
    """SIGTERM every process at once, then close each (so their shutdowns overlap)."""
    for process in processes:
        if process.closed_at is None:
            process.signal(signal.SIGTERM)
    errors: list[BaseException] = []
    for process in processes:
        try:
            process.close(timeout)
        except BaseException as exc:  # close the others all the same
            errors.append(exc)
    if errors:
        raise errors[0]


def describe(processes: Sequence[ServiceProcess]) -> dict[str, Any]:
    """``{name: pid and exit code}``, for assertion messages."""
    return {p.name: {"pid": p.pid, "exit": p.returncode} for p in processes}
