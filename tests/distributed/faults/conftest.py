"""Fixtures for the fault-injection suite: real ``treadle`` processes on throwaway services.

A :class:`Deployment` is one throwaway PostgreSQL database and RabbitMQ vhost (or Redis
database) with the settings every process of it shares; it starts ``treadle scheduler``
and ``treadle worker`` processes (:class:`treadle.testing.processes.ServiceProcess`: own
session, output in a log file, stopped by pid) and reads what they stored. The ``faults``
pack, written to a temporary folder, holds the actions the tests need: a sleeper that
sleeps only on its first attempt, an action that SIGKILLs its own worker process, a
module that does not import, a result that is not JSON, a result over the payload limit.

When a test fails, the last lines of the log of every process it used are attached to
the report (see ``pytest_runtest_makereport``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kombu.connection import Connection
from kombu.messaging import Producer
from sqlalchemy import text

from treadle.client import Client
from treadle.common.messages import WorkerReport
from treadle.common.settings import Settings
from treadle.common.statuses import RunStatus
from treadle.common.transport import ATTEMPT_HEADER
from treadle.scheduler.core.commands import DispatchTask
from treadle.scheduler.service.run_document import stored_run_document
from treadle.scheduler.store import AttemptEntry, Store
from treadle.testing import throwaway_postgres_database, throwaway_rabbitmq_vhost
from treadle.testing.port_forwarder import PortForwarder
from treadle.testing.processes import (
    SCHEDULER_READY,
    WORKER_READY,
    ServiceProcess,
    stop_all,
    treadle_environment,
    wait_until,
)

from .faults_pack import PAYLOAD_LIMIT, write_faults_pack

#: Every process this test process started, for the logs of a failed test.
STARTED: list[ServiceProcess] = []

# -- reading what the services stored ------------------------------------------------------


@dataclass(frozen=True)
class StoredEvent:
    """One row of ``run_events``: its kind and the attempt it is about (if any)."""

    run_id: str
    seq: int
    kind: str
    attempt_id: str | None


@dataclass(frozen=True)
class OutboxRow:
    run_id: str
    kind: str
    attempt_id: str | None
    sent: bool


@dataclass
class Deployment:
    """One database and broker, the processes started on them, and ways to read the store."""

    database_url: str
    broker_url: str
    logs: Path
    settings: dict[str, Any] = field(default_factory=dict)
    processes: list[ServiceProcess] = field(default_factory=list)
    _store: Store | None = None

    # -- processes -------------------------------------------------------------------------

    def environment(self, **overrides: Any) -> dict[str, str]:
        values = {
            "database_url": self.database_url,
            "broker_url": self.broker_url,
            "log_level": "INFO",
            **self.settings,
            **overrides,
        }
        return treadle_environment(**values)

    def _start(
        self,
        name: str,
        args: Callable[[str], list[str]],
        overrides: dict[str, Any],
        *,
        unique: str | None = None,
    ) -> ServiceProcess:
        unique = unique or f"{name}-{uuid.uuid4().hex[:6]}"
        log = self.logs / f"{unique}-{uuid.uuid4().hex[:4]}.log"
        process = ServiceProcess(unique, args(unique), self.environment(**overrides), log)
        self.processes.append(process)
        STARTED.append(process)
        return process

    def scheduler(self, name: str = "scheduler", **overrides: Any) -> ServiceProcess:
        """Start ``treadle scheduler`` (not waiting for it to be ready)."""
        return self._start(name, lambda _unique: ["scheduler"], overrides)

    def worker(
        self,
        name: str = "worker",
        *,
        concurrency: int = 2,
        same_name_as: ServiceProcess | None = None,
        **overrides: Any,
    ) -> ServiceProcess:
        """Start ``treadle worker`` (prefork pool) named ``<name>-<random>@<host>``, or
        under the node name of ``same_name_as`` (a worker restarted under its name)."""
        return self._start(
            name,
            lambda unique: [
                "worker",
                "--hostname",
                f"{unique}@%h",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
            ],
            overrides,
            unique=same_name_as.name if same_name_as is not None else None,
        )

    def started(self, *processes: ServiceProcess, timeout: float = 45.0) -> None:
        """Wait until each process logged that it is ready."""
        for process in processes:
            ready = WORKER_READY if process.args[0] == "worker" else SCHEDULER_READY
            process.wait_for_log(ready, timeout)

    @contextmanager
    def test_scope(self) -> Iterator[Deployment]:
        """Processes started inside are stopped on exit (those started before live on)."""
        before = len(self.processes)
        try:
            yield self
        finally:
            own = self.processes[before:]
            del self.processes[before:]
            stop_all(own)

    def close(self) -> None:
        try:
            stop_all(self.processes)
        finally:
            if self._store is not None:
                self._store.close()
                self._store = None

    # -- the store ---------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.open(self.database_url, migrate=False)
        return self._store

    def client(self, **options: Any) -> Client:
        return Client(self.database_url, settings=Settings(**self.client_settings()), **options)

    def client_settings(self) -> dict[str, Any]:
        limit = self.settings.get("limits__max_payload_bytes")
        return {"limits": {"max_payload_bytes": limit}} if limit else {}

    def statuses(self, run_ids: Iterable[str]) -> dict[str, RunStatus]:
        ids = list(run_ids)
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                text("SELECT id, status FROM runs WHERE id = ANY(:ids)"), {"ids": ids}
            ).all()
        return {row.id: RunStatus(row.status) for row in rows}

    def wait_for_runs(self, run_ids: Iterable[str], timeout: float = 60.0) -> None:
        """Wait until every run ended (succeeded or not)."""
        ids = list(run_ids)

        def ended() -> bool:
            statuses = self.statuses(ids)
            return len(statuses) == len(ids) and all(s.is_terminal for s in statuses.values())

        def seen() -> str:
            counts: dict[str, int] = {}
            for status in self.statuses(ids).values():
                counts[status.value] = counts.get(status.value, 0) + 1
            return f"run statuses {counts}"

        wait_until(ended, timeout, f"the end of {len(ids)} run(s)", describe=seen, interval=0.1)

    def document(self, run_id: str, *, items: bool = False) -> dict[str, Any]:
        with self.store.snapshot() as uow:
            return stored_run_document(uow, run_id, items=items)

    def attempts(self, run_id: str) -> list[AttemptEntry]:
        with self.store.unit_of_work() as uow:
            return uow.list_attempts(run_id)

    def count_attempts(self, run_ids: Iterable[str], status: str) -> int:
        with self.store.engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM attempts WHERE run_id = ANY(:ids) AND status = :s"),
                    {"ids": list(run_ids), "s": status},
                ).scalar_one()
            )

    def events(self, run_ids: Iterable[str]) -> list[StoredEvent]:
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT run_id, seq, kind, payload->>'attempt_id' AS attempt_id "
                    "FROM run_events WHERE run_id = ANY(:ids) ORDER BY run_id, seq"
                ),
                {"ids": list(run_ids)},
            ).all()
        return [StoredEvent(r.run_id, r.seq, r.kind, r.attempt_id) for r in rows]

    def outbox(self, run_ids: Iterable[str]) -> list[OutboxRow]:
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT run_id, kind, payload->'dispatch'->>'attempt_id' AS attempt_id, "
                    "sent_at IS NOT NULL AS sent FROM outbox WHERE run_id = ANY(:ids) "
                    "ORDER BY id"
                ),
                {"ids": list(run_ids)},
            ).all()
        return [OutboxRow(r.run_id, r.kind, r.attempt_id, bool(r.sent)) for r in rows]

    # -- the broker --------------------------------------------------------------------------

    def queue_depths(self) -> dict[str, int]:
        """``{queue: messages ready or unacknowledged}`` of the deployment's vhost (RabbitMQ)."""
        vhost = self.broker_url.rsplit("/", 1)[1]
        tool = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
        listed = subprocess.run(
            [tool, "-q", "list_queues", "-p", vhost, "name", "messages"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        rows = (line.split("\t") for line in listed.splitlines()[1:] if line.strip())
        return {name: int(count) for name, count in rows}

    def publish_reports(self, reports: Iterable[WorkerReport]) -> None:
        """Publish reports to the results queue exactly as a worker does (the wire contract:
        default exchange, routing key = results queue, JSON, persistent, confirmed)."""
        results_queue = str(self.settings.get("results_queue", Settings().results_queue))
        confirmed = {"confirm_publish": True}
        with Connection(self.broker_url, transport_options=confirmed) as connection:  # type: ignore[no-untyped-call]
            producer = Producer(connection.channel())  # type: ignore[no-untyped-call]
            for report in reports:
                attempt = (report.started or report.result).attempt_id  # type: ignore[union-attr]
                producer.publish(  # type: ignore[no-untyped-call]
                    report.model_dump_json(),
                    exchange="",
                    routing_key=results_queue,
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    headers={ATTEMPT_HEADER: attempt},
                )


def assert_each_attempt_ran_once(services: Deployment, run_ids: Sequence[str]) -> int:
    """Every attempt of the runs succeeded at its first try, was dispatched by exactly one
    outbox row, and has exactly one outcome event (``task_succeeded``) in its run's log.

    Returns how many attempts there were.
    """
    attempts = [a for run_id in run_ids for a in services.attempts(run_id)]
    ids = [a.attempt_id for a in attempts]
    assert len(ids) == len(set(ids))
    wrong = [
        (a.attempt_id, a.status.value, a.attempt)
        for a in attempts
        if a.status.value != "succeeded" or a.attempt != 1
    ]
    assert wrong == [], "attempts that did not succeed at their first try"

    dispatches = Counter(
        row.attempt_id for row in services.outbox(run_ids) if row.kind == DispatchTask.kind
    )
    twice = {attempt: n for attempt, n in dispatches.items() if n != 1}
    assert twice == {}, "attempts dispatched by more than one outbox row"
    assert set(dispatches) == set(ids), "dispatch rows and attempts differ"
    # Every row ends up sent: a dispatch the killed scheduler published itself but did not
    # mark is published again (a harmless duplicate) once its hold ends.
    wait_until(
        lambda: all(row.sent for row in services.outbox(run_ids)),
        OUTBOX_HOLD_SECONDS + 10,
        "every outbox row marked sent",
    )

    outcomes = Counter(
        (event.kind, event.attempt_id)
        for event in services.events(run_ids)
        if event.attempt_id is not None
    )
    repeated = {key: n for key, n in outcomes.items() if n != 1}
    assert repeated == {}, "an attempt's outcome applied more than once"
    assert set(outcomes) == {("task_succeeded", attempt) for attempt in ids}
    return len(ids)


def node_name(process: ServiceProcess) -> str:
    """The Celery node name a worker started by :meth:`Deployment.worker` reports under."""
    return f"{process.name}@{socket.gethostname()}"


@contextmanager
def deployment(
    logs: Path,
    *,
    broker_url: str | None = None,
    database_url: str | None = None,
    **settings: Any,
) -> Iterator[Deployment]:
    """A throwaway database and vhost (or the given ones), stopped processes afterwards."""
    with ExitStack() as stack:
        if database_url is None:
            database_url = stack.enter_context(throwaway_postgres_database("treadle_faults"))
        if broker_url is None:
            broker_url = stack.enter_context(throwaway_rabbitmq_vhost("treadle_faults"))
        made = Deployment(database_url, broker_url, logs, settings)
        try:
            yield made
        finally:
            made.close()


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def faults_packs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of packs holding the ``faults`` pack."""
    return write_faults_pack(tmp_path_factory.mktemp("packs"))


#: How long a scheduler's own dispatch rows are held from relays in these tests.
OUTBOX_HOLD_SECONDS = 2


def base_settings(packs: Path, **settings: Any) -> dict[str, Any]:
    """Settings every process of a deployment shares (as ``TREADLE_*`` names)."""
    values: dict[str, Any] = {
        "pack_paths": [str(packs)],
        "limits__max_payload_bytes": PAYLOAD_LIMIT,
        "reconcile_interval": 2,
        # A scheduler killed between its commit and its own publish leaves its dispatch
        # rows held; a relay takes them when the hold ends (10 s by default).
        "outbox_hold_seconds": OUTBOX_HOLD_SECONDS,
    }
    values.update(settings)
    return values


@pytest.fixture(scope="session")
def shared_deployment(
    faults_packs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """A scheduler and a worker that stay up for the tests that do not kill anything."""
    with deployment(tmp_path_factory.mktemp("shared"), **base_settings(faults_packs)) as made:
        scheduler = made.scheduler()
        worker = made.worker(concurrency=2)
        made.started(scheduler, worker)
        yield made


@pytest.fixture(scope="module")
def module_deployment_factory(
    faults_packs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Deployment]]:
    """Makes deployments (database, vhost, settings) that last for the test module."""
    with ExitStack() as stack:

        def make(**settings: Any) -> Deployment:
            logs = tmp_path_factory.mktemp("deployment")
            return stack.enter_context(deployment(logs, **base_settings(faults_packs, **settings)))

        yield make


@pytest.fixture
def forwarder() -> Iterator[Callable[[tuple[str, int]], PortForwarder]]:
    made: list[PortForwarder] = []

    def make(target: tuple[str, int]) -> PortForwarder:
        forwarder = PortForwarder(target)
        made.append(forwarder)
        return forwarder

    yield make
    for forwarder in made:
        forwarder.close()


# -- logs of the processes a failed test used -------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when not in ("setup", "call") or not report.failed:
        return
    for process in STARTED:
        if process.started_at > call.stop:
            continue
        if process.closed_at is not None and process.closed_at < call.start - 1:
            continue  # stopped before this test
        state = "running" if process.running else f"exited with {process.returncode}"
        report.sections.append(
            (
                f"log of {process.name} (pid {process.pid}, {state}; {process.log})",
                process.tail(200),
            )
        )
