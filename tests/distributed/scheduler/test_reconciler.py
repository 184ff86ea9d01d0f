"""The reconciler: overdue attempts time out; attempts on lost workers run again as new
attempts, without charging the task's retry policy, up to the delivery limit."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from treadle.common.messages import TaskDispatch
from treadle.common.statuses import AttemptStatus, RunStatus
from treadle.common.transport import WorkerState
from treadle.scheduler.service.process import SchedulerProcess

from .conftest import (
    FakeClock,
    ProcessFactory,
    SettingsFactory,
    StandInWorker,
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


def _lost_on_a_silent_worker(
    process: SchedulerProcess, clock: FakeClock, ghost: StandInWorker, pid: int | None = None
) -> TaskDispatch:
    """Let ``ghost`` take the next attempt, start it and fall silent; returns its dispatch."""
    process.step()
    message = ghost.receive_one()
    attempt = ghost.dispatch_of(message)
    ghost.started(attempt, at=clock(), pid=pid)
    message.ack()
    wait_until(
        lambda: attempt_status(process, attempt.attempt_id) is AttemptStatus.RUNNING,
        between=lambda: process.step(0.05),
        what="the started notice",
    )
    return attempt


def test_a_worker_that_stops_answering_loses_its_attempt_and_it_runs_again_elsewhere(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    clock = FakeClock()
    settings = make_settings(worker_lost_after=60)
    process = start_scheduler(settings, clock=clock, ping_timeout=0.2)
    ghost = stand_in_worker(settings, name="ghost@nowhere")
    # echo_once has no retry policy: a lost worker is not the action's fault.
    run_id = client_runs(process).start(process.catalog.workflow("schedtest.echo_once"), {})
    first = _lost_on_a_silent_worker(process, clock, ghost)

    clock.advance(30)  # silent, but not for long enough
    assert process.reconciler.reconcile(process.runs).lost == []
    clock.advance(31)
    reconciled = process.reconciler.reconcile(process.runs)
    assert reconciled.lost == [first.attempt_id]

    with process.store.unit_of_work() as uow:
        attempt = uow.get_attempt(first.attempt_id)
    assert attempt.status is AttemptStatus.LOST
    assert attempt.error == {
        "type": "WorkerLost",
        "message": "worker ghost@nowhere stopped answering while running this attempt",
    }
    assert attempt.reason == "reconciler: worker ghost@nowhere did not answer pings for 61 s"
    # Attempt 2 (a new id) goes out at once; a live worker runs it.
    finish(process, ghost, run_id)
    state = process.runs.load(run_id)
    assert state.status is RunStatus.SUCCEEDED
    with process.store.unit_of_work() as uow:
        attempts = [(a.attempt, a.status) for a in uow.list_attempts(run_id)]
    assert attempts == [(1, AttemptStatus.LOST), (2, AttemptStatus.SUCCEEDED)]


def test_a_unit_lost_more_often_than_the_delivery_limit_fails_for_good(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    clock = FakeClock()
    settings = make_settings(worker_lost_after=60, delivery_limit=1)
    process = start_scheduler(settings, clock=clock, ping_timeout=0.2)
    ghost = stand_in_worker(settings, name="ghost@nowhere")
    run_id = client_runs(process).start(process.catalog.workflow("schedtest.echo_once"), {})
    for _ in range(2):
        _lost_on_a_silent_worker(process, clock, ghost)
        clock.advance(61)
        assert process.reconciler.reconcile(process.runs).lost
    state = process.runs.load(run_id)
    assert state.status is RunStatus.FAILED
    error = state.latest_execution("say").error
    assert error["type"] == "DeliveryLimitExceeded"
    assert error["message"].startswith("the task's attempts were lost 2 times")


def test_silence_while_the_broker_was_unreachable_does_not_count(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    clock = FakeClock()
    settings = make_settings(worker_lost_after=60)
    process = start_scheduler(settings, clock=clock, ping_timeout=0.2)
    ghost = stand_in_worker(settings, name="ghost@nowhere")
    run_id = client_runs(process).start(process.catalog.workflow("schedtest.echo_once"), {})
    first = _lost_on_a_silent_worker(process, clock, ghost)
    reconciler = process.reconciler
    answer = reconciler._ping

    def broker_down(_workers: object, _timeout: float) -> set[str]:
        raise ConnectionError("the broker is down")

    reconciler._ping = broker_down
    clock.advance(600)  # ten minutes without a broker, so without a word from anyone
    assert reconciler.reconcile(process.runs).lost == []
    reconciler._ping = answer
    assert reconciler.reconcile(process.runs).lost == []  # back: the clock starts again
    clock.advance(30)
    assert reconciler.reconcile(process.runs).lost == []
    assert attempt_status(process, first.attempt_id) is AttemptStatus.RUNNING
    clock.advance(31)  # now it has been silent for 61 s with the broker up
    assert reconciler.reconcile(process.runs).lost == [first.attempt_id]
    finish(process, ghost, run_id)  # attempt 2 runs; nothing is left for the next test
    assert process.runs.load(run_id).status is RunStatus.SUCCEEDED


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
        lambda: set(process.publisher.ping([live_celery_worker], 0.5)) == {live_celery_worker},
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


def test_a_worker_restarted_under_its_name_does_not_vouch_for_its_predecessor(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    clock = FakeClock()
    settings = make_settings(worker_lost_after=60)
    process = start_scheduler(settings, clock=clock, ping_timeout=0.2)
    ghost = stand_in_worker(settings, name="phoenix@host")
    run_id = client_runs(process).start(process.catalog.workflow("schedtest.echo_once"), {})
    first = _lost_on_a_silent_worker(process, clock, ghost, pid=111)
    reconciler = process.reconciler
    reconciler._ping = lambda workers, _timeout: dict.fromkeys(workers, WorkerState(111))
    assert reconciler.reconcile(process.runs).lost == []  # the same incarnation answers
    restarted = WorkerState(222, frozenset())
    reconciler._ping = lambda workers, _timeout: dict.fromkeys(workers, restarted)
    assert reconciler.reconcile(process.runs).lost == [first.attempt_id]  # at once, no wait
    with process.store.unit_of_work() as uow:
        attempt = uow.get_attempt(first.attempt_id)
    assert attempt.status is AttemptStatus.LOST
    assert (
        attempt.reason == "reconciler: worker phoenix@host restarted (pid 111 is gone, 222 answers)"
    )
    assert attempt.error == {
        "type": "WorkerLost",
        "message": "worker phoenix@host restarted while running this attempt",
    }
    finish(process, ghost, run_id)
    assert process.runs.load(run_id).status is RunStatus.SUCCEEDED


def test_an_attempt_its_live_worker_no_longer_holds_runs_again_once_its_result_is_overdue(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    """The worker lives and answers, but the attempt the database says it runs is no longer
    among those it holds, and no result came: the result was lost on the way (a Redis
    broker restarted empty took it along). After ``worker_lost_after`` it runs again."""
    clock = FakeClock()
    settings = make_settings(worker_lost_after=60)
    process = start_scheduler(settings, clock=clock, ping_timeout=0.2)
    keeper = stand_in_worker(settings, name="keeper@host")
    run_id = client_runs(process).start(process.catalog.workflow("schedtest.echo_once"), {})
    first = _lost_on_a_silent_worker(process, clock, keeper, pid=111)
    reconciler = process.reconciler

    def answering(state: WorkerState) -> Callable[[Sequence[str], float], dict[str, WorkerState]]:
        # Other tests' workers answer too, without telling what they hold.
        return lambda workers, _timeout: {
            w: state if w == "keeper@host" else WorkerState() for w in workers
        }

    reconciler._ping = answering(WorkerState(111, frozenset({first.attempt_id})))
    clock.advance(600)  # it runs long, and says so
    assert reconciler.reconcile(process.runs).lost == []

    reconciler._ping = answering(WorkerState(111, frozenset()))
    assert reconciler.reconcile(process.runs).lost == []  # its result may be on the way
    clock.advance(60)
    assert reconciler.reconcile(process.runs).lost == []
    clock.advance(1)
    assert reconciler.reconcile(process.runs).lost == [first.attempt_id]
    with process.store.unit_of_work() as uow:
        attempt = uow.get_attempt(first.attempt_id)
    assert attempt.status is AttemptStatus.LOST
    assert attempt.reason == (
        "reconciler: worker keeper@host no longer holds it and no result came for 61 s"
    )
    assert attempt.error == {
        "type": "WorkerLost",
        "message": "the result of this attempt on keeper@host was lost",
    }
    finish(process, keeper, run_id)
    assert process.runs.load(run_id).status is RunStatus.SUCCEEDED
