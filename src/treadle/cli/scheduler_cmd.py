"""``treadle scheduler``: the service that moves distributed runs forward.

It connects to ``TREADLE_DATABASE_URL`` and ``TREADLE_BROKER_URL`` (retrying while either is
unreachable, logging why; an older schema upgraded or waited for as
``TREADLE_SCHEMA_UPGRADE`` says), registers the packs it loads and publishes their
workflows, then loops: apply worker reports, dispatch what follows, fire timers,
reconcile, and write its heartbeat for ``treadle health scheduler``. Run as many as you
like against one database. SIGTERM or SIGINT finishes the current step, closes the
connections and exits 0; exit 1 when the database or broker stays unreachable at start,
2 for invalid settings or pack paths.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from treadle.cli.metrics_server import MetricsAddress, MetricsPort, serve_metrics
from treadle.cli.support import fail, load_catalog, load_settings, service_start_up

log = logging.getLogger("treadle.scheduler")


def register(app: typer.Typer) -> None:
    app.command("scheduler")(scheduler)


def configure_logging(level: str, log_format: str | None = None) -> None:
    """One line per record on stderr in ``TREADLE_LOG_FORMAT`` (``log_setup``)."""
    from treadle.cli.log_setup import setup_logging

    name = level.upper()
    if name not in logging.getLevelNamesMapping():
        fail(f"TREADLE_LOG_LEVEL {level!r} is not a logging level (DEBUG, INFO, WARNING, ERROR)")
    setup_logging(name, log_format or load_settings().log_format, sys.stderr)


def scheduler(
    pack_path: Annotated[
        list[Path] | None,
        typer.Option(
            "--pack-path",
            help="Another folder of packs to register, besides the shipped packs and "
            "TREADLE_PACK_PATHS (repeatable).",
            show_default=False,
        ),
    ] = None,
    metrics_port: MetricsPort = 0,
    metrics_address: MetricsAddress = "127.0.0.1",
) -> None:
    """Run a scheduler: apply worker results, dispatch successors, fire timers, reconcile."""
    from treadle.cli.trace_setup import start_traces
    from treadle.common.heap import freeze_start_up
    from treadle.common.heartbeat import HeartbeatWriter, ServiceName
    from treadle.common.tracing import TracedProcess
    from treadle.scheduler.service.heartbeats import HeartbeatingScheduler
    from treadle.scheduler.service.scheduler_metrics import scheduler_metrics

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    start_traces(settings, TracedProcess.SCHEDULER, log)
    catalog = load_catalog(settings, pack_path or [])
    metrics = scheduler_metrics()
    serve_metrics(metrics.registry, metrics_port, metrics_address, log)
    heartbeat = HeartbeatWriter.for_service(settings, ServiceName.SCHEDULER)  # treadle health
    process = HeartbeatingScheduler(settings, catalog, metrics=metrics, heartbeat=heartbeat)
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()
        process.wake()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        with service_start_up(log, stop, received):
            process.start(stop)
        freeze_start_up()  # common/heap.py
        process.run(stop)
        log.info("stopping (%s): the current step finished", ", ".join(received) or "stop")
    finally:
        process.close()
    log.info("scheduler stopped")
