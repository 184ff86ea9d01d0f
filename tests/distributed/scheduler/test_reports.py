"""Worker reports and dead letters: duplicates are harmless, crashing tasks end for good."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kombu import Connection, Producer
from kombu.message import Message

from treadle.common.messages import ErrorInfo, TaskResult, WorkerReport
from treadle.common.statuses import AttemptStatus, RunStatus
from treadle.common.transport import DEAD_LETTER_QUEUE, plain_queue
from treadle.scheduler.service.celery_publisher import dead_letter_queue, kombu_queue
from treadle.scheduler.service.process import SchedulerProcess
from treadle.scheduler.service.report_consumer import dead_letter_attempt
from treadle.scheduler.store import AttemptEntry

from .conftest import (
    ProcessFactory,
    SettingsFactory,
    WorkerFactory,
    client_runs,
    finish,
    wait_until,
)
from .test_publisher import ControlListener

pytestmark = pytest.mark.services


def attempt_of(process: SchedulerProcess, attempt_id: str) -> AttemptEntry:
    with process.store.unit_of_work() as uow:
        return uow.get_attempt(attempt_id)


def events_of(process: SchedulerProcess, run_id: str) -> list[tuple[str, str]]:
    with process.store.unit_of_work() as uow:
        return [(e.event.kind, getattr(e.event, "attempt_id", "")) for e in uow.list_events(run_id)]


def test_a_result_delivered_twice_is_recorded_once(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    settings = make_settings()
    process = start_scheduler(settings)
    worker = stand_in_worker(settings)
    run_id = client_runs(process).start(process.catalog.workflow("schedtest.echo_once"), {})
    process.step()
    message = worker.receive_one()
    dispatch = worker.dispatch_of(message)
    worker.started(dispatch)
    wait_until(
        lambda: attempt_of(process, dispatch.attempt_id).status is AttemptStatus.RUNNING,
        between=lambda: process.step(0.05),
        what="the started notice",
    )
    result = worker.run(dispatch)
    worker.report(WorkerReport.of(result))  # the same result again (a redelivery)
    worker.started(dispatch)  # and a late started notice
    message.ack()
    wait_until(
        lambda: process.runs.load(run_id).status.is_terminal,
        between=lambda: process.step(0.05),
        what="the run's end",
    )
    process.step(0.2)  # whatever of the copies came later

    assert process.runs.load(run_id).status is RunStatus.SUCCEEDED
    with process.store.unit_of_work() as uow:
        [attempt] = uow.list_attempts(run_id)
    assert attempt.status is AttemptStatus.SUCCEEDED
    assert attempt.deliveries == 1
    assert events_of(process, run_id).count(("task_succeeded", dispatch.attempt_id)) == 1


def test_a_result_for_a_superseded_attempt_changes_nothing(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    settings = make_settings()
    process = start_scheduler(settings)
    worker = stand_in_worker(settings)
    run_id = client_runs(process).start(process.catalog.workflow("schedtest.retry_once"), {})
    process.step()
    first = worker.receive_one()
    first_dispatch = worker.dispatch_of(first)
    worker.started(first_dispatch)
    worker.report(
        WorkerReport.of(
            TaskResult(
                attempt_id=first_dispatch.attempt_id,
                outcome=AttemptStatus.FAILED,
                error=ErrorInfo(type="Flaky", message="not this time"),
                worker=worker.name,
            )
        )
    )
    first.ack()
    second = None
    while second is None:  # the failure is applied, the retry timer fires, attempt 2 goes out
        process.step(0.05)
        received = worker.receive(0.05)
        second = received[0] if received else None
    second_dispatch = worker.dispatch_of(second)
    assert second_dispatch.attempt == 2
    # Attempt 1 "succeeds" late (say, a worker that was thought lost): it is superseded.
    worker.report(
        WorkerReport.of(
            TaskResult(
                attempt_id=first_dispatch.attempt_id,
                outcome=AttemptStatus.SUCCEEDED,
                result={"message": "too late"},
                worker=worker.name,
            )
        )
    )
    process.step(1.0)
    assert process.runs.load(run_id).status is RunStatus.RUNNING
    worker.started(second_dispatch)
    worker.run(second_dispatch)
    second.ack()
    finish(process, worker, run_id)

    state = process.runs.load(run_id)
    assert state.status is RunStatus.SUCCEEDED
    assert state.latest_execution("flaky").result == {"message": "second time lucky"}
    with process.store.unit_of_work() as uow:
        attempts = {a.attempt: a for a in uow.list_attempts(run_id)}
    assert attempts[1].status is AttemptStatus.FAILED
    assert attempts[2].status is AttemptStatus.SUCCEEDED
    logged = events_of(process, run_id)
    assert ("task_succeeded", first_dispatch.attempt_id) not in logged
    assert logged.count(("task_failed", first_dispatch.attempt_id)) == 1
    assert logged.count(("task_succeeded", second_dispatch.attempt_id)) == 1


def test_an_attempt_started_past_the_delivery_limit_fails_for_good_and_is_revoked(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    settings = make_settings(delivery_limit=2)
    process = start_scheduler(settings)
    worker = stand_in_worker(settings)
    control = ControlListener(settings.broker_url)
    try:
        run_id = client_runs(process).start(
            process.catalog.workflow("schedtest.crash_then_recover"), {}
        )
        process.step()
        message = worker.receive_one()
        crash = worker.dispatch_of(message)
        for _ in range(3):  # started three times: its worker "died" each time
            worker.started(crash, at=datetime.now(UTC))
        message.ack()
        finish(process, worker, run_id)
        assert crash.attempt_id in control.revoked()
    finally:
        control.close()

    state = process.runs.load(run_id)
    assert state.status is RunStatus.SUCCEEDED  # the failure transition handled it
    assert state.output == {"recovered": "recovered from DeliveryLimitExceeded"}
    crashed = state.latest_execution("crash")
    assert crashed.error["type"] == "DeliveryLimitExceeded"
    assert "started 3 times without finishing" in crashed.error["message"]
    with process.store.unit_of_work() as uow:
        crash_attempts = [
            a
            for a in uow.list_attempts(run_id)
            if a.attempt_id.startswith(crash.attempt_id.rsplit("/", 1)[0] + "/")
        ]
    # Not retried, although the task has retries left: trying again cannot help.
    assert [a.attempt for a in crash_attempts] == [1]
    assert crash_attempts[0].status is AttemptStatus.FAILED
    assert crash_attempts[0].deliveries == 3
    assert "delivery limit" in (crash_attempts[0].reason or "")


def test_a_task_message_dead_lettered_by_the_broker_fails_its_attempt(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    settings = make_settings(delivery_limit=1)
    process = start_scheduler(settings)
    worker = stand_in_worker(settings)
    run_id = client_runs(process).start(
        process.catalog.workflow("schedtest.crash_then_recover"), {}
    )
    process.step()
    crash = None
    for _ in range(2):  # delivered, handed back; delivered again, handed back: dead
        message = worker.receive_one()
        crash = worker.dispatch_of(message)
        message.requeue()
    assert crash is not None
    finish(process, worker, run_id)

    state = process.runs.load(run_id)
    assert state.status is RunStatus.SUCCEEDED
    assert state.output == {"recovered": "recovered from DeliveryLimitExceeded"}
    with process.store.unit_of_work() as uow:
        attempt = uow.get_attempt(crash.attempt_id)
    assert attempt.status is AttemptStatus.FAILED
    assert attempt.error is not None
    assert attempt.error["type"] == "DeliveryLimitExceeded"
    assert attempt.reason == "dead-lettered by the broker: delivery limit exceeded"


def test_a_dead_lettered_message_names_its_attempt_in_the_attempt_header(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    """RabbitMQ keeps a dead-lettered message's headers and adds its own (x-death ...)."""
    settings = make_settings(delivery_limit=1)
    process = start_scheduler(settings)
    worker = stand_in_worker(settings)
    process.consumer.close()  # read the dead-letter queue ourselves below
    client_runs(process).start(process.catalog.workflow("schedtest.echo_once"), {})
    process.services.relay.drain()
    for _ in range(2):
        message = worker.receive_one()
        attempt_id = worker.dispatch_of(message).attempt_id
        message.requeue()
    got: list[Message] = []
    with Connection(settings.broker_url) as connection:
        queue = dead_letter_queue(settings.broker_url).bind(connection.default_channel)

        def fetched() -> bool:
            message = queue.get(no_ack=True)
            if message is not None:
                got.append(message)
            return bool(got)

        wait_until(fetched, timeout=10, what="a dead letter")
    [dead] = got
    assert dead.headers["x-first-death-reason"] == "delivery_limit"
    assert dead.headers["x-first-death-queue"] == settings.default_queue
    assert dead.delivery_info["routing_key"] == DEAD_LETTER_QUEUE
    assert dead_letter_attempt(dead) == attempt_id


def test_an_undecodable_report_is_dropped_without_blocking_the_queue(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    settings = make_settings()
    process = start_scheduler(settings)
    worker = stand_in_worker(settings)
    with Connection(settings.broker_url) as connection:
        producer = Producer(connection.default_channel)
        for body in ("not json at all", '{"kind": "gossip"}'):
            producer.publish(
                body, exchange="", routing_key=settings.results_queue, content_type="text/plain"
            )
    run_id = client_runs(process).start(process.catalog.workflow("schedtest.echo_once"), {})
    finish(process, worker, run_id)
    assert process.runs.load(run_id).status is RunStatus.SUCCEEDED
    with Connection(settings.broker_url) as connection:
        results = kombu_queue(plain_queue(settings.results_queue, settings.broker_url))
        _, ready, _ = results.bind(connection.default_channel).queue_declare(passive=True)
    assert ready == 0
