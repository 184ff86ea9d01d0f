"""Webhook sinks: each event a sink wants is POSTed to it as a signed CloudEvent; a failing
sink is tried again at the backoff's times (a fake clock, no sleeping) and the delivery is
kept as failed after the last attempt, for ``treadle events deliveries --failed`` and
``treadle events redeliver``; the sink's URL and secret show nowhere."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from treadle.common.errors import ConfigurationError
from treadle.common.event_sinks import EventSink
from treadle.common.settings import settings_from_environment
from treadle.common.webhooks import sign
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.service.lifecycle_events.pump import DeliveryPolicy, LifecycleEventPump
from treadle.scheduler.store.lifecycle_repo import DeliveryEntry, DeliveryStatus
from treadle.testing.cli import TreadleCli
from treadle.testing.processes import treadle_environment

from .conftest import SINK_SECRET, T0, SinkServer, StepClock, run_chain, stored_events


def sink_of(server: SinkServer, *types: str) -> EventSink:
    return EventSink(
        name="crm",
        url=server.url,
        secret=SINK_SECRET,  # type: ignore[arg-type]  (pydantic makes it a SecretStr)
        types=types or ("workflows.changes.run.*",),
        timeout_seconds=5,
    )


def pump_of(
    runner: EmbeddedRunner, clock: StepClock, *sinks: EventSink, attempts: int = 3
) -> LifecycleEventPump:
    policy = DeliveryPolicy(sinks=sinks, attempts=attempts, retry_seconds=10)
    return LifecycleEventPump(runner.store, clock=clock, exchange=None, policy=policy)


def deliveries(runner: EmbeddedRunner, status: DeliveryStatus | None = None) -> list[DeliveryEntry]:
    with runner.store.snapshot() as uow:
        return uow.list_deliveries(status=status)


def test_a_sink_gets_the_events_it_wants_signed_and_in_order(
    make_runner, sink_server: SinkServer
) -> None:
    runner = make_runner()
    run_id = run_chain(runner)
    clock = StepClock()
    pump = pump_of(runner, clock, sink_of(sink_server))

    assert pump.publish_pending() == len(stored_events(runner.store)) == 8  # 2 of the definition
    assert pump.publish_pending() == 0
    assert all(e.published_at == T0 for e in stored_events(runner.store))
    assert pump.deliver_due() == 2

    stored = {e.event_id: e.cloudevent for e in stored_events(runner.store, run_id)}
    got = sink_server.received
    assert [r.json()["type"] for r in got] == [
        "workflows.changes.run.start",
        "workflows.changes.run.complete",
    ]
    for request in got:
        assert request.path == "/hooks/treadle"
        assert request.headers["Content-Type"] == "application/cloudevents+json"
        timestamp = request.headers["X-Treadle-Timestamp"]
        assert timestamp == str(int(T0.timestamp()))
        expected = "sha256=" + sign(SINK_SECRET, timestamp, request.body)
        assert request.headers["X-Treadle-Signature"] == expected
        assert request.json() == stored[request.json()["id"]]
    assert [(d.status, d.attempts, d.sink) for d in deliveries(runner)] == [
        (DeliveryStatus.DELIVERED, 1, "crm")
    ] * 2
    assert pump.deliver_due() == 0


def test_a_failing_sink_is_retried_with_backoff_then_kept_as_failed(
    make_runner, sink_server: SinkServer, caplog: pytest.LogCaptureFixture
) -> None:
    runner = make_runner()
    run_chain(runner)
    clock = StepClock()
    pump = pump_of(runner, clock, sink_of(sink_server, "workflows.changes.run.complete"))
    pump.publish_pending()
    sink_server.status = 500

    tried_at = []
    with caplog.at_level(logging.WARNING, logger="treadle.scheduler"):
        for wait in (0, 10, 20):  # attempt n waits 10 * 2**(n-1) s after the one before
            clock.advance(wait - 0.5)
            assert pump.deliver_due() == 0, f"tried before {wait} s had passed"
            clock.advance(0.5)
            assert pump.deliver_due() == 1
            tried_at.append(clock.now)
            [delivery] = deliveries(runner)
            assert delivery.attempts == len(tried_at)
        clock.advance(3600)
        assert pump.deliver_due() == 0

    assert tried_at == [T0, T0 + timedelta(seconds=10), T0 + timedelta(seconds=30)]
    assert [r.headers["X-Treadle-Timestamp"] for r in sink_server.received] == [
        str(int(t.timestamp())) for t in tried_at
    ]
    [failed] = deliveries(runner, DeliveryStatus.FAILED)
    assert (failed.attempts, failed.last_status_code, failed.last_error) == (3, 500, "HTTP 500")
    assert failed.event_type == "workflows.changes.run.complete"
    logged = caplog.text
    assert "sink crm" in logged
    assert "attempt 3 of 3" in logged
    assert sink_server.url not in logged
    assert SINK_SECRET not in logged

    sink_server.status = 200
    with runner.store.unit_of_work() as uow:
        again = uow.redeliver(failed.id, clock.now)
    assert (again.status, again.attempts) == (DeliveryStatus.PENDING, 0)
    assert pump.deliver_due() == 1
    [delivered] = deliveries(runner)
    assert (delivered.status, delivered.attempts) == (DeliveryStatus.DELIVERED, 1)
    assert len(sink_server.received) == 4


def test_an_unreachable_sink_costs_one_try_a_pass_and_its_address_shows_nowhere(
    make_runner, sink_server: SinkServer
) -> None:
    runner = make_runner()
    run_chain(runner)
    gone = sink_of(sink_server)  # run.start and run.complete
    sink_server.server.server_close()  # nothing listens there any more
    pump = pump_of(runner, StepClock(), gone)
    pump.publish_pending()
    assert pump.deliver_due() == 2
    first, second = sorted(deliveries(runner), key=lambda d: d.id)
    retry = T0 + timedelta(seconds=10)
    assert (first.status, first.attempts, first.due_at) == (DeliveryStatus.PENDING, 1, retry)
    assert (second.status, second.attempts, second.due_at) == (DeliveryStatus.PENDING, 0, retry)
    assert first.last_status_code is None
    assert first.last_error is not None
    assert gone.url not in first.last_error
    assert second.last_error is None  # not posted: the sink was down in this pass


def test_the_cli_lists_failed_deliveries_and_redelivers_without_showing_secrets(
    make_runner, sink_server: SinkServer, tmp_path: Path
) -> None:
    runner = make_runner()
    run_chain(runner)
    sink = sink_of(sink_server, "workflows.changes.run.complete")
    pump = pump_of(runner, StepClock(), sink, attempts=1)
    pump.publish_pending()
    sink_server.status = 503
    pump.deliver_due()
    sinks = [{"name": "crm", "url": sink_server.url, "secret": SINK_SECRET}]
    env = treadle_environment(
        database_url=str(runner.store.engine.url),
        lifecycle_events="true",
        lifecycle_exchange="",
        lifecycle_sinks=json.dumps(sinks),
    )
    cli = TreadleCli(tmp_path, env, in_process=True)

    listed = cli("events", "deliveries", "--failed", "--json", code=0)
    [row] = listed.json()
    assert (row["status"], row["sink"], row["last_error"]) == ("failed", "crm", "HTTP 503")
    text = cli("events", "deliveries", "--failed", code=0)
    assert f"{row['id']}  failed  sink crm" in text.stdout
    for shown in (listed, text):
        assert SINK_SECRET not in shown.output
        assert sink_server.url not in shown.output

    sink_server.status = 200
    redelivered = cli("events", "redeliver", str(row["id"]), code=0)
    assert "due again" in redelivered.stdout
    published = cli("events", "publish", code=0)
    assert "tried 1 delivery" in published.stdout
    assert [d.status for d in deliveries(runner)] == [DeliveryStatus.DELIVERED]
    missing = cli("events", "redeliver", "999999", code=2)
    assert "lifecycle event delivery 999999 not found" in missing.stderr
    for result in (redelivered, published, missing):
        assert SINK_SECRET not in result.output
        assert sink_server.url not in result.output


def test_bad_sinks_are_refused_at_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for sinks, problem in (
        ([{"name": "crm", "url": "ftp://crm.example/in", "secret": SINK_SECRET}], "__0__URL"),
        ([{"name": "crm", "url": "https://crm.example/in", "secret": ""}], "__0__SECRET"),
        (
            [
                {"name": "crm", "url": "https://a.example/", "secret": SINK_SECRET},
                {"name": "crm", "url": "https://b.example/", "secret": SINK_SECRET},
            ],
            ": Value error, sink names must be unique: crm repeated",
        ),
    ):
        monkeypatch.setenv("TREADLE_LIFECYCLE_SINKS", json.dumps(sinks))
        with pytest.raises(ConfigurationError) as refused:
            settings_from_environment()
        message = str(refused.value)
        assert f"TREADLE_LIFECYCLE_SINKS{problem}" in message
        assert SINK_SECRET not in message
