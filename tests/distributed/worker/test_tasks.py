"""The ``treadle.run.*`` tasks on a real RabbitMQ vhost, with a worker in a test thread.

What the scheduler sees: for every dispatch, a ``started`` report and then the result, on
the results queue, naming the worker; the dispatch message acknowledged afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from treadle.common.messages import WorkerReport
from treadle.common.settings import Settings
from treadle.common.statuses import AttemptStatus
from treadle.common.transport import ATTEMPT_HEADER, DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE
from treadle.worker.app import create_celery_app, create_worker_app, results_queue
from treadle.worker.catalog_loader import PackCatalog, pack_folders
from treadle.worker.execute import RunnerSettings
from treadle.worker.reports import ReportNotPublished, ReportPublisher
from treadle.worker.tasks import WorkerRuntime, register_tasks

pytestmark = pytest.mark.services


@pytest.fixture
def settings(rabbitmq_url: str, test_packs: Path) -> Settings:
    # Started notices at once, so each test sees every report its task makes; the default
    # (only actions still running after a quarter of a second are announced) is tested in
    # test_by_default_only_slow_actions_report_started.
    return Settings(
        broker_url=rabbitmq_url, pack_paths=[str(test_packs)], worker_started_notice_after=0
    )


@pytest.fixture
def app(settings: Settings) -> Any:
    return create_worker_app(settings)


@pytest.fixture
def worker(app: Any, worker_thread: Any) -> Iterator[Any]:
    with worker_thread(app, pool="threads", concurrency=2) as running:
        yield running


def test_a_dispatch_is_reported_started_then_succeeded_and_acknowledged(
    settings, app, worker, open_reports, make_dispatch, send_dispatch, queue_counts, wait
):
    dispatch = make_dispatch("core.echo", {"message": "hello"})
    with open_reports(settings) as reports:
        send_dispatch(app, dispatch, settings.default_queue)
        started, finished = reports.wait_for(dispatch.attempt_id, 2)

    assert started.kind == "started"
    assert started.started is not None
    assert started.started.worker == worker.hostname  # the Celery node name, as Flower shows
    assert finished.kind == "result"
    result = finished.result
    assert result is not None
    assert result.outcome is AttemptStatus.SUCCEEDED
    assert result.result == {"message": "hello"}
    assert result.worker == worker.hostname
    assert reports.headers[0][ATTEMPT_HEADER] == dispatch.attempt_id
    wait(
        lambda: queue_counts(settings.broker_url)[settings.default_queue] == (0, 0),
        10,
        "the dispatch to be acknowledged",
    )


def test_an_action_that_raises_is_reported_failed_with_its_error_type(
    settings, app, worker, open_reports, make_dispatch, send_dispatch
):
    dispatch = make_dispatch("wtest.boom")
    with open_reports(settings) as reports:
        send_dispatch(app, dispatch, settings.default_queue)
        result = reports.wait_for_result(dispatch.attempt_id)

    assert result.outcome is AttemptStatus.FAILED
    assert result.error is not None
    assert result.error.type == "QuotaExceeded"
    assert result.error.message == "over the quota"


def test_an_invalid_dispatch_fails_its_attempt_without_echoing_the_input(
    settings, app, worker, open_reports, send_dispatch, make_dispatch
):
    bad = {"attempt_id": "run-bad/task/0/1", "input": {"password": "hunter2"}}
    with open_reports(settings) as reports:
        app.send_task("treadle.run.python", args=[bad], queue=settings.default_queue)
        result = reports.wait_for_result("run-bad/task/0/1")

    assert result.outcome is AttemptStatus.FAILED
    assert result.error is not None
    assert result.error.type == "InvalidDispatch"
    assert "action_ref" in result.error.message
    assert "hunter2" not in result.error.message
    assert [r.kind for r in reports.of("run-bad/task/0/1")] == ["result"]  # never started


def test_a_dispatch_without_an_attempt_id_is_dropped_not_redelivered(
    settings, app, worker, open_reports, make_dispatch, send_dispatch, queue_counts, wait
):
    after = make_dispatch("core.noop")
    with open_reports(settings) as reports:
        app.send_task("treadle.run.python", args=[{"no": "attempt"}], queue=settings.default_queue)
        app.send_task("treadle.run.python", args=[], queue=settings.default_queue)
        send_dispatch(app, after, settings.default_queue)
        reports.wait_for(after.attempt_id, 2)
        wait(
            lambda: queue_counts(settings.broker_url)[settings.default_queue] == (0, 0),
            10,
            "every message to be acknowledged",
        )
    assert {report_attempt(r) for r in reports.received} == {after.attempt_id}


def report_attempt(report: WorkerReport) -> str:
    message = report.started or report.result
    assert message is not None
    return message.attempt_id


def test_the_worker_declares_quorum_queues_with_a_delivery_limit_and_dead_lettering(
    settings, worker, list_queues, list_exchanges
):
    queues = {row[0]: row for row in list_queues(settings.broker_url)}

    _, kind, arguments = queues[settings.default_queue]
    assert kind == "quorum"
    assert '{"x-delivery-limit",5}' in arguments
    assert f'{{"x-dead-letter-exchange","{DEAD_LETTER_EXCHANGE}"}}' in arguments
    assert f'{{"x-dead-letter-routing-key","{DEAD_LETTER_QUEUE}"}}' in arguments
    assert queues[settings.results_queue][1] == "quorum"
    assert queues[DEAD_LETTER_QUEUE][1] == "quorum"
    exchanges = list_exchanges(settings.broker_url)
    assert DEAD_LETTER_EXCHANGE in exchanges
    # Celery's native delayed delivery (for ETA tasks, which Treadle never sends) is off.
    assert not [e for e in exchanges if e.startswith("celery_delayed")]


class FailingOnce:
    """A report sink that refuses its first report, then publishes through the real one."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.refused = 0

    def publish(self, report: WorkerReport) -> None:
        if self.refused == 0:
            self.refused += 1
            raise ReportNotPublished("the broker is unreachable (simulated)")
        self.real.publish(report)


def test_a_report_that_cannot_be_published_leaves_the_message_for_redelivery(
    rabbitmq_url, test_packs, worker_thread, open_reports, make_dispatch, send_dispatch
):
    settings = Settings(
        broker_url=rabbitmq_url,
        pack_paths=[str(test_packs)],
        default_queue="flaky.tasks",
        results_queue="flaky.results",
    )
    app = create_celery_app(settings)
    sink = FailingOnce(ReportPublisher(app.connection_for_write, results_queue(settings)))
    register_tasks(
        app,
        WorkerRuntime(
            load_actions=PackCatalog(pack_folders(settings)).catalog,
            runner_settings_for=lambda name: RunnerSettings.from_settings(
                settings, worker_name=name
            ),
            reports=sink,
        ),
    )
    dispatch = make_dispatch("core.echo", {"message": "again"})

    with worker_thread(app, pool="threads"), open_reports(settings) as reports:
        send_dispatch(app, dispatch, settings.default_queue)
        result = reports.wait_for_result(dispatch.attempt_id)

    assert sink.refused == 1
    assert result.outcome is AttemptStatus.SUCCEEDED
    assert result.result == {"message": "again"}
    assert [r.kind for r in reports.of(dispatch.attempt_id)] == ["started", "result"]


def test_a_message_past_the_delivery_limit_is_dead_lettered_with_its_attempt(
    rabbitmq_url, make_dispatch, send_dispatch
):
    """What the scheduler's dead-letter consumer receives (RabbitMQ 3.10 quorum queues)."""
    from kombu import Connection, Consumer

    from treadle.worker.app import broker_declarations, dead_letter_queue, work_queue

    settings = Settings(broker_url=rabbitmq_url, delivery_limit=1, default_queue="doomed.tasks")
    app = create_celery_app(settings)
    queue = work_queue(settings.default_queue, settings)
    dispatch = make_dispatch("core.noop")
    deliveries: list[Any] = []
    dead: list[Any] = []
    with Connection(rabbitmq_url) as connection:
        channel = connection.channel()
        for entity in (queue, *broker_declarations(settings)):
            entity.bind(channel).declare()
        send_dispatch(app, dispatch, settings.default_queue)

        def give_back(body: Any, message: Any) -> None:  # a worker dying, again and again
            deliveries.append(message.headers.get("x-delivery-count"))
            message.requeue()

        with Consumer(connection, [queue], callbacks=[give_back], accept=["json"]):
            drain_until(connection, lambda: len(deliveries) >= 2)
        with Consumer(
            connection,
            [dead_letter_queue(settings)],
            callbacks=[lambda body, message: (dead.append((body, message.headers)), message.ack())],
            accept=["json"],
        ):
            drain_until(connection, lambda: dead)

    assert deliveries == [None, 1]  # delivery limit 1: delivered twice, then dead-lettered
    body, headers = dead[0]
    assert headers["id"] == dispatch.attempt_id  # Celery's task id is the attempt id
    assert headers[ATTEMPT_HEADER] == dispatch.attempt_id
    assert headers["task"] == "treadle.run.python"
    assert headers["x-first-death-reason"] == "delivery_limit"
    assert headers["x-death"][0]["queue"] == "doomed.tasks"
    assert json.loads(json.dumps(body[0][0]))["attempt_id"] == dispatch.attempt_id


def drain_until(connection: Any, done: Any, timeout: float = 10) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail("timed out draining the broker")
        try:
            connection.drain_events(timeout=0.5)
        except TimeoutError:
            continue


def test_a_report_is_published_after_the_broker_closed_the_connection(
    rabbitmq_url, open_reports, close_connections
):
    from datetime import UTC, datetime

    from treadle.common.messages import AttemptStarted

    settings = Settings(broker_url=rabbitmq_url, results_queue="reconnect.results")
    app = create_celery_app(settings)
    publisher = ReportPublisher(
        lambda: app.connection_for_write(heartbeat=0), results_queue(settings)
    )

    def started(attempt: str) -> WorkerReport:
        return WorkerReport.of(
            AttemptStarted(attempt_id=attempt, worker="w@h", at=datetime.now(UTC))
        )

    try:
        publisher.publish(started("run-a/t/0/1"))
        close_connections(rabbitmq_url)  # e.g. a broker restart or a load balancer timeout
        publisher.publish(started("run-b/t/0/1"))
    finally:
        publisher.close()

    with open_reports(settings) as reports:
        reports.wait_for("run-a/t/0/1", 1)
        reports.wait_for("run-b/t/0/1", 1)


def test_by_default_only_slow_actions_report_started(
    rabbitmq_url, test_packs, worker_thread, open_reports, make_dispatch, send_dispatch
):
    """TREADLE_WORKER_STARTED_NOTICE_AFTER (0.25 s by default): a fast task sends its result
    only, which says where and since when it ran; a slow one is announced after the delay,
    with its start."""
    settings = Settings(
        broker_url=rabbitmq_url,
        pack_paths=[str(test_packs)],
        default_queue="notice.tasks",
        results_queue="notice.results",
    )
    delay = timedelta(seconds=settings.worker_started_notice_after)
    app = create_worker_app(settings)
    fast = make_dispatch("core.echo", {"message": "quick"})
    slow = make_dispatch("wtest.stubborn", {"seconds": 1.5})

    with (
        worker_thread(app, pool="threads", concurrency=2) as worker,
        open_reports(settings) as reports,
    ):
        send_dispatch(app, fast, settings.default_queue)
        send_dispatch(app, slow, settings.default_queue)
        # The slow result comes over a second after the fast task's notice would have been due.
        notice, slow_result = reports.wait_for(slow.attempt_id, 2)
        fast_reports = reports.of(fast.attempt_id)

    assert [r.kind for r in fast_reports] == ["result"]
    [only] = fast_reports
    assert only.result is not None
    assert only.result.worker == worker.hostname
    assert only.result.started_at is not None
    assert notice.kind == "started"
    assert notice.started is not None
    assert slow_result.result is not None
    started = slow_result.result.started_at
    assert started is not None
    # the time it started, not the time the notice left (the delay later)
    assert notice.started.at <= started < notice.started.at + delay
    assert notice.started.worker == worker.hostname
