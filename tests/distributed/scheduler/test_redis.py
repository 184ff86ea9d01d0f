"""The scheduler on a Redis broker: no confirms and no dead-letter queue, the same runs, and
work a lost worker had reserved runs again without waiting out the visibility timeout."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from treadle.common.messages import AttemptStarted, WorkerReport
from treadle.common.statuses import AttemptStatus, RunStatus
from treadle.scheduler.service.celery_publisher import CeleryPublisher
from treadle.scheduler.service.report_consumer import ReportConsumer
from treadle.scheduler.store.base import utc_now
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


#: A scheduler's report consumer that takes one batch and dies (SIGKILL) before acking it.
_TAKE_AND_DIE = """
import os, signal, sys
from treadle.common.settings import Settings
from treadle.scheduler.service.celery_publisher import CeleryPublisher
from treadle.scheduler.service.report_consumer import ReportConsumer
settings = Settings(broker_url=sys.argv[1], results_queue=sys.argv[2])
consumer = ReportConsumer(
    CeleryPublisher.from_settings(settings).app,
    broker_url=settings.broker_url,
    results_queue=settings.results_queue,
    prefetch=10,
)
consumer.connect()
batch = consumer.take(10, 10.0)
print(len(batch), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
def test_a_report_taken_by_a_scheduler_that_died_is_taken_again_after_a_short_timeout(
    make_settings: SettingsFactory, stand_in_worker: WorkerFactory, redis_url: str
) -> None:
    """Redis keeps a report the dead scheduler took (unacknowledged) aside; it comes back
    after the reports' own visibility timeout, not the task messages' hours."""
    settings = make_settings(broker_url=redis_url, redis_report_visibility_timeout=2)
    reporter = stand_in_worker(settings, name="reporter@host")
    attempt = f"r-{uuid.uuid4().hex[:16]}/1/0/1"
    reporter.report(
        WorkerReport.of(AttemptStarted(attempt_id=attempt, worker=reporter.name, at=utc_now()))
    )
    died = subprocess.run(
        [sys.executable, "-c", _TAKE_AND_DIE, settings.broker_url, settings.results_queue],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (died.returncode, died.stdout.strip()) == (-signal.SIGKILL, "1"), died.stderr

    publisher = CeleryPublisher.from_settings(settings)
    consumer = ReportConsumer(
        publisher.app,
        broker_url=settings.broker_url,
        results_queue=settings.results_queue,
        prefetch=10,
        redis_visibility_timeout=settings.redis_report_visibility_timeout,
    )
    taken: list[str] = []
    try:
        consumer.connect()
        began = time.monotonic()

        def take() -> None:
            batch = consumer.take(10, 0.2)
            taken.extend(started.attempt_id for started in batch.started)
            consumer.ack(batch)

        wait_until(lambda: taken == [attempt], between=take, timeout=30, what="the report again")
        assert time.monotonic() - began < 15
    finally:
        consumer.close()
        publisher.close()
