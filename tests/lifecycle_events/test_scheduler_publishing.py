"""A scheduler with lifecycle events on publishes what a run writes, on its own: a run
carried through ``SchedulerProcess`` (real PostgreSQL and RabbitMQ, the stand-in worker of
the scheduler tests) reaches the topic exchange and the webhook sink in order, without
anything but the process stepping; the embedded background scheduler (``treadle api`` on
SQLite) posts to the sinks."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from tests.conftest import DatabaseFactory
from tests.distributed.scheduler.conftest import StandInWorker, wait_until

import treadle
from treadle.common.event_sinks import EventSink
from treadle.common.loader import load_packs
from treadle.common.settings import Settings
from treadle.embedded.background import BackgroundScheduler
from treadle.scheduler.service.process import SchedulerProcess
from treadle.scheduler.service.startup import RetryPolicy
from treadle.testing.services import RABBITMQ_URL

from .conftest import SINK_SECRET, SinkServer, chain

RUN_EVENTS = ["workflows.changes.run.start", "workflows.changes.run.complete"]


@pytest.mark.services
@pytest.mark.slow  # a scheduler process started on a fresh PostgreSQL database: about 2 s
def test_a_scheduler_publishes_a_runs_events_to_the_exchange_and_the_sink(
    fresh_database_url: DatabaseFactory, sink_server: SinkServer
) -> None:
    suffix = uuid.uuid4().hex[:8]
    sink = EventSink(
        name="crm",
        url=sink_server.url,
        secret=SINK_SECRET,  # type: ignore[arg-type]  (pydantic makes it a SecretStr)
        types=("workflows.changes.run.*",),
    )
    settings = Settings(
        database_url=fresh_database_url("postgresql"),
        broker_url=RABBITMQ_URL,
        default_queue=f"treadle-test.{suffix}.tasks",
        results_queue=f"treadle-test.{suffix}.results",
        reconcile_interval=3600.0,
        lifecycle_events=True,
        lifecycle_sinks=(sink,),
    )
    catalog = load_packs([Path(treadle.__file__).parent / "packs"])
    process = SchedulerProcess(settings, catalog, startup=RetryPolicy(give_up_after=10))
    worker: StandInWorker | None = None
    queue = Queue(
        f"test.lifecycle.{suffix}",
        Exchange("treadle.events", type="topic", durable=True),
        "workflows.changes.run.#",
        exclusive=True,
    )
    with Connection(RABBITMQ_URL) as connection:
        queue(connection.default_channel).declare()
        try:
            process.start()
            worker = StandInWorker(settings, catalog)
            run_id = process.services.starter.start(chain(), {})

            def turn() -> None:
                assert worker is not None
                worker.work(0.02)
                process.step(0.02)

            wait_until(
                lambda: process.runs.load(run_id).status.is_terminal,
                between=turn,
                what="the run's end",
            )
            wait_until(lambda: len(sink_server.received) >= 2, what="the sink's deliveries")
        finally:
            if worker is not None:
                worker.close()
            process.close()
        bound = queue(connection.default_channel)
        published = []
        while (message := bound.get(no_ack=True)) is not None:
            published.append(json.loads(message.body))

    assert [e["type"] for e in published if e["subject"] == run_id] == RUN_EVENTS
    assert [r.json()["type"] for r in sink_server.received] == RUN_EVENTS


def test_the_embedded_background_scheduler_posts_to_the_sinks(
    tmp_path: Path, sink_server: SinkServer
) -> None:
    sink = EventSink(
        name="crm",
        url=sink_server.url,
        secret=SINK_SECRET,  # type: ignore[arg-type]  (pydantic makes it a SecretStr)
        types=("workflows.changes.run.*",),
    )
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'background.db'}",
        lifecycle_events=True,
        lifecycle_sinks=(sink,),
    )
    catalog = load_packs([Path(treadle.__file__).parent / "packs"])
    background = BackgroundScheduler(settings, catalog, poll_interval=0.05)
    try:
        background.start()
        run_id = background.runner.starter.start(chain(), {})
        background.wake()
        wait_until(lambda: len(sink_server.received) >= 2, what="the sink's deliveries")
    finally:
        background.close()
    got = [r.json() for r in sink_server.received]
    assert [(e["subject"], e["type"]) for e in got] == [(run_id, kind) for kind in RUN_EVENTS]
