"""A Redis broker that restarts: what it lost runs again, what it kept runs once.

Each test restarts a ``redis-server`` of its own (on a free port), never the shared one.
The reconciler notices the restart by Redis's ``run_id`` and looks for the messages of the
attempts still queued: without persistence they are gone, and the attempts run again as
new attempts; with persistence they are still there, and nothing is dispatched again.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from treadle.common.statuses import AttemptStatus, RunStatus
from treadle.scheduler.service.process import SchedulerProcess
from treadle.testing import RedisInstance, redis_instance

from .conftest import (
    ProcessFactory,
    SettingsFactory,
    WorkerFactory,
    client_runs,
    finish,
    step_until_reconnected,
)

pytestmark = [pytest.mark.services, pytest.mark.slow]


# Listed first in each test's arguments, so the server outlives the scheduler and worker.
@pytest.fixture
def volatile_redis() -> Iterator[RedisInstance]:
    with redis_instance(persistence=False) as instance:
        yield instance


@pytest.fixture
def persistent_redis() -> Iterator[RedisInstance]:
    with redis_instance(persistence=True) as instance:
        yield instance


def _dispatched_then_restarted(process: SchedulerProcess, redis: RedisInstance) -> tuple[str, str]:
    """Start a run, relay its first dispatch, restart Redis; returns (run, attempt)."""
    before = redis.run_id()
    assert process.reconciler.broker_incarnation == before  # learnt at start
    run_id = client_runs(process).start(process.catalog.workflow("schedtest.echo_once"), {})
    process.step()
    with process.store.unit_of_work() as uow:
        [attempt] = uow.list_attempts(run_id)
    assert attempt.status is AttemptStatus.QUEUED
    redis.restart()
    assert redis.run_id() != before
    return run_id, attempt.attempt_id


def _attempts(process: SchedulerProcess, run_id: str) -> list[tuple[int, AttemptStatus]]:
    with process.store.unit_of_work() as uow:
        return [(a.attempt, a.status) for a in uow.list_attempts(run_id)]


def test_an_attempt_whose_message_vanished_with_a_restarted_redis_runs_again(
    volatile_redis: RedisInstance,
    make_settings: SettingsFactory,
    start_scheduler: ProcessFactory,
    stand_in_worker: WorkerFactory,
) -> None:
    settings = make_settings(broker_url=volatile_redis.url)
    process = start_scheduler(settings, ping_timeout=0.2)
    run_id, first = _dispatched_then_restarted(process, volatile_redis)

    reconciled = process.reconciler.reconcile(process.runs)
    assert reconciled.lost == [first]
    assert process.reconciler.broker_incarnation == volatile_redis.run_id()
    with process.store.unit_of_work() as uow:
        attempt = uow.get_attempt(first)
    assert attempt.status is AttemptStatus.LOST
    assert attempt.reason == "reconciler: the broker restarted and lost the message"
    assert attempt.error is not None
    assert attempt.error["type"] == "MessageLost"
    # The next pass finds nothing more: the restart was dealt with once.
    assert process.reconciler.reconcile(process.runs).lost == []

    step_until_reconnected(process)
    worker = stand_in_worker(settings)  # attempt 2 goes out at once; a worker runs it
    finish(process, worker, run_id)
    assert process.runs.load(run_id).status is RunStatus.SUCCEEDED
    assert _attempts(process, run_id) == [(1, AttemptStatus.LOST), (2, AttemptStatus.SUCCEEDED)]


def test_an_attempt_whose_message_survived_a_redis_restart_runs_once(
    persistent_redis: RedisInstance,
    make_settings: SettingsFactory,
    start_scheduler: ProcessFactory,
    stand_in_worker: WorkerFactory,
) -> None:
    settings = make_settings(broker_url=persistent_redis.url)
    process = start_scheduler(settings, ping_timeout=0.2)
    run_id, first = _dispatched_then_restarted(process, persistent_redis)

    assert process.reconciler.reconcile(process.runs).lost == []
    assert process.reconciler.broker_incarnation == persistent_redis.run_id()
    step_until_reconnected(process)
    worker = stand_in_worker(settings)
    message = worker.receive_one()  # the original message, kept by the append-only file
    dispatch = worker.dispatch_of(message)
    assert dispatch.attempt_id == first
    worker.started(dispatch)
    worker.run(dispatch)
    message.ack()
    finish(process, worker, run_id)
    assert process.runs.load(run_id).status is RunStatus.SUCCEEDED
    assert _attempts(process, run_id) == [(1, AttemptStatus.SUCCEEDED)]


def test_a_redis_restart_while_no_scheduler_ran_is_noticed_by_the_next_scheduler(
    volatile_redis: RedisInstance,
    make_settings: SettingsFactory,
    start_scheduler: ProcessFactory,
    stand_in_worker: WorkerFactory,
) -> None:
    settings = make_settings(broker_url=volatile_redis.url)
    first_scheduler = start_scheduler(settings, ping_timeout=0.2)
    before = volatile_redis.run_id()
    run_id = client_runs(first_scheduler).start(
        first_scheduler.catalog.workflow("schedtest.echo_once"), {}
    )
    first_scheduler.step()
    [attempt] = _attempts(first_scheduler, run_id)
    assert attempt == (1, AttemptStatus.QUEUED)
    first_scheduler.close()

    volatile_redis.restart()  # empty again, while no scheduler runs
    assert volatile_redis.run_id() != before

    process = start_scheduler(settings, ping_timeout=0.2)
    assert process.reconciler.broker_incarnation == before  # what the last scheduler saw
    reconciled = process.reconciler.reconcile(process.runs)
    assert len(reconciled.lost) == 1
    assert process.reconciler.broker_incarnation == volatile_redis.run_id()
    step_until_reconnected(process)
    finish(process, stand_in_worker(settings), run_id)
    assert process.runs.load(run_id).status is RunStatus.SUCCEEDED
    assert _attempts(process, run_id) == [(1, AttemptStatus.LOST), (2, AttemptStatus.SUCCEEDED)]
