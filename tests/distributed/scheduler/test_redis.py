"""The scheduler on a Redis broker: no confirms and no dead-letter queue, the same runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from treadle.common.statuses import RunStatus
from treadle.testing import throwaway_redis_database

from .conftest import ProcessFactory, SettingsFactory, WorkerFactory, client_runs, wait_until

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
