"""Fixtures for the worker side of distributed mode: real RabbitMQ vhosts and Redis databases.

* ``wtest`` is a small pack written for these tests (an action that fails, one that
  ignores the soft time limit, one that sleeps on its first delivery only and writes the
  pid of the process running it, so a test can kill exactly that process).
* :class:`Reports` reads the results queue with a plain kombu consumer, as the scheduler
  would, and waits for the reports of given attempts (with a deadline, never a sleep).
* :func:`running_worker` runs a Celery worker of a Treadle app in a thread of the test
  process (``celery.contrib.testing``); ``worker_processes`` starts ``treadle worker`` as
  real processes (:mod:`.worker_process`) and always stops them by their pid.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from kombu import Connection, Consumer
from kombu.message import Message

from treadle.common.messages import TaskDispatch, TaskResult, WorkerReport
from treadle.common.settings import Settings
from treadle.common.spec import RunnerType
from treadle.common.transport import ATTEMPT_HEADER, task_name
from treadle.testing import throwaway_rabbitmq_vhost
from treadle.testing.processes import wait_until
from treadle.worker.app import results_queue

from .worker_process import WorkerProcess, worker_process_factory

PACK_FILES = {
    "pack.yaml": """
        ref: wtest
        version: "1.0.0"
        description: Actions for the worker tests.
    """,
    "actions/boom.yaml": """
        name: boom
        description: Raises QuotaExceeded.
        runner_type: python
        entry_point: actions.py:boom
    """,
    "actions/stubborn.yaml": """
        name: stubborn
        description: Sleeps, ignoring Celery's soft time limit.
        runner_type: python
        entry_point: actions.py:stubborn
        parameters:
          seconds: {type: number, required: true}
    """,
    "actions/crash_once.yaml": """
        name: crash_once
        description: >-
          On its first delivery writes its pid to pidfile and sleeps (to be killed);
          on any later delivery returns at once.
        runner_type: python
        entry_point: actions.py:crash_once
        parameters:
          marker: {type: string, required: true}
          pidfile: {type: string, required: true}
    """,
    "actions/actions.py": """
        import os
        import time


        class QuotaExceeded(Exception):
            pass


        def boom():
            raise QuotaExceeded("over the quota")


        def stubborn(seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    time.sleep(0.05)
                except BaseException:  # the soft time limit, swallowed
                    pass
            return {"done": True}


        def crash_once(marker, pidfile):
            if os.path.exists(marker):
                return {"second_delivery": True}
            open(marker, "w").close()
            with open(pidfile + ".tmp", "w") as out:
                out.write(str(os.getpid()))
            os.replace(pidfile + ".tmp", pidfile)
            time.sleep(60)
            return {"second_delivery": False}
    """,
}


@pytest.fixture(scope="session")
def test_packs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the ``wtest`` pack."""
    root = tmp_path_factory.mktemp("packs")
    for name, text in PACK_FILES.items():
        path = root / "wtest" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def rabbitmq_url() -> Iterator[str]:
    """A RabbitMQ vhost for one test module (tests use attempt ids of their own)."""
    with throwaway_rabbitmq_vhost("treadle_wtest") as url:
        yield url


def vhost_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def rabbitmqctl(*args: str) -> str:
    tool = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    done = subprocess.run(
        [tool, "-q", *args], check=True, capture_output=True, text=True, timeout=60
    )
    return done.stdout


def new_attempt() -> str:
    return f"run-{uuid.uuid4().hex[:8]}/task/0/1"


def dispatch_for(
    action_ref: str, payload: dict[str, Any] | None = None, **fields: Any
) -> TaskDispatch:
    attempt = fields.pop("attempt_id", None) or new_attempt()
    return TaskDispatch(
        attempt_id=attempt,
        run_id=attempt.split("/", 1)[0],
        task="task",
        execution=1,
        attempt=1,
        action_ref=action_ref,
        input=payload or {},
        **fields,
    )


def send(app: Any, dispatch: TaskDispatch, queue: str, **options: Any) -> None:
    """Publish ``dispatch`` as the wire contract says (what the scheduler's relay does)."""
    app.send_task(
        task_name(RunnerType.PYTHON),
        args=[dispatch.model_dump(mode="json")],
        task_id=dispatch.attempt_id,
        queue=queue,
        headers={ATTEMPT_HEADER: dispatch.attempt_id},
        **options,
    )


class Reports:
    """Reads WorkerReports from a results queue, as the scheduler does."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.received: list[WorkerReport] = []
        self.headers: list[dict[str, Any]] = []
        self._connection = Connection(settings.broker_url)
        self._consumer = Consumer(
            self._connection,
            [results_queue(settings)],
            callbacks=[self._on_message],
            accept=["json"],
        )
        self._consumer.consume()

    def _on_message(self, body: Any, message: Message) -> None:
        self.received.append(WorkerReport.model_validate(body))
        self.headers.append(dict(message.headers or {}))
        message.ack()

    def of(self, attempt_id: str) -> list[WorkerReport]:
        return [
            r
            for r in self.received
            if (r.started or r.result) is not None
            and (r.started.attempt_id if r.started else r.result.attempt_id) == attempt_id  # type: ignore[union-attr]
        ]

    def wait_for(self, attempt_id: str, count: int, timeout: float = 15) -> list[WorkerReport]:
        """The first ``count`` reports of ``attempt_id`` (waits for them to arrive)."""
        deadline = time.monotonic() + timeout
        while len(self.of(attempt_id)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(
                    f"timed out waiting for {count} reports of {attempt_id}; got "
                    f"{[r.kind for r in self.of(attempt_id)]}"
                )
            try:
                self._connection.drain_events(timeout=min(remaining, 0.5))
            except TimeoutError:
                continue
        return self.of(attempt_id)[:count]

    def wait_for_result(self, attempt_id: str, timeout: float = 15) -> TaskResult:
        deadline = time.monotonic() + timeout
        while True:
            results = [r.result for r in self.of(attempt_id) if r.result is not None]
            if results:
                return results[0]
            if time.monotonic() > deadline:
                pytest.fail(f"no result report for {attempt_id} within {timeout:g} s")
            try:
                self._connection.drain_events(timeout=0.5)
            except TimeoutError:
                continue

    def close(self) -> None:
        try:
            self._consumer.cancel()
        finally:
            self._connection.release()


@contextmanager
def reports_of(settings: Settings) -> Iterator[Reports]:
    reports = Reports(settings)
    try:
        yield reports
    finally:
        reports.close()


@contextmanager
def running_worker(app: Any, pool: str = "threads", **options: Any) -> Iterator[Any]:
    """A Celery worker of ``app`` in a thread of this process, stopped on exit.

    Its event loop is woken on exit, so stopping takes a fraction of a second rather
    than the loop's idle poll interval (up to 10 s).
    """
    with start_worker(app, pool=pool, perform_ping_check=False, **options) as worker:
        try:
            yield worker
        finally:
            from celery.worker import state

            state.should_terminate = 0
            if worker.hub is not None:
                worker.hub.call_soon(lambda: None)


# -- real ``treadle worker`` processes ----------------------------------------------------


@pytest.fixture
def worker_processes(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """A factory of ``treadle worker`` processes, all stopped when the test ends."""
    with worker_process_factory(tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def module_worker_processes(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., WorkerProcess]]:
    """The same, for workers shared by the tests of a module."""
    with worker_process_factory(tmp_path_factory.mktemp("workers")) as start:
        yield start


def work_queue_counts(broker_url: str) -> dict[str, tuple[int, int]]:
    """``{queue: (messages, unacknowledged)}`` of the vhost, from rabbitmqctl."""
    text = rabbitmqctl(
        "list_queues", "-p", vhost_of(broker_url), "name", "messages", "messages_unacknowledged"
    )
    counts: dict[str, tuple[int, int]] = {}
    for line in text.splitlines()[1:]:
        name, messages, unacked = line.split("\t")
        counts[name] = (int(messages), int(unacked))
    return counts


# -- the helpers above, as fixtures (test modules cannot import this conftest) --------------


@pytest.fixture
def make_dispatch() -> Callable[..., TaskDispatch]:
    return dispatch_for


@pytest.fixture
def send_dispatch() -> Callable[..., None]:
    return send


@pytest.fixture
def open_reports() -> Callable[[Settings], Any]:
    return reports_of


@pytest.fixture
def worker_thread() -> Callable[..., Any]:
    return running_worker


@pytest.fixture
def wait() -> Callable[..., Any]:
    return wait_until


@pytest.fixture
def queue_counts() -> Callable[[str], dict[str, tuple[int, int]]]:
    return work_queue_counts


@pytest.fixture
def list_queues() -> Callable[[str], list[list[str]]]:
    """``list_queues(broker_url)`` -> rows of ``name, type, arguments`` (rabbitmqctl)."""

    def rows(broker_url: str) -> list[list[str]]:
        text = rabbitmqctl("list_queues", "-p", vhost_of(broker_url), "name", "type", "arguments")
        return [line.split("\t") for line in text.splitlines()[1:]]

    return rows


@pytest.fixture
def list_exchanges() -> Callable[[str], list[str]]:
    def names(broker_url: str) -> list[str]:
        text = rabbitmqctl("list_exchanges", "-p", vhost_of(broker_url), "name")
        return [line for line in text.splitlines()[1:] if line]

    return names


@pytest.fixture
def close_connections() -> Callable[[str], None]:
    """``close_connections(broker_url)``: the broker closes every connection to the vhost."""

    def close(broker_url: str) -> None:
        vhost = vhost_of(broker_url)
        rabbitmqctl("close_all_connections", "-p", vhost, "closed by a worker test")
        with Connection(broker_url) as probe:  # the broker processed the close: new ones work
            probe.ensure_connection(max_retries=3)

    return close
