"""The scheduler on a Redis broker: no confirms and no dead-letter queue, the same runs, and
work a lost worker had reserved runs again without waiting out the visibility timeout."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from treadle.common.statuses import AttemptStatus, RunStatus
from treadle.testing import throwaway_redis_database

from .conftest import (
    ProcessFactory,
    SettingsFactory,
    WorkerFactory,
    client_runs,
    finish,
    wait_until,
)

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with throwaway_redis_database() as url:
        yield url


def test_a_workflow_completes_through_the_scheduler_on_redis(
    make_settings: SettingsFactory,
    start_scheduler: ProcessFactory,
    stand_in_worker: WorkerFactory,
    redis_url: str,
) -> None:
    settings = make_settings(broker_url=redis_url)
    process = start_scheduler(settings)
    assert process.consumer.queues == [settings.results_queue]  # Redis has no dead letters
    worker = stand_in_worker(settings)
    run_id = client_runs(process).start(
        process.catalog.workflow("examples.sequential_publish"), {"a": 1, "b": 1}
    )

    def turn() -> None:
        worker.work(0.02)
        process.step(0.05)

    wait_until(
        lambda: process.runs.load(run_id).status.is_terminal, between=turn, what="the run's end"
    )
    state = process.runs.load(run_id)
    assert state.status is RunStatus.SUCCEEDED
    assert state.output["doubled"] == 4


def test_an_attempt_reserved_by_a_lost_worker_runs_again_without_the_visibility_timeout(
    make_settings: SettingsFactory,
    start_scheduler: ProcessFactory,
    stand_in_worker: WorkerFactory,
    redis_url: str,
) -> None:
    settings = make_settings(broker_url=redis_url, worker_lost_after=1)
    process = start_scheduler(settings, ping_timeout=0.2)
    worker = stand_in_worker(settings, name="reserver@nowhere")
    run_id = client_runs(process).start(process.catalog.workflow("schedtest.echo_once"), {})
    process.step()
    reserved = worker.dispatch_of(worker.receive_one())  # taken, never started nor acked
    # Redis would hand the message back only after its visibility timeout (hours); the
    # reconciler sees it reserved too long and never started, and runs the task again.
    wait_until(
        lambda: process.reconciler.reconcile(process.runs).lost == [reserved.attempt_id],
        what="the reserved attempt found lost",
    )
    with process.store.unit_of_work() as uow:
        attempt = uow.get_attempt(reserved.attempt_id)
    assert attempt.status is AttemptStatus.LOST
    assert attempt.reason is not None
    assert "a worker reserved it" in attempt.reason
    assert attempt.reason.endswith("ago and never started it")
    finish(process, worker, run_id)  # attempt 2 has a new id; the worker runs it
    assert process.runs.load(run_id).status is RunStatus.SUCCEEDED
    with process.store.unit_of_work() as uow:
        assert [a.attempt for a in uow.list_attempts(run_id)] == [1, 2]
