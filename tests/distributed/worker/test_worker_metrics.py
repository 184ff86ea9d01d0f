"""``treadle worker --metrics-port``: a real prefork worker's Prometheus endpoint, scraped.

A real ``treadle worker --concurrency 2`` (prefork) on a queue of its own runs real
dispatches; its endpoint is scraped over HTTP. The pool processes count into
prometheus-client's multiprocess directory, so what the main process serves is the sum
over both (the ``mtest.pid`` action tells which pool process ran it). Every worker is
stopped by its pid; the temporary multiprocess directory goes with it.
"""

from __future__ import annotations

import re
import socket
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from treadle.common.settings import Settings
from treadle.common.statuses import AttemptStatus
from treadle.common.transport import band_queues
from treadle.scheduler.core.commands import DispatchTask
from treadle.scheduler.service.celery_publisher import CeleryPublisher
from treadle.worker.app import create_celery_app

pytestmark = [pytest.mark.services, pytest.mark.slow]

QUEUE = "metrics.tasks"
TASK = "treadle.run.python"

PID_PACK = {
    "pack.yaml": 'ref: mtest\nversion: "1.0.0"\ndescription: Metrics test actions.\n',
    "actions/pid.yaml": """
        name: pid
        description: Sleeps, then returns the id of the process that ran it.
        runner_type: python
        entry_point: actions.py:pid
        parameters:
          seconds: {type: number, required: true}
    """,
    "actions/actions.py": """
        import os
        import time


        def pid(seconds):
            time.sleep(seconds)
            return {"pid": os.getpid()}
    """,
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, /, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def node_of(worker: Any) -> str:
    """The node name ``--hostname <name>@%h`` gives (whatever the log's format)."""
    return f"{worker.name}@{socket.gethostname()}"


def directory_of(worker: Any) -> Path:
    found = re.search(r"pool processes count in (\S+)\)", worker.output())
    assert found, worker.output()
    return Path(found.group(1))


@pytest.fixture(scope="module")
def pid_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mpacks")
    for name, text in PID_PACK.items():
        path = root / "mtest" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def settings(rabbitmq_url: str) -> Settings:
    return Settings(broker_url=rabbitmq_url)


@pytest.fixture(scope="module")
def sender(settings: Settings) -> Iterator[Any]:
    app = create_celery_app(settings, queues=[QUEUE, "kept.tasks", "threads.tasks"])
    yield app
    app.close()


@pytest.fixture(scope="module")
def metered(
    rabbitmq_url: str, test_packs: Path, pid_pack: Path, module_worker_processes: Any
) -> tuple[Any, int]:
    """One prefork worker of concurrency 2 on QUEUE, with its metrics port."""
    port = free_port()
    worker = module_worker_processes(
        rabbitmq_url, "--concurrency", "2", "--pool", "prefork", "--queues", QUEUE,
        "--pack-path", str(test_packs), "--pack-path", str(pid_pack),
        "--metrics-port", str(port),
    )  # fmt: skip
    worker.wait_ready()
    return worker, port


def test_counts_add_up_over_both_pool_processes(
    settings, sender, metered, open_reports, make_dispatch, send_dispatch, wait
):
    worker, port = metered
    node = node_of(worker)
    before = scrape(port)
    ours = {"name": TASK, "hostname": node, "queue_name": QUEUE}
    oks = [make_dispatch("mtest.pid", {"seconds": 0.3}) for _ in range(6)]
    boom = make_dispatch("wtest.boom")
    high = make_dispatch("mtest.pid", {"seconds": 0.01}, queue=QUEUE)
    publisher = CeleryPublisher.from_settings(settings)
    try:
        with open_reports(settings) as reports:
            for dispatch in [*oks, boom]:
                send_dispatch(sender, dispatch, QUEUE)
            publisher.publish([DispatchTask(high, priority=9)])  # to the band queue
            results = [reports.wait_for_result(d.attempt_id) for d in [*oks, boom, high]]
    finally:
        publisher.close()
    assert [r.outcome for r in results] == [AttemptStatus.SUCCEEDED] * 6 + [
        AttemptStatus.FAILED,
        AttemptStatus.SUCCEEDED,
    ]
    pids = {r.result["pid"] for r in results if r.result}
    assert len(pids) == 2
    assert worker.pid not in pids

    def delta(name: str, /, **labels: str) -> float:
        return value(scrape(port), name, **labels) - value(before, name, **labels)

    # the counts land just after each result is published: wait for the last one
    wait(lambda: delta("celery_task_runtime_count", **ours) == 8, 10, "8 runtimes counted")
    after = scrape(port)

    def grown(name: str, /, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grown("celery_task_received_total", **ours) == 8  # by the main process
    assert grown("celery_task_started_total", **ours) == 8  # by the pool processes
    assert grown("celery_task_succeeded_total", **ours) == 7
    assert grown("celery_task_failed_total", **ours, exception="QuotaExceeded") == 1
    assert grown("celery_task_failed_total", **ours) == 1
    assert grown("celery_task_rejected_total", **ours) == 0
    assert grown("celery_task_runtime_sum", **ours) >= 6 * 0.3
    bucket = {**ours, "le": "0.25"}  # the 0.3 s ones are above it, the others below
    assert grown("celery_task_runtime_bucket", **bucket) == 2
    # the high band's queue counts under its work queue, as the scheduler's sent total does
    every_queue = {dict(labels).get("queue_name") for (_, labels) in after}
    assert not set(band_queues(QUEUE)[::2]) & every_queue
    assert value(after, "celery_worker_tasks_active", hostname=node) == 0
    # each pool process wrote its own file; the endpoint added them up
    files = {p.name for p in directory_of(worker).glob("counter_*.db")}
    assert {f"counter_{pid}.db" for pid in pids} <= files


def test_active_tasks_are_summed_over_live_processes(
    settings, sender, metered, open_reports, make_dispatch, send_dispatch, wait
):
    worker, port = metered
    node = node_of(worker)
    slow = [make_dispatch("mtest.pid", {"seconds": 2}) for _ in range(2)]
    with open_reports(settings) as reports:
        for dispatch in slow:
            send_dispatch(sender, dispatch, QUEUE)
        for dispatch in slow:
            reports.wait_for(dispatch.attempt_id, 1)  # started, in its pool process
        running = scrape(port)
        for dispatch in slow:
            reports.wait_for_result(dispatch.attempt_id)
    assert value(running, "celery_worker_tasks_active", hostname=node) == 2
    wait(
        lambda: value(scrape(port), "celery_worker_tasks_active", hostname=node) == 0,
        10,
        "no task active",
    )


def test_a_pool_process_killed_by_its_hard_time_limit_counts_failed_and_inactive(
    settings, sender, metered, open_reports, make_dispatch, send_dispatch, wait
):
    worker, port = metered
    node = node_of(worker)
    ours = {"name": TASK, "hostname": node, "queue_name": QUEUE}
    before = value(scrape(port), "celery_task_failed_total", **ours, exception="Timeout")
    # counted by the main process, which knows the queue from the dispatch alone
    dispatch = make_dispatch("wtest.stubborn", {"seconds": 30}, timeout_seconds=1, queue=QUEUE)
    with open_reports(settings) as reports:
        send_dispatch(sender, dispatch, QUEUE, soft_time_limit=1, time_limit=2)
        result = reports.wait_for_result(dispatch.attempt_id)
    assert result.outcome is AttemptStatus.TIMED_OUT
    # counted by the main process; the killed process's active gauge is dropped
    wait(
        lambda: (
            value(scrape(port), "celery_task_failed_total", **ours, exception="Timeout")
            == before + 1
        ),
        10,
        "the timeout counted",
    )
    wait(
        lambda: value(scrape(port), "celery_worker_tasks_active", hostname=node) == 0,
        10,
        "the killed process no longer active",
    )


def test_the_temporary_directory_goes_with_the_worker_and_a_given_one_is_kept(
    rabbitmq_url, settings, sender, worker_processes, open_reports, make_dispatch,
    send_dispatch, tmp_path, monkeypatch,
):  # fmt: skip
    own = worker_processes(
        rabbitmq_url, "-c", "1", "-Q", "own.tasks", "--metrics-port", str(free_port())
    )
    given = tmp_path / "prom"
    given.mkdir()
    with monkeypatch.context() as patch:  # the worker's environment is copied at its start
        patch.setenv("PROMETHEUS_MULTIPROC_DIR", str(given))
        kept = worker_processes(
            rabbitmq_url, "-c", "1", "-Q", "kept.tasks", "--metrics-port", str(free_port())
        )
    own.wait_ready()
    kept.wait_ready()
    made = directory_of(own)
    assert made.is_dir()
    assert made != given
    assert directory_of(kept) == given
    dispatch = make_dispatch("core.noop")
    with open_reports(settings) as reports:
        send_dispatch(sender, dispatch, "kept.tasks")
        reports.wait_for_result(dispatch.attempt_id)

    assert own.terminate() == 0
    assert kept.terminate() == 0
    assert not made.exists()
    assert list(given.glob("counter_*.db"))  # the user's directory, left as it is


def test_the_threads_pool_serves_a_plain_registry(
    rabbitmq_url, settings, sender, worker_processes, open_reports, make_dispatch, send_dispatch,
    wait,
):  # fmt: skip
    port = free_port()
    worker = worker_processes(
        rabbitmq_url, "-P", "threads", "-c", "2", "-Q", "threads.tasks",
        "--metrics-port", str(port),
    )  # fmt: skip
    worker.wait_ready()
    assert "pool processes count in" not in worker.output()
    dispatch = make_dispatch("core.noop")
    with open_reports(settings) as reports:
        send_dispatch(sender, dispatch, "threads.tasks")
        reports.wait_for_result(dispatch.attempt_id)
    ours = {"name": TASK, "hostname": node_of(worker), "queue_name": "threads.tasks"}
    wait(
        lambda: value(scrape(port), "celery_task_succeeded_total", **ours) == 1,
        10,
        "the task counted",
    )
    assert value(scrape(port), "celery_task_received_total", **ours) == 1


def test_a_busy_metrics_port_stops_the_worker_at_start(rabbitmq_url, worker_processes):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = worker_processes(rabbitmq_url, "--metrics-port", str(port))
        code = worker.process.wait(30)
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in worker.output()
