"""What a worker counts for Prometheus, without a broker: the band -> work queue mapping,
the counters a task body moves (through ``run_dispatch`` with a stand-in Celery task), the
signal handlers' app filter, and the sweep of dead processes' live-gauge files."""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import Reject

from treadle.common.messages import ErrorInfo, TaskDispatch, TaskResult, WorkerReport
from treadle.common.metrics import Metrics
from treadle.common.metrics_catalog import MetricSource
from treadle.common.settings import Settings
from treadle.common.statuses import AttemptStatus
from treadle.worker.catalog_loader import PackCatalog, pack_folders
from treadle.worker.execute import RunnerSettings
from treadle.worker.metrics import (
    UNKNOWN_QUEUE,
    CeleryCounting,
    WorkerCounters,
    work_queue_map,
    work_queue_of,
)
from treadle.worker.metrics_endpoint import LiveProcessesFirst, live_gauge_pids
from treadle.worker.reports import ReportNotPublished
from treadle.worker.tasks import WorkerIdentity, WorkerRuntime, run_dispatch

RABBIT = "amqp://guest:guest@127.0.0.1:5672//"
REDIS = "redis://127.0.0.1:6379/0"
HOST = "w1@host"
LABELS = {"name": "treadle.run.python", "hostname": HOST, "queue_name": "gpu"}


# -- band queues -> work queues ------------------------------------------------------------


def test_every_band_of_a_work_queue_maps_to_it_on_rabbitmq():
    mapping = work_queue_map(["treadle.tasks", "gpu"], RABBIT)
    assert mapping == {
        "treadle.tasks": "treadle.tasks",
        "treadle.tasks.high": "treadle.tasks",
        "treadle.tasks.low": "treadle.tasks",
        "gpu": "gpu",
        "gpu.high": "gpu",
        "gpu.low": "gpu",
    }


def test_on_redis_each_queue_is_its_own_work_queue():
    assert work_queue_map(["treadle.tasks", "gpu"], REDIS) == {
        "treadle.tasks": "treadle.tasks",
        "gpu": "gpu",
    }


def test_a_work_queue_named_like_another_s_band_stays_itself():
    mapping = work_queue_map(["x", "x.high"], RABBIT)
    assert mapping["x.high"] == "x.high"
    assert mapping["x.high.high"] == "x.high"
    assert mapping["x.low"] == "x"


@pytest.mark.parametrize(
    ("delivered", "expected"),
    [
        ("gpu.high", "gpu"),
        ("gpu", "gpu"),
        ("other.low", "other"),  # not told about it: the band suffix goes
        ("other.high", "other"),
        ("other", "other"),
        (".high", ".high"),
        (None, UNKNOWN_QUEUE),
        ("", UNKNOWN_QUEUE),
    ],
)
def test_the_work_queue_of_a_delivery(delivered, expected):
    assert work_queue_of(delivered, work_queue_map(["gpu"], RABBIT)) == expected


# -- the counters a task moves --------------------------------------------------------------


def make_dispatch(action_ref: str, payload: dict[str, Any] | None = None) -> TaskDispatch:
    attempt = f"run-{uuid.uuid4().hex[:8]}/task/0/1"
    return TaskDispatch(
        attempt_id=attempt,
        run_id=attempt.split("/", 1)[0],
        task="task",
        execution=1,
        attempt=1,
        action_ref=action_ref,
        input=payload or {},
    )


def sample(metrics: Metrics, name: str, /, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


@dataclass
class Sink:
    """Collects reports; refuses the first ``refuse`` publishes."""

    refuse: int = 0
    published: list[WorkerReport] = field(default_factory=list)

    def publish(self, report: WorkerReport) -> None:
        if self.refuse:
            self.refuse -= 1
            raise ReportNotPublished("the broker is unreachable (simulated)")
        self.published.append(report)


@dataclass
class FakeRequest:
    delivery_info: dict[str, Any]
    hostname: str = HOST
    headers: dict[str, Any] = field(default_factory=dict)
    timelimit: tuple[float | None, float | None] = (None, None)


@dataclass
class FakeTask:
    """What ``run_dispatch`` reads of its bound Celery task."""

    worker_runtime: WorkerRuntime
    request: FakeRequest
    name: str = "treadle.run.python"


@pytest.fixture(scope="module")
def shipped() -> PackCatalog:
    return PackCatalog(pack_folders(Settings()))


def counted(sink: Sink, shipped: PackCatalog, **options: Any) -> tuple[Metrics, WorkerRuntime]:
    metrics = Metrics([MetricSource.WORKER])
    counters = WorkerCounters(metrics, work_queue_map(["gpu"], RABBIT), "treadle.tasks")
    runtime = WorkerRuntime(
        load_actions=options.pop("load_actions", shipped.catalog),
        runner_settings_for=lambda name: RunnerSettings.from_settings(Settings(), worker_name=name),
        reports=sink,
        identity=WorkerIdentity(HOST, 1),
        counters=counters,
    )
    return metrics, runtime


def run(runtime: WorkerRuntime, dispatch: Any, routing_key: str = "gpu.high") -> None:
    task = FakeTask(runtime, FakeRequest({"routing_key": routing_key}))
    run_dispatch(task, dispatch)


def test_a_task_counts_started_succeeded_and_its_runtime_under_its_work_queue(shipped):
    metrics, runtime = counted(Sink(), shipped)
    run(runtime, make_dispatch("core.sleep", {"seconds": 0.02}).model_dump(mode="json"))
    run(runtime, make_dispatch("core.noop").model_dump(mode="json"), routing_key="gpu")

    assert sample(metrics, "celery_task_started_total", **LABELS) == 2
    assert sample(metrics, "celery_task_succeeded_total", **LABELS) == 2
    assert sample(metrics, "celery_task_runtime_count", **LABELS) == 2
    assert sample(metrics, "celery_task_runtime_sum", **LABELS) >= 0.02
    assert sample(metrics, "celery_worker_tasks_active", hostname=HOST) == 0
    assert sample(metrics, "celery_task_started_total", **{**LABELS, "queue_name": "gpu.high"}) == 0


def test_an_action_that_fails_counts_failed_with_its_error_type(shipped):
    metrics, runtime = counted(Sink(), shipped)
    run(runtime, make_dispatch("core.fail", {"message": "no"}).model_dump(mode="json"))
    run(runtime, make_dispatch("no.such_action").model_dump(mode="json"))

    errors = {
        exception: sample(metrics, "celery_task_failed_total", **LABELS, exception=exception)
        for exception in ("ActionFailed", "UnknownAction")
    }
    assert sum(errors.values()) == 2, errors
    assert sample(metrics, "celery_task_succeeded_total", **LABELS) == 0
    assert sample(metrics, "celery_task_runtime_count", **LABELS) == 2


def test_a_report_that_cannot_be_published_counts_rejected_not_an_outcome(shipped):
    metrics, runtime = counted(Sink(refuse=1), shipped)
    with pytest.raises(Reject):
        run(runtime, make_dispatch("core.noop").model_dump(mode="json"))

    assert sample(metrics, "celery_task_rejected_total", **LABELS) == 1
    assert sample(metrics, "celery_task_succeeded_total", **LABELS) == 0
    assert sample(metrics, "celery_worker_tasks_active", hostname=HOST) == 0


def test_an_invalid_dispatch_counts_failed_and_one_without_attempt_rejected(shipped):
    metrics, runtime = counted(Sink(), shipped)
    run(runtime, {"attempt_id": "run-x/t/0/1", "action_ref": 7})
    run(runtime, {"nothing": "here"})

    invalid = sample(metrics, "celery_task_failed_total", **LABELS, exception="InvalidDispatch")
    assert invalid == 1
    assert sample(metrics, "celery_task_rejected_total", **LABELS) == 1
    assert sample(metrics, "celery_task_runtime_count", **LABELS) == 0  # no action ran


def test_a_timed_out_result_counts_as_failed_with_timeout():
    metrics = Metrics([MetricSource.WORKER])
    series = WorkerCounters(metrics, {}, "treadle.tasks").series("t", HOST, "q")
    series.ended(
        TaskResult(
            attempt_id="a",
            outcome=AttemptStatus.TIMED_OUT,
            error=ErrorInfo(type="Timeout", message="late"),
        ),
        2.0,
    )
    series.ended(TaskResult(attempt_id="b", outcome=AttemptStatus.FAILED), None)
    labels = {"name": "t", "hostname": HOST, "queue_name": "q"}
    assert sample(metrics, "celery_task_failed_total", **labels, exception="Timeout") == 1
    assert sample(metrics, "celery_task_failed_total", **labels, exception="failed") == 1
    assert sample(metrics, "celery_task_runtime_count", **labels) == 1


# -- Celery's signals -----------------------------------------------------------------------


@dataclass
class Sender:
    app: Any
    hostname: str = HOST


@dataclass
class Message:
    headers: dict[str, Any]
    delivery_info: dict[str, Any]


def test_signals_count_only_the_app_s_own_messages():
    metrics = Metrics([MetricSource.WORKER])
    app, other = object(), object()
    counting = CeleryCounting(
        app, WorkerCounters(metrics, work_queue_map(["gpu"], RABBIT), "gpu"), lambda: None
    )
    request = FakeRequest({"routing_key": "gpu.low"})
    request.name = "treadle.run.python"  # type: ignore[attr-defined]
    counting.on_received(sender=Sender(app), request=request)
    counting.on_received(sender=Sender(other), request=request)
    counting.on_rejected(sender=Sender(app), message=Message({}, {"routing_key": "gpu"}))

    assert sample(metrics, "celery_task_received_total", **LABELS) == 1
    unknown = {**LABELS, "name": "unknown"}
    assert sample(metrics, "celery_task_rejected_total", **unknown) == 1


# -- dead processes' live gauges --------------------------------------------------------------


class Nothing:
    def collect(self) -> list[Any]:
        return []


def test_a_scrape_drops_the_live_gauges_of_processes_that_are_gone(tmp_path: Path):
    gone = _dead_pid()
    alive = 1  # init: always there
    for pid in (gone, alive):
        (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
    (tmp_path / f"counter_{gone}.db").write_bytes(b"")
    assert live_gauge_pids(str(tmp_path)) == {gone, alive}

    LiveProcessesFirst(str(tmp_path), Nothing()).collect()  # type: ignore[arg-type]

    assert live_gauge_pids(str(tmp_path)) == {alive}
    assert (tmp_path / f"counter_{gone}.db").exists()  # counters keep what it counted


def _dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid
