"""The reconciler: overdue attempts time out, attempts on lost workers fail and are retried."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from treadle.common.statuses import AttemptStatus, RunStatus
from treadle.scheduler.service.process import SchedulerProcess

from .conftest import (
    FakeClock,
    ProcessFactory,
    SettingsFactory,
    WorkerFactory,
    client_runs,
    finish,
    wait_until,
)

pytestmark = pytest.mark.services


def test_an_attempt_with_no_result_by_its_deadline_times_out_with_the_reason_recorded(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    clock = FakeClock()
    settings = make_settings()
    process = start_scheduler(settings, clock=clock, timeout_grace=timedelta(seconds=30))
    worker = stand_in_worker(settings)
    run_id = client_runs(process).start(process.catalog.workflow("schedtest.slow_step"), {})
    process.step()
    lost = worker.receive_one()  # taken, and never reported on
    attempt_id = worker.dispatch_of(lost).attempt_id
    lost.ack()

    clock.advance(10 + 25)  # past the 10 s deadline, within the grace period
    assert attempt_id not in process.reconciler.reconcile(process.runs).timed_out
    clock.advance(10)
    reconciled = process.reconciler.reconcile(process.runs)
    assert attempt_id in reconciled.timed_out
    assert attempt_id in reconciled.revoke
    # A second reconciler (another scheduler) finds nothing left to do.
    assert attempt_id not in process.reconciler.reconcile(process.runs).timed_out

    with process.store.unit_of_work() as uow:
        attempt = uow.get_attempt(attempt_id)
    assert attempt.status is AttemptStatus.TIMED_OUT
    assert attempt.reason is not None
    assert attempt.reason.startswith("reconciler: no result by the deadline")
    finish(process, worker, run_id)  # the core's own (now stale) timeout timer changes nothing
    state = process.runs.load(run_id)
    assert state.status is RunStatus.SUCCEEDED
    slow = state.latest_execution("slow")
    assert slow.status.value == "timed_out"
    assert slow.error["type"] == "Timeout"
    assert slow.error["message"].endswith("(found by the reconciler: no result by the deadline)")
    assert "timeout of 10 s" in state.output["noticed"]


def test_a_worker_that_stops_answering_loses_its_attempt_and_the_retry_runs_elsewhere(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    clock = FakeClock()
    settings = make_settings(worker_lost_after=60)
    process = start_scheduler(settings, clock=clock, ping_timeout=0.2)
    ghost = stand_in_worker(settings, name="ghost@nowhere")
    run_id = client_runs(process).start(process.catalog.workflow("schedtest.retry_once"), {})
    process.step()
    message = ghost.receive_one()
    first = ghost.dispatch_of(message)
    ghost.started(first, at=clock())
    message.ack()
    wait_until(
        lambda: attempt_status(process, first.attempt_id) is AttemptStatus.RUNNING,
        between=lambda: process.step(0.05),
        what="the started notice",
    )

    clock.advance(30)  # silent, but not for long enough
    assert process.reconciler.reconcile(process.runs).lost == []
    clock.advance(31)
    reconciled = process.reconciler.reconcile(process.runs)
    assert reconciled.lost == [first.attempt_id]

    with process.store.unit_of_work() as uow:
        attempt = uow.get_attempt(first.attempt_id)
    assert attempt.status is AttemptStatus.FAILED
    assert attempt.error == {
        "type": "WorkerLost",
        "message": "worker ghost@nowhere stopped answering while running this attempt",
    }
    assert attempt.reason == "reconciler: worker ghost@nowhere did not answer pings for 61 s"
    # The task's retry policy sends attempt 2, which a live worker runs.
    finish(process, ghost, run_id)
    state = process.runs.load(run_id)
    assert state.status is RunStatus.SUCCEEDED
    with process.store.unit_of_work() as uow:
        attempts = [a.attempt for a in uow.list_attempts(run_id)]
    assert attempts == [1, 2]


def attempt_status(process: SchedulerProcess, attempt_id: str) -> AttemptStatus:
    with process.store.unit_of_work() as uow:
        return uow.get_attempt(attempt_id).status


@pytest.fixture
def live_celery_worker(broker_url: str) -> Iterator[str]:
    """A real Celery worker (it only answers pings), stopped by its pid afterwards."""
    name = "alive@treadle-test"
    env = {**os.environ, "PINGABLE_BROKER_URL": broker_url}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "pingable_app",
            "worker",
            "-P",
            "solo",
            "-n",
            name,
            "--without-mingle",
            "--without-gossip",
            "-l",
            "WARNING",
        ],
        cwd=Path(__file__).parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield name
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)


@pytest.mark.slow
def test_a_worker_that_answers_pings_keeps_its_attempt(
    make_settings: SettingsFactory,
    start_scheduler: ProcessFactory,
    stand_in_worker: WorkerFactory,
    live_celery_worker: str,
) -> None:
    clock = FakeClock()
    settings = make_settings(worker_lost_after=60)
    process = start_scheduler(settings, clock=clock, ping_timeout=1.0)
    wait_until(
        lambda: process.publisher.ping([live_celery_worker], 0.5) == {live_celery_worker},
        timeout=30,
        what="the Celery worker's first pong",
    )
    busy = stand_in_worker(settings, name=live_celery_worker)
    run_id = client_runs(process).start(process.catalog.workflow("schedtest.echo_once"), {})
    process.step()
    message = busy.receive_one()
    dispatch = busy.dispatch_of(message)
    busy.started(dispatch, at=clock())
    message.ack()
    wait_until(
        lambda: attempt_status(process, dispatch.attempt_id) is AttemptStatus.RUNNING,
        between=lambda: process.step(0.05),
        what="the started notice",
    )
    clock.advance(600)  # long silent on the results queue, but it answers pings
    assert process.reconciler.reconcile(process.runs).lost == []
    assert attempt_status(process, dispatch.attempt_id) is AttemptStatus.RUNNING
    assert process.runs.load(run_id).status is RunStatus.RUNNING
