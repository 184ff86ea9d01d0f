"""The Celery publisher: messages follow the wire contract, routes, revokes, confirms."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from amqp.exceptions import PreconditionFailed
from kombu import Connection, Consumer, Exchange, Queue
from kombu.message import Message

from treadle.common.errors import ConfigurationError
from treadle.common.messages import TaskDispatch
from treadle.common.statuses import RunStatus
from treadle.common.transport import ATTEMPT_HEADER
from treadle.scheduler.core.commands import DispatchTask
from treadle.scheduler.service.controls import Control, apply_control
from treadle.scheduler.service.publish_confirms import PublishConfirms

from .conftest import (
    SPECIAL_QUEUE,
    ProcessFactory,
    SettingsFactory,
    WorkerFactory,
    client_runs,
    finish,
)

pytestmark = pytest.mark.services


class ControlListener:
    """A queue bound to Celery's broadcast exchange: sees revokes as every worker would."""

    def __init__(self, broker_url: str) -> None:
        self.connection = Connection(broker_url)
        channel = self.connection.channel()
        pidbox = Exchange("celery.pidbox", type="fanout", durable=False, delivery_mode="transient")
        self.queue = Queue("treadle-test.control", pidbox, exclusive=True, auto_delete=True)
        self.messages: list[dict[str, Any]] = []
        self.consumer = Consumer(channel, [self.queue], on_message=self._on_message)
        self.consumer.consume()

    def _on_message(self, message: Message) -> None:
        self.messages.append(json.loads(message.body))
        message.ack()

    def revoked(self, timeout: float = 5.0) -> list[str]:
        with contextlib.suppress(TimeoutError):
            self.connection.drain_events(timeout=timeout)
        ids: list[str] = []
        for body in self.messages:
            if body.get("method") == "revoke":
                ids.extend(body["arguments"]["task_id"])
                assert body["arguments"]["terminate"] is True
        return ids

    def close(self) -> None:
        self.connection.release()


def test_a_dispatch_is_a_celery_task_message_as_the_wire_contract_says(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    settings = make_settings()
    process = start_scheduler(settings)
    worker = stand_in_worker(settings)
    run_id = client_runs(process).start(process.catalog.workflow("schedtest.timed_echo"), {})
    process.step()

    message = worker.receive_one()
    dispatch = worker.dispatch_of(message)
    attempt_id = dispatch.attempt_id
    assert dispatch.run_id == run_id
    assert dispatch.action_ref == "core.echo"
    headers = message.headers
    assert headers["task"] == "treadle.run.python"
    assert headers["id"] == attempt_id
    assert headers[ATTEMPT_HEADER] == attempt_id
    assert headers["timelimit"] == [35, 30]  # [hard, soft]: the timeout, plus 5 s to kill
    assert "hello" not in headers["argsrepr"]  # inputs may be secret: Flower never sees them
    assert "core.echo" in headers["argsrepr"]
    assert message.properties["correlation_id"] == attempt_id
    assert message.properties["delivery_mode"] == 2
    assert message.delivery_info["routing_key"] == settings.default_queue
    args, kwargs, _embed = json.loads(message.body)
    assert args == [dispatch.model_dump(mode="json")]
    assert kwargs == {}
    with process.store.unit_of_work() as uow:
        assert uow.pending_outbox_count() == 0
        [attempt] = uow.list_attempts(run_id)
    assert attempt.attempt_id == attempt_id
    assert attempt.queue == settings.default_queue


def test_an_action_with_a_queue_is_dispatched_to_that_queue(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    settings = make_settings()
    process = start_scheduler(settings)
    default_worker = stand_in_worker(settings)
    special_worker = stand_in_worker(settings, queue=SPECIAL_QUEUE)
    run_id = client_runs(process).start(process.catalog.workflow("schedtest.routed"), {})
    process.step()

    message = special_worker.receive_one()
    assert message.delivery_info["routing_key"] == SPECIAL_QUEUE
    assert default_worker.receive(0.2) == []
    special_worker.started(special_worker.dispatch_of(message))
    special_worker.run(special_worker.dispatch_of(message))
    message.ack()
    process.step(timeout=5)
    state = process.runs.load(run_id)
    assert state.status is RunStatus.SUCCEEDED
    assert state.latest_execution("special").result == {"special": True}


def test_a_cancelled_run_revokes_its_attempt_on_every_worker(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    settings = make_settings()
    process = start_scheduler(settings)
    worker = stand_in_worker(settings)
    control = ControlListener(settings.broker_url)
    try:
        client = client_runs(process)
        run_id = client.start(process.catalog.workflow("schedtest.echo_once"), {})
        process.step()
        attempt_id = worker.dispatch_of(worker.receive_one()).attempt_id
        apply_control(client.runs, run_id, Control.CANCEL, reason="changed my mind")
        process.step(timeout=5)
        assert attempt_id in control.revoked()
    finally:
        control.close()
    assert process.runs.load(run_id).status is RunStatus.CANCELED


def test_the_publisher_declares_work_queues_as_the_workers_do(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory
) -> None:
    app_module = pytest.importorskip("treadle.worker.app")
    settings = make_settings()
    process = start_scheduler(settings)
    ours = process.publisher.queue("treadle-test.declared")
    theirs = app_module.work_queue("treadle-test.declared", settings)
    assert ours.queue_arguments == theirs.queue_arguments
    assert (ours.exchange.name, ours.exchange.type, ours.exchange.durable) == (
        theirs.exchange.name,
        theirs.exchange.type,
        theirs.exchange.durable,
    )
    assert ours.durable
    assert theirs.durable
    with Connection(settings.broker_url) as connection:
        ours.bind(connection.default_channel).declare()
        theirs.bind(connection.default_channel).declare()  # PRECONDITION_FAILED if they differ


def test_a_large_batch_is_on_the_broker_when_publish_returns(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory
) -> None:
    settings = make_settings()
    process = start_scheduler(settings)
    dispatches = [
        DispatchTask(
            TaskDispatch(
                attempt_id=f"r-batch/1/{i}/1",
                run_id="r-batch",
                task="t",
                execution=1,
                attempt=1,
                action_ref="core.noop",
                queue=settings.default_queue,
            )
        )
        for i in range(500)
    ]
    process.publisher.publish(dispatches)
    with Connection(settings.broker_url) as connection:
        declared = process.publisher.queue(settings.default_queue)
        _, ready, _ = declared.bind(connection.default_channel).queue_declare(passive=True)
    assert ready == 500


class RecordingChannel:
    """Just enough of a py-amqp channel for :class:`PublishConfirms`'s bookkeeping."""

    def __init__(self) -> None:
        self.events: dict[str, set[Any]] = {"basic_ack": set(), "basic_nack": set()}
        self.confirming = False

    def confirm_select(self) -> None:
        self.confirming = True

    def basic_publish(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    def ack(self, tag: int, *, multiple: bool = False) -> None:
        for callback in self.events["basic_ack"]:
            callback(tag, multiple)


def test_confirms_count_single_out_of_order_and_cumulative_acks() -> None:
    channel = RecordingChannel()
    confirms = PublishConfirms(channel)
    assert channel.confirming
    for _ in range(6):
        channel.basic_publish()
    assert confirms.outstanding == 6
    channel.ack(2)
    channel.ack(3)
    assert confirms.confirmed == 0  # 1 is still unconfirmed
    channel.ack(1)
    assert confirms.confirmed == 3
    channel.ack(5, multiple=True)
    assert confirms.confirmed == 5
    channel.ack(6)
    assert confirms.outstanding == 0


def test_a_queue_declared_with_other_arguments_is_a_configuration_error(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory
) -> None:
    settings = make_settings()
    with Connection(settings.broker_url) as connection:  # a classic queue, not a quorum one
        Queue(settings.results_queue, durable=True).bind(connection.default_channel).declare()
    with pytest.raises(ConfigurationError, match=f"queue '{settings.results_queue}' exists"):
        start_scheduler(settings)


def test_a_scheduler_set_to_classic_takes_reports_from_a_classic_results_queue(
    make_settings: SettingsFactory, start_scheduler: ProcessFactory, stand_in_worker: WorkerFactory
) -> None:
    settings = make_settings(results_queue_type="classic")
    process = start_scheduler(settings)
    run_id = client_runs(process).start(process.catalog.workflow("schedtest.echo_once"), {})
    finish(process, stand_in_worker(settings), run_id)

    assert process.runs.load(run_id).status is RunStatus.SUCCEEDED
    quorum = Queue(settings.results_queue, durable=True, queue_arguments={"x-queue-type": "quorum"})
    with (  # the broker holds a classic one: a quorum one of that name is refused
        Connection(settings.broker_url) as connection,
        pytest.raises(PreconditionFailed, match="x-queue-type"),
    ):
        quorum.bind(connection.default_channel).declare()
