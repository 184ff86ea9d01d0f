"""``treadle beat``: the process that fires schedules (``docs/schedules.md``).

A real celery beat (:class:`celery.beat.Service`) whose scheduler keeps its schedules in
``TREADLE_DATABASE_URL`` (:mod:`treadle.scheduler.service.beat`). It connects to the
database (retrying while it is unreachable, logging why; the schema is brought up to
date, or waited for, as ``TREADLE_SCHEMA_UPGRADE`` says), then ticks (writing its
heartbeat for ``treadle health beat``): schedules created, changed or paused through
``treadle schedules`` or the API, and those newly published workflows declare, are seen
within ``TREADLE_BEAT_RELOAD_SECONDS``. A due fire is recorded and its run started by beat
in one transaction; ``treadle scheduler`` dispatches the run's tasks. Run one or several:
each fire is recorded once. SIGTERM or SIGINT stops it after the current tick (exit 0);
exit 1 when the database stays unreachable at start, 2 for invalid settings.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

import typer

from treadle.cli.metrics_server import MetricsAddress, MetricsPort, serve_metrics
from treadle.cli.scheduler_cmd import configure_logging
from treadle.cli.support import load_settings, service_start_up

log = logging.getLogger("treadle.beat")


def register(app: typer.Typer) -> None:
    app.command("beat")(beat)


def beat(metrics_port: MetricsPort = 0, metrics_address: MetricsAddress = "127.0.0.1") -> None:
    """Run beat: fire the stored schedules, starting their runs."""
    from treadle.cli.trace_setup import start_traces
    from treadle.common.heartbeat import HeartbeatWriter, ServiceName
    from treadle.common.metrics import Metrics
    from treadle.common.metrics_catalog import MetricSource
    from treadle.common.tracing import TracedProcess
    from treadle.scheduler.service.beat import beat_service
    from treadle.scheduler.service.heartbeats import HeartbeatingBeat
    from treadle.scheduler.service.startup import RetryPolicy, database_address, open_store

    settings = load_settings()
    configure_logging(settings.log_level)
    start_traces(settings, TracedProcess.BEAT, log)
    stop = threading.Event()
    received: list[str] = []
    running: list[Any] = []  # the celery beat service, once built
    metrics = Metrics([MetricSource.BEAT, MetricSource.RUNS])
    serve_metrics(metrics.registry, metrics_port, metrics_address, log)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()
        for service in running:
            service.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    heartbeat = HeartbeatWriter.for_service(settings, ServiceName.BEAT)  # treadle health
    where = database_address(settings.database_url)
    heartbeat.starting(f"connecting to the database at {where} (the log says why it waits)")
    log.info("connecting to the database at %s", where)
    with service_start_up(log, stop, received):
        try:
            store = open_store(settings, policy=RetryPolicy(), stop=stop)
        except BaseException:
            heartbeat.stopped()
            raise
    store.lifecycle_events = settings.lifecycle_events
    try:
        services = HeartbeatingBeat(store, settings, metrics=metrics, heartbeat=heartbeat)
        service = beat_service(services, reload_every=settings.beat_reload_seconds)
        running.append(service)
        log.info(
            "beat started on %s: schedules read every %g s",
            store.url,
            settings.beat_reload_seconds,
        )
        if not stop.is_set():
            service.start()
        log.info("stopping (%s)", ", ".join(received) or "stop")
    finally:
        store.close()
        heartbeat.stopped()
    log.info("beat stopped")
