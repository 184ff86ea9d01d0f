"""``treadle scheduler --metrics-port``: a real scheduler and worker, their runs, a scrape.

A fresh PostgreSQL database and RabbitMQ vhost, a real ``treadle scheduler --metrics-port
<free port>`` and a real ``treadle worker`` (each stopped by pid). Three runs are started
with :class:`treadle.Client`: ``examples.nested_workflow`` (whose child run
``examples.hello_world`` the scheduler starts), ``examples.retry_backoff`` failing once
(one retry, then success) and failing for good (three retries, the run fails). Then the
scheduler's ``/metrics`` is scraped and each metric is checked against the database:

* ``celery_task_sent_total`` equals the attempts dispatched, by task name and logical queue,
  labelled with the scheduler's host; ``treadle_task_duration_seconds_count`` equals the
  attempts ended, by action and outcome; retries counted by action (both series);
* runs finished by workflow and status, the child run started by the scheduler (a run a
  client starts is counted by no server), run durations and context sizes;
* the completion -> dispatch latency, the state save timings, no save failure;
* the gauges: queue length and consumers of the default queue, the worker up, the
  outbox drained (no pending row, no age), no overdue timer, inquiry, stalled run or held
  dispatch.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from treadle.client import Client
from treadle.scheduler.store import Store
from treadle.scheduler.store.models import attempts
from treadle.testing import throwaway_postgres_database, throwaway_rabbitmq_vhost
from treadle.testing.processes import (
    SCHEDULER_READY,
    WORKER_READY,
    ServiceProcess,
    stop_all,
    treadle_environment,
    wait_until,
)

pytestmark = [pytest.mark.services, pytest.mark.slow]

QUEUE = "metrics_test"
SERVING = re.compile(r"serving metrics on http://127\.0\.0\.1:(\d+)/metrics")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(url: str) -> Samples:
    text = httpx.get(url, timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, metric: str, /, **labels: str) -> float:
    """The sum of ``metric``'s samples having ``labels``."""
    wanted = set(labels.items())
    return sum(value for (n, have), value in samples.items() if n == metric and wanted <= have)


def present(samples: Samples, metric: str, /, **labels: str) -> bool:
    wanted = set(labels.items())
    return any(n == metric and wanted <= have for n, have in samples)


def test_the_scheduler_exports_what_its_runs_did(tmp_path: Path) -> None:
    processes: list[ServiceProcess] = []
    with ExitStack() as stack:
        database_url = stack.enter_context(throwaway_postgres_database("treadle_metrics"))
        broker_url = stack.enter_context(throwaway_rabbitmq_vhost("treadle_metrics"))
        env = treadle_environment(
            database_url=database_url,
            broker_url=broker_url,
            default_queue=QUEUE,
            observe_seconds=0.5,
            log_level="INFO",
        )
        stack.callback(stop_all, processes)

        def start(name: str, *args: str) -> ServiceProcess:
            process = ServiceProcess(name, args, env, tmp_path / f"{name}.log")
            processes.append(process)
            return process

        port = free_port()
        worker_name = f"metrics-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        scheduler = start("scheduler", "scheduler", "--metrics-port", str(port))
        worker = start("worker", "worker", "--hostname", worker_name, "--concurrency", "2")
        scheduler.wait_for_log(SCHEDULER_READY, 60)
        worker.wait_for_log(WORKER_READY, 60)
        serving = SERVING.search(scheduler.output())
        assert serving is not None, scheduler.tail()
        assert int(serving.group(1)) == port
        url = f"http://127.0.0.1:{port}/metrics"

        counters = tmp_path / "flaky"
        counters.mkdir()
        with Client(database_url) as client:
            nested = client.start("examples.nested_workflow", {"name": "Ada"})
            once = client.start(
                "examples.retry_backoff", {"failures": 1, "counter_dir": str(counters)}
            )
            never = client.start(
                "examples.retry_backoff", {"failures": 9, "counter_dir": str(counters)}
            )
            assert client.wait(nested, timeout=60).succeeded
            assert client.wait(once, timeout=60).succeeded
            assert client.wait(never, timeout=60).status.value == "failed"

        store = Store.open(database_url, migrate=False)
        stack.callback(store.close)
        with store.unit_of_work() as uow:
            rows = uow.connection.execute(
                select(attempts.c.action_ref, attempts.c.status, attempts.c.queue)
            ).all()
        ended: dict[tuple[str, str], int] = {}
        for action, status, _queue in rows:
            ended[action, status] = ended.get((action, status), 0) + 1
        assert ended == {
            ("core.echo", "succeeded"): 3,  # the child's say_hello, report, report
            ("examples.flaky", "failed"): 1 + 4,
            ("examples.flaky", "succeeded"): 1,
        }

        def settled() -> Samples | None:
            samples = scrape(url)
            done = (
                total(samples, "treadle_task_duration_seconds_count") == len(rows)
                and total(samples, "treadle_outbox_pending") == 0
                and total(samples, "celery_worker_up", hostname=worker_name) == 1
                and total(samples, "celery_active_consumer_count", queue_name=QUEUE) == 1
                and present(samples, "treadle_runs_stalled")
            )
            return samples if done else None

        samples = wait_until(settled, 30, "the scheduler's metrics settling", describe=lambda: "")
        check_tasks(samples, len(rows), ended, host=socket.gethostname())
        check_runs(samples)
        check_timings(samples)
        check_gauges(samples, worker_name)


def check_tasks(
    samples: Samples, dispatched: int, ended: dict[tuple[str, str], int], *, host: str
) -> None:
    sent = total(samples, "celery_task_sent_total")
    assert sent == dispatched
    assert (
        total(
            samples,
            "celery_task_sent_total",
            name="treadle.run.python",
            queue_name=QUEUE,
            hostname=host,
        )
        == dispatched
    )  # the logical queue, never a priority band
    for (action, status), count in ended.items():
        assert (
            total(samples, "treadle_task_duration_seconds_count", action=action, status=status)
            == count
        ), (action, status)
    assert total(samples, "treadle_task_retries_total", action="examples.flaky") == 1 + 3
    assert total(samples, "celery_task_retried_total", queue_name=QUEUE) == 1 + 3
    assert total(samples, "celery_task_revoked_total") == 0


def check_runs(samples: Samples) -> None:
    finished: Callable[..., float] = lambda **labels: total(  # noqa: E731
        samples, "treadle_runs_finished_total", **labels
    )
    assert finished(workflow="examples.nested_workflow", status="succeeded") == 1
    assert finished(workflow="examples.hello_world", status="succeeded") == 1
    assert finished(workflow="examples.retry_backoff", status="succeeded") == 1
    assert finished(workflow="examples.retry_backoff", status="failed") == 1
    assert total(samples, "treadle_runs_finished_total") == 4
    # Only the child run was started by the scheduler (the client started the others).
    assert total(samples, "treadle_runs_started_total") == 1
    assert total(samples, "treadle_runs_started_total", workflow="examples.hello_world") == 1
    assert total(samples, "treadle_run_duration_seconds_count") == 4
    assert total(samples, "treadle_run_duration_seconds_sum") > 0
    assert total(samples, "treadle_context_bytes_count") == 4
    assert total(samples, "treadle_template_errors_total") == 0


def check_timings(samples: Samples) -> None:
    assert total(samples, "treadle_dispatch_latency_seconds_count") >= 1
    assert total(samples, "treadle_state_save_seconds_count") >= 1
    assert total(samples, "treadle_state_save_failures_total") == 0


def check_gauges(samples: Samples, worker_name: str) -> None:
    assert total(samples, "celery_worker_up", hostname=worker_name) == 1
    assert present(samples, "celery_queue_length", queue_name=QUEUE)
    assert total(samples, "celery_queue_length", queue_name=QUEUE) == 0
    assert total(samples, "celery_active_consumer_count", queue_name=QUEUE) == 1
    assert not present(samples, "celery_queue_length", queue_name=f"{QUEUE}.high")
    for gauge in (
        "treadle_outbox_pending",
        "treadle_outbox_oldest_age_seconds",
        "treadle_timers_overdue",
        "treadle_attempts_past_deadline",
        "treadle_inquiries_pending",
        "treadle_runs_stalled",
    ):
        assert present(samples, gauge), gauge
        assert total(samples, gauge) == 0, gauge
    assert present(samples, "treadle_flow_waiting", kind="concurrency")
    assert total(samples, "treadle_flow_waiting") == 0
