"""Fixtures for the scheduler service: real PostgreSQL and RabbitMQ, and a stand-in worker.

Each test module gets a throwaway PostgreSQL database and RabbitMQ vhost; each test gets
queue names of its own, so messages one test leaves behind never reach another.
:class:`StandInWorker` plays a Treadle worker with plain kombu (take a dispatch from the
work queue, report ``started``, run the action with the worker's ``execute``, report the
result, exactly as the wire contract says), so the scheduler is exercised for real without
a Celery worker process. ``schedtest`` is a small pack written for these tests.
"""

from __future__ import annotations

import json
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Consumer, Exchange, Producer
from kombu.message import Message

import treadle
from treadle.common.catalog import Catalog
from treadle.common.loader import load_packs
from treadle.common.messages import AttemptStarted, TaskDispatch, TaskResult, WorkerReport
from treadle.common.settings import Settings
from treadle.common.transport import (
    REDIS_PRIORITY_STEPS,
    consumed_queues,
    plain_queue,
    task_queue,
)
from treadle.scheduler.service.celery_publisher import kombu_queue
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.process import SchedulerProcess
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.service.starting import RunStarter
from treadle.scheduler.service.startup import RetryPolicy
from treadle.testing import throwaway_postgres_database, throwaway_rabbitmq_vhost
from treadle.worker.execute import RunnerSettings, execute

pytestmark = pytest.mark.services

SHIPPED_PACKS = Path(treadle.__file__).parent / "packs"
SPECIAL_QUEUE = "treadle-test.special"

PACK_FILES = {
    "pack.yaml": """
        ref: schedtest
        version: "1.0.0"
        description: Workflows for the scheduler service tests.
    """,
    "actions/special.yaml": f"""
        name: special
        description: "Returns {{'special': true}}, routed to a queue of its own."
        runner_type: python
        entry_point: special.py:special
        queue: {SPECIAL_QUEUE}
    """,
    "actions/special.py": """
        def special():
            return {"special": True}
    """,
    "workflows/timed_echo.yaml": """
        ref: schedtest.timed_echo
        tasks:
          - name: say
            action: core.echo
            timeout: 30
            input:
              message: hello
    """,
    "workflows/routed.yaml": """
        ref: schedtest.routed
        tasks:
          - name: special
            action: schedtest.special
    """,
    "workflows/echo_once.yaml": """
        ref: schedtest.echo_once
        tasks:
          - name: say
            action: core.echo
            input:
              message: once
    """,
    "workflows/retry_once.yaml": """
        ref: schedtest.retry_once
        tasks:
          - name: flaky
            action: core.echo
            retry:
              count: 1
              delay: 0
            input:
              message: second time lucky
    """,
    "workflows/crash_then_recover.yaml": """
        ref: schedtest.crash_then_recover
        tasks:
          - name: crash
            action: core.noop
            retry:
              count: 3
              delay: 0
            next:
              - when: "{{ failed() }}"
                do: [recover]
          - name: recover
            action: core.echo
            input:
              message: "recovered from {{ task.crash.error.type }}"
        output_map:
          recovered: "{{ task.recover.result.message }}"
    """,
    "workflows/slow_step.yaml": """
        ref: schedtest.slow_step
        tasks:
          - name: slow
            action: core.noop
            timeout: 10
            next:
              - when: "{{ timed_out() }}"
                do: [noticed]
          - name: noticed
            action: core.echo
            input:
              message: "{{ task.slow.error.message }}"
        output_map:
          noticed: "{{ task.noticed.result.message }}"
    """,
    "workflows/fan_out.yaml": """
        ref: schedtest.fan_out
        parameters:
          count: {type: integer, default: 50}
        tasks:
          - name: each
            action: core.echo
            with_items: "{{ range(parameters.count) | list }}"
            input:
              message: "item {{ item }}"
        output_map:
          messages: "{{ task.each.results | map(attribute='message') | list }}"
    """,
}


def write_pack(folder: Path) -> Path:
    """The ``schedtest`` pack under ``folder``; returns the pack's own folder."""
    root = folder / "schedtest"
    for name, text in PACK_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


class FakeClock:
    """A clock tests move by hand (the scheduler's timers and reconciler read it)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float = 30.0,
    between: Callable[[], Any] | None = None,
    what: str = "the condition",
) -> None:
    """Poll ``predicate`` (calling ``between`` in between) until it holds or time is up."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        if between is not None:
            between()
        else:
            time.sleep(0.01)


def step_until_reconnected(process: SchedulerProcess, *, timeout: float = 30.0) -> int:
    """Step until a step succeeds after a broker restart; returns how many failed. The first
    finds the report consumer's connection closed by the broker and fails, and is retried
    as ``SchedulerProcess.run`` retries it."""
    failed = 0

    def stepped() -> bool:
        nonlocal failed
        try:
            process.step(0.05)
        except Exception:
            failed += 1
            return False
        return True

    wait_until(stepped, timeout=timeout, what="a scheduler step on the restarted broker")
    return failed


def finish(process: SchedulerProcess, worker: StandInWorker, run_id: str) -> None:
    """Let the scheduler and the worker take turns until the run ends."""

    def turn() -> None:
        worker.work(0.02)
        process.step(0.02)

    wait_until(
        lambda: process.runs.load(run_id).status.is_terminal, between=turn, what="the run's end"
    )


class StandInWorker:
    """A worker made of a kombu consumer: takes dispatches, reports by the wire contract."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        *,
        queue: str | None = None,
        name: str = "stand-in@test",
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.name = name
        queue_name = queue or settings.default_queue
        # every priority band of the queue, as a worker consumes it (RabbitMQ)
        self.queues = [
            kombu_queue(
                task_queue(name, settings.broker_url, settings.delivery_limit),
                Exchange(name, type="direct", durable=True),
            )
            for name in consumed_queues([queue_name], settings.broker_url)
        ]
        self.results = kombu_queue(
            plain_queue(settings.results_queue, settings.broker_url, settings.results_queue_type)
        )
        self.connection = Connection(
            settings.broker_url,
            # Redis: every priority its own list, as every Treadle process reads them
            transport_options={
                "confirm_publish": True,
                "priority_steps": list(REDIS_PRIORITY_STEPS),
            },
        )
        self.channel = self.connection.channel()
        self.results.bind(self.channel).declare()
        self.inbox: list[Message] = []
        self.consumer = Consumer(
            self.channel, self.queues, on_message=self._on_message, prefetch_count=100
        )
        self.consumer.consume()
        self.producer = Producer(self.connection.channel())
        self.runner_settings = RunnerSettings(worker_name=name)

    def close(self) -> None:
        self.connection.release()

    # -- receiving -------------------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        self.inbox.append(message)

    def receive(self, timeout: float = 0.05) -> list[Message]:
        """Messages that arrived, waiting up to ``timeout`` s for the first (not acked)."""
        deadline = time.monotonic() + timeout
        while not self.inbox:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                self.connection.drain_events(timeout=remaining)
            except TimeoutError:
                break
        while True:  # and whatever else is already here
            try:
                self.connection.drain_events(timeout=0.01)
            except TimeoutError:
                break
        taken, self.inbox = self.inbox, []
        return taken

    def receive_one(self, timeout: float = 10.0) -> Message:
        messages = self.receive(timeout)
        assert len(messages) == 1, f"expected one dispatch, got {len(messages)}"
        return messages[0]

    @staticmethod
    def dispatch_of(message: Message) -> TaskDispatch:
        args, _kwargs, _embed = json.loads(message.body)
        return TaskDispatch.model_validate(args[0])

    # -- reporting -------------------------------------------------------------------------

    def report(self, report: WorkerReport) -> None:
        self.producer.publish(
            report.model_dump_json(),
            exchange="",
            routing_key=self.settings.results_queue,
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,
        )

    def started(
        self, dispatch: TaskDispatch, at: datetime | None = None, *, pid: int | None = None
    ) -> None:
        """Report ``dispatch`` started (by the incarnation with main process ``pid``)."""
        self.report(
            WorkerReport.of(
                AttemptStarted(
                    attempt_id=dispatch.attempt_id,
                    worker=self.name,
                    at=at or datetime.now(UTC),
                    worker_pid=pid,
                )
            )
        )

    def run(self, dispatch: TaskDispatch) -> TaskResult:
        """Run the attempt as a worker does and report its result."""
        result = execute(dispatch, self.catalog, self.runner_settings)
        self.report(WorkerReport.of(result))
        return result

    def work(self, timeout: float = 0.05) -> int:
        """Run every dispatch that arrives within ``timeout``; returns how many ran."""
        messages = self.receive(timeout)
        for message in messages:
            dispatch = self.dispatch_of(message)
            self.started(dispatch)
            self.run(dispatch)
            message.ack()
        return len(messages)


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with throwaway_postgres_database("treadle_sched") as url:
        yield url


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    with throwaway_rabbitmq_vhost("treadle_sched") as url:
        yield url


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    return write_pack(tmp_path / "packs")


@pytest.fixture
def catalog(pack_dir: Path) -> Catalog:
    loaded = load_packs([SHIPPED_PACKS, pack_dir])
    assert not loaded.issues, loaded.issues
    return loaded


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(database_url: str, broker_url: str) -> SettingsFactory:
    """Settings on the module's database and vhost, with queue names of this test's own."""
    suffix = uuid.uuid4().hex[:8]

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "broker_url": broker_url,
            "default_queue": f"treadle-test.{suffix}.tasks",
            "results_queue": f"treadle-test.{suffix}.results",
            "reconcile_interval": 3600.0,
        }
        values.update(overrides)
        return Settings(**values)

    return make


ProcessFactory = Callable[..., SchedulerProcess]


@pytest.fixture
def start_scheduler(catalog: Catalog) -> Iterator[ProcessFactory]:
    """Starts SchedulerProcess instances; every one is closed when the test ends."""
    started: list[SchedulerProcess] = []

    def start(settings: Settings, **kwargs: Any) -> SchedulerProcess:
        kwargs.setdefault("startup", RetryPolicy(first_wait=0.1, max_wait=0.5, give_up_after=10))
        process = SchedulerProcess(settings, kwargs.pop("catalog", catalog), **kwargs)
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        process.close()


WorkerFactory = Callable[..., StandInWorker]


@pytest.fixture
def stand_in_worker(catalog: Catalog) -> Iterator[WorkerFactory]:
    workers: list[StandInWorker] = []

    def make(settings: Settings, **kwargs: Any) -> StandInWorker:
        worker = StandInWorker(settings, catalog, **kwargs)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.close()


def client_runs(
    process: SchedulerProcess, clock: Callable[[], datetime] | None = None
) -> RunStarter:
    """What a client starts runs with: routes like the scheduler, NOTIFYs new outbox rows."""
    store = process.store
    runs = RunService(
        store,
        Definitions(store, process.catalog),
        clock=clock or process.clock,
        write_commands=process.handlers.write,
        notify_outbox=True,
    )
    return RunStarter(runs)
