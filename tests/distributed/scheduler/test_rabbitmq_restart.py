"""A RabbitMQ broker restarted under a run in flight: the run finishes, each item once.

The broker is a RabbitMQ node of this module's own (on free ports), never the shared one;
it is restarted as operators do it (``rabbitmqctl stop_app`` then ``start_app``), which
closes every connection and keeps the durable queues with their persistent messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from kombu import Connection, Exchange, Queue
from kombu.message import Message

from treadle.common.limits import Limits
from treadle.common.messages import TaskDispatch
from treadle.common.statuses import AttemptStatus, RunStatus
from treadle.scheduler.core.commands import DispatchTask
from treadle.scheduler.service.celery_publisher import CeleryPublisher, make_celery_app
from treadle.scheduler.service.lifecycle_events.exchange import EventExchange
from treadle.scheduler.store.lifecycle_repo import LifecycleEventEntry
from treadle.testing import RabbitMQNode, rabbitmq_node

from .conftest import (
    ProcessFactory,
    SettingsFactory,
    WorkerFactory,
    client_runs,
    finish,
    step_until_reconnected,
    wait_until,
)

pytestmark = [pytest.mark.services, pytest.mark.slow]

ITEMS = 12
IN_FLIGHT = 4


@pytest.fixture(scope="module")
def private_rabbitmq() -> Iterator[RabbitMQNode]:
    """Started once for the module: starting a node is the slow part (about 5 s)."""
    with rabbitmq_node() as node:
        yield node


def test_a_run_in_flight_survives_a_rabbitmq_restart(
    private_rabbitmq: RabbitMQNode,
    make_settings: SettingsFactory,
    start_scheduler: ProcessFactory,
    stand_in_worker: WorkerFactory,
) -> None:
    settings = make_settings(broker_url=private_rabbitmq.url)
    process = start_scheduler(settings)
    worker = stand_in_worker(settings)
    runs = client_runs(process)
    runs.limits = Limits(max_concurrency=IN_FLIGHT)  # the rest is dispatched after the restart
    run_id = runs.start(process.catalog.workflow("schedtest.fan_out"), {"count": ITEMS})
    process.step()

    taken: list[Message] = []
    wait_until(
        lambda: len(taken) == IN_FLIGHT,
        between=lambda: taken.extend(worker.receive(0.05)),
        what=f"{IN_FLIGHT} dispatches",
    )
    # Half are run and reported (the reports wait in the results queue, unread); the other
    # half are held unacknowledged, so the restart hands them back to the queue.
    for message in taken[: IN_FLIGHT // 2]:
        dispatch = worker.dispatch_of(message)
        worker.started(dispatch)
        worker.run(dispatch)
        message.ack()

    private_rabbitmq.stop_app()
    private_rabbitmq.start_app()

    assert step_until_reconnected(process, timeout=60) >= 1  # the restart was felt
    finish(process, stand_in_worker(settings), run_id)  # a new worker: the old one's link died
    run = process.runs.load(run_id)
    assert run.status is RunStatus.SUCCEEDED
    assert run.output == {"messages": [f"item {i}" for i in range(ITEMS)]}
    with process.store.unit_of_work() as uow:
        attempts = uow.list_attempts(run_id)
    assert sorted(a.position for a in attempts) == list(range(ITEMS))  # each item once
    assert {(a.attempt, a.status) for a in attempts} == {(1, AttemptStatus.SUCCEEDED)}


def dispatch(run_id: str, queue: str) -> DispatchTask:
    return DispatchTask(
        TaskDispatch(
            attempt_id=f"{run_id}/1/t/1",
            run_id=run_id,
            task="t",
            execution=1,
            attempt=1,
            action_ref="core.noop",
            queue=queue,
        )
    )


def test_a_publisher_whose_connection_the_restart_closed_sends_its_next_batch(
    private_rabbitmq: RabbitMQNode, make_settings: SettingsFactory
) -> None:
    """The scheduler's publishing connection is kept between batches without heartbeats, so
    a restart shows only at the next publish: that batch still reaches the broker, without
    failing the scheduler's step (which would be logged as an error and backed off)."""
    settings = make_settings(broker_url=private_rabbitmq.url)
    publisher = CeleryPublisher.from_settings(settings)
    try:
        publisher.publish([dispatch("r-before", settings.default_queue)])

        private_rabbitmq.stop_app()
        private_rabbitmq.start_app()

        publisher.publish([dispatch("r-after", settings.default_queue)])
        with Connection(settings.broker_url) as connection:
            queue = publisher.queue(settings.default_queue).bind(connection.default_channel)
            _, ready, _ = queue.queue_declare(passive=True)
    finally:
        publisher.close()
    assert ready == 2  # the one from before the restart (a quorum queue keeps it) and the new


def lifecycle_event(number: int) -> LifecycleEventEntry:
    event_id = f"e-restart-{number}"
    return LifecycleEventEntry(
        id=number,
        event_id=event_id,
        run_id="r-restart",
        type="workflows.changes.run.start",
        cloudevent={"id": event_id, "type": "workflows.changes.run.start"},
        created_at=datetime.now(UTC),
        published_at=None,
    )


def test_the_lifecycle_exchange_sends_its_next_batch_after_a_restart(
    private_rabbitmq: RabbitMQNode, make_settings: SettingsFactory
) -> None:
    """The event exchange keeps its connection the same way; a restart between two batches
    does not fail the second (its publishing thread would log it and pause)."""
    settings = make_settings(broker_url=private_rabbitmq.url)
    app = make_celery_app(settings)
    exchange = EventExchange(app, name="treadle.events", broker_url=settings.broker_url)
    bound = Queue(
        "test.restart.events",
        Exchange("treadle.events", type="topic", durable=True),
        "workflows.changes.#",
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},  # keeps its messages over the restart
    )
    try:
        with Connection(settings.broker_url) as connection:
            bound(connection.default_channel).declare()
        exchange.publish([lifecycle_event(1)])

        private_rabbitmq.stop_app()
        private_rabbitmq.start_app()

        exchange.publish([lifecycle_event(2)])
        with Connection(settings.broker_url) as connection:
            queue = bound(connection.default_channel)
            ids = []
            while (message := queue.get(no_ack=True)) is not None:
                ids.append(message.properties["message_id"])
    finally:
        exchange.close()
        app.close()
    assert ids == ["e-restart-1", "e-restart-2"]
