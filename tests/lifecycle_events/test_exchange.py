"""Publishing to the topic exchange on the real RabbitMQ: a queue bound to ``treadle.events``
with ``workflows.changes.run.#`` receives each run's run events, in order, as CloudEvents
routed by their type; step events go only where a binding asks for them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from kombu.connection import Connection
from kombu.entity import Exchange, Queue

from treadle.common.settings import Settings
from treadle.scheduler.service.celery_publisher import make_celery_app
from treadle.scheduler.service.lifecycle_events.exchange import EventExchange
from treadle.scheduler.service.lifecycle_events.pump import DeliveryPolicy, LifecycleEventPump
from treadle.testing.services import RABBITMQ_URL

from .conftest import StepClock, run_chain, stored_events

pytestmark = pytest.mark.services

EXCHANGE = "treadle.events"


def drain(connection: Connection, queue: Queue) -> list[Any]:
    """Every message waiting in ``queue`` (confirmed publishes are there already)."""
    bound = queue(connection.default_channel)
    messages = []
    while (message := bound.get(no_ack=True)) is not None:
        messages.append(message)
    return messages


def test_a_bound_queue_receives_each_runs_events_in_order(make_runner) -> None:
    runner = make_runner()
    run_ids = [run_chain(runner), run_chain(runner)]
    app = make_celery_app(Settings(broker_url=RABBITMQ_URL))
    exchange = EventExchange(app, name=EXCHANGE, broker_url=RABBITMQ_URL)
    pump = LifecycleEventPump(
        runner.store, clock=StepClock(), exchange=exchange, policy=DeliveryPolicy()
    )
    topic = Exchange(EXCHANGE, type="topic", durable=True)
    suffix = uuid.uuid4().hex[:8]
    runs_queue = Queue(
        f"test.lifecycle.runs.{suffix}", topic, "workflows.changes.run.#", exclusive=True
    )
    steps_queue = Queue(
        f"test.lifecycle.steps.{suffix}", topic, "workflows.changes.step.#", exclusive=True
    )
    try:
        with Connection(RABBITMQ_URL) as connection:
            for queue in (runs_queue, steps_queue):
                queue(connection.default_channel).declare()
            assert pump.publish_pending() == len(stored_events(runner.store))
            got_runs = drain(connection, runs_queue)
            got_steps = drain(connection, steps_queue)
    finally:
        pump.close()
        app.close()

    stored = {e.event_id: e.cloudevent for e in stored_events(runner.store)}
    mine = [m for m in got_runs if json.loads(m.body)["subject"] in run_ids]
    seen = [(json.loads(m.body)["subject"], m.delivery_info["routing_key"]) for m in mine]
    assert seen == [
        (run_id, kind)
        for run_id in run_ids
        for kind in ("workflows.changes.run.start", "workflows.changes.run.complete")
    ]
    for message in mine:
        event = json.loads(message.body)
        assert event == stored[event["id"]]
        assert message.content_type == "application/cloudevents+json"
        assert message.properties["message_id"] == event["id"]
    step_kinds = [
        m.delivery_info["routing_key"]
        for m in got_steps
        if json.loads(m.body)["subject"] == run_ids[0]
    ]
    assert step_kinds == ["workflows.changes.step.start", "workflows.changes.step.complete"] * 2
