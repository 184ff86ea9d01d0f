"""The scheduler process end to end: runs complete through it, alone or two at once."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections import Counter

import pytest

from treadle.common.statuses import AttemptStatus, RunStatus
from treadle.scheduler.service.process import SchedulerProcess

from .conftest import (
    ProcessFactory,
    SettingsFactory,
    StandInWorker,
    WorkerFactory,
    client_runs,
    wait_until,
)

pytestmark = pytest.mark.services


def run_status(process: SchedulerProcess, run_id: str) -> RunStatus:
    return process.runs.load(run_id).status


def test_a_sequential_workflow_completes_through_the_scheduler_process(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    settings = make_settings()
    process = start_scheduler(settings)
    worker = stand_in_worker(settings)
    client = client_runs(process)
    run_id = client.start(process.catalog.workflow("examples.sequential_publish"), {"a": 4})

    # The client's NOTIFY wakes a waiting step at once: the first dispatch goes out well
    # before the step's 5 s timeout.
    began = time.monotonic()
    assert process.step(timeout=5.0)
    assert time.monotonic() - began < 2.0
    first = worker.receive_one()
    assert worker.dispatch_of(first).task == "add_numbers"
    first.requeue()

    def turn() -> None:
        worker.work(0.02)
        process.step(0.02)

    wait_until(lambda: run_status(process, run_id).is_terminal, between=turn, what="the run's end")
    state = process.runs.load(run_id)
    assert state.status is RunStatus.SUCCEEDED
    assert state.output["doubled"] == 14
    assert state.output["message"] == "(4 + 3) * 2 = 14"


def test_a_step_without_work_reports_that_nothing_happened(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory
) -> None:
    process = start_scheduler(make_settings())
    began = time.monotonic()
    assert process.step(timeout=0.2) is False
    assert time.monotonic() - began >= 0.15  # it waited for reports, it did not spin


def test_two_schedulers_complete_a_with_items_run_recording_each_item_once(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    settings = make_settings(result_batch_size=7)  # small batches: both get a share
    first = start_scheduler(settings, poll_interval=0.05)
    second = start_scheduler(settings, poll_interval=0.05)
    worker: StandInWorker = stand_in_worker(settings)
    stop = threading.Event()
    threads = [
        threading.Thread(target=first.run, args=(stop,), name="scheduler-1"),
        threading.Thread(target=second.run, args=(stop,), name="scheduler-2"),
    ]
    for thread in threads:
        thread.start()
    try:
        run_id = client_runs(first).start(first.catalog.workflow("schedtest.fan_out"), {})
        for process in (first, second):
            process.wake()
        wait_until(
            lambda: run_status(first, run_id).is_terminal,
            between=lambda: worker.work(0.02),
            timeout=60,
            what="the with_items run's end",
        )
    finally:
        stop.set()
        for process in (first, second):
            process.wake()
        for thread in threads:
            thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert first.reports_applied > 0  # both took a share of the reports
    assert second.reports_applied > 0

    state = first.runs.load(run_id)
    assert state.status is RunStatus.SUCCEEDED, state.error
    assert state.output["messages"] == [f"item {i}" for i in range(50)]
    with first.store.unit_of_work() as uow:
        attempts = uow.list_attempts(run_id)
        events = uow.list_events(run_id)
    assert len(attempts) == 50
    assert Counter(a.status for a in attempts) == {AttemptStatus.SUCCEEDED: 50}
    assert sorted(a.position for a in attempts) == list(range(50))
    succeeded = [e.event.attempt_id for e in events if e.event.kind == "task_succeeded"]
    assert sorted(succeeded) == sorted(a.attempt_id for a in attempts)


def close_broker_connections(broker_url: str) -> None:
    """Have RabbitMQ close every connection to the test's vhost (as a broker restart does)."""
    vhost = broker_url.rsplit("/", 1)[1]
    tool = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run(
        [tool, "-q", "close_all_connections", "-p", vhost, "test: broker went away"],
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_a_scheduler_whose_broker_connections_drop_reconnects_and_carries_on(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    settings = make_settings()
    process = start_scheduler(settings, poll_interval=0.05)
    worker = stand_in_worker(settings)
    stop = threading.Event()
    thread = threading.Thread(target=process.run, args=(stop,), name="scheduler")
    thread.start()
    try:
        run_id = client_runs(process).start(
            process.catalog.workflow("examples.sequential_publish"), {}
        )
        wait_until(lambda: worker.work(0.05) == 1, what="the first task")
        close_broker_connections(settings.broker_url)
        worker = stand_in_worker(settings)  # the old one's connection is gone too
        wait_until(
            lambda: run_status(process, run_id).is_terminal,
            between=lambda: worker.work(0.05),
            what="the run's end after the broker dropped the connections",
        )
    finally:
        stop.set()
        process.wake()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert run_status(process, run_id) is RunStatus.SUCCEEDED
