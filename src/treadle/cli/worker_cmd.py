"""``treadle worker``: a Celery worker of Treadle's app, running the tasks of the packs it serves.

It consumes the given queues (default ``TREADLE_DEFAULT_QUEUE``), on RabbitMQ with each
one's priority bands (``q.high``, ``q``, ``q.low``, high first), runs each dispatched
attempt and reports to the scheduler's results queue. It is an ordinary Celery worker:
Flower and ``celery -A treadle.worker.celery_app inspect ...`` see it, SIGTERM is a warm
shutdown (running tasks finish, then exit 0), and an unreachable broker at start is
retried (every attempt logged) until it answers. Exit 2 for invalid settings or options.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from treadle.cli.metrics_server import MetricsAddress, MetricsPort
from treadle.cli.support import ExitCode, fail, load_settings

if TYPE_CHECKING:
    from treadle.worker.metrics_endpoint import MetricsEndpoint

logger = logging.getLogger("treadle.worker")


class Pool(StrEnum):
    """Celery execution pools ``treadle worker`` supports."""

    PREFORK = "prefork"
    THREADS = "threads"
    SOLO = "solo"


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)


def parse_queues(text: str | None, default: str) -> list[str]:
    """``q1,q2`` -> ``["q1", "q2"]``; none given -> ``[default]``."""
    if text is None:
        return [default]
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        fail(f"--queues expects queue names separated by commas, got {text!r}")
    return list(dict.fromkeys(names))


def node_name(hostname: str | None) -> str:
    """The worker's node name as Celery's own ``-n`` makes it: ``name@host`` with ``%h``
    (host), ``%n`` (name) and ``%d`` (domain) expanded; ``celery@<host>`` by default."""
    from celery.utils.nodenames import default_nodename, host_format

    return str(host_format(default_nodename(hostname)))


def serve_metrics(port: int, address: str, pool: Pool) -> MetricsEndpoint:
    """The worker's metrics endpoint, stopped (its temporary directory removed) at exit;
    with the prefork pool every pool process counts into prometheus-client's multiprocess
    directory. A port that cannot be listened on is exit 1."""
    import atexit

    from treadle.worker.metrics_endpoint import MetricsEndpoint

    try:
        endpoint = MetricsEndpoint.start(port, address, multiprocess=pool is Pool.PREFORK)
    except OSError as exc:
        fail(f"--metrics-port: cannot listen on {address}:{port}: {exc}", ExitCode.FAILED)
    atexit.register(endpoint.close)
    return endpoint


def worker(
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues",
            "-Q",
            help="Queues to consume, comma-separated (default: TREADLE_DEFAULT_QUEUE); "
            "on RabbitMQ each with its priority bands (q.high, q, q.low).",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            help="Tasks run at once: pool processes or threads (default: CPU count).",
            show_default=False,
        ),
    ] = None,
    pool: Annotated[
        Pool,
        typer.Option(
            "--pool", "-P", help="prefork (processes, time limits enforced), threads or solo."
        ),
    ] = Pool.PREFORK,
    pack_path: Annotated[
        list[Path] | None,
        typer.Option(
            "--pack-path",
            help="A pack folder or a folder of packs to serve, besides the shipped packs "
            "and TREADLE_PACK_PATHS (repeatable).",
            show_default=False,
        ),
    ] = None,
    loglevel: Annotated[
        str | None,
        typer.Option(
            "--loglevel",
            "-l",
            help="DEBUG, INFO, WARNING or ERROR (default: TREADLE_LOG_LEVEL).",
            show_default=False,
        ),
    ] = None,
    hostname: Annotated[
        str | None,
        typer.Option(
            "--hostname",
            "-n",
            help="The worker's node name, e.g. gpu1@%h (default: celery@<host>); give "
            "each worker on one host its own.",
            show_default=False,
        ),
    ] = None,
    metrics_port: MetricsPort = 0,
    metrics_address: MetricsAddress = "127.0.0.1",
) -> None:
    """Run a worker: consume dispatched tasks, run their actions, report the results."""
    from treadle.cli.log_setup import format_celery_handlers
    from treadle.cli.trace_setup import start_traces
    from treadle.common.errors import ConfigurationError
    from treadle.common.heap import freeze_start_up
    from treadle.common.heartbeat import HeartbeatWriter, ServiceName
    from treadle.common.secret_box import Keyring
    from treadle.common.tracing import TracedProcess
    from treadle.worker.app import create_worker_app, worker_queues
    from treadle.worker.catalog_loader import PackCatalog, check_pack_folders, pack_folders
    from treadle.worker.heartbeat_step import heartbeat_step

    settings = load_settings()
    level = (loglevel or settings.log_level).upper()
    if level not in logging.getLevelNamesMapping():
        fail(f"--loglevel {level!r} is not a logging level (DEBUG, INFO, WARNING, ERROR)")
    names = parse_queues(queues, settings.default_queue)
    folders = pack_folders(settings, pack_path or ())
    try:
        check_pack_folders(folders[1:])
        if settings.secret_key is not None:  # a bad key fails now, not at the first secret
            Keyring.parse(settings.secret_key.get_secret_value())
    except ConfigurationError as exc:
        fail(str(exc))
    catalog = PackCatalog(folders)
    endpoint = serve_metrics(metrics_port, metrics_address, pool) if metrics_port else None
    metrics = endpoint.metrics if endpoint is not None else None
    app = create_worker_app(settings, queues=names, catalog=catalog, metrics=metrics)
    heartbeat = HeartbeatWriter.for_service(settings, ServiceName.WORKER)  # treadle health
    heartbeat.starting("connecting to the broker (the log says why it waits)")
    app.steps["consumer"].add(heartbeat_step(heartbeat))
    format_celery_handlers(settings.log_format)  # Celery's log handlers write our lines
    celery_worker = app.Worker(
        hostname=node_name(hostname),
        pool_cls=pool.value,
        concurrency=concurrency,
        loglevel=level,
        queues=worker_queues(settings, names),  # with their priority bands, high first
    )
    if pool is not Pool.PREFORK:
        logger.warning(
            "pool %s does not enforce task time limits; a task's timeout is still applied "
            "by the scheduler, but the action keeps running to its end",
            pool.value,
        )
    if endpoint is not None:
        where = f" (pool processes count in {endpoint.directory})" if endpoint.directory else ""
        logger.info("metrics at %s%s", endpoint.url, where)
    catalog.catalog()  # load now: pack problems are reported at start, not at first task
    start_traces(settings, TracedProcess.WORKER, logger)  # before the pool forks
    freeze_start_up()  # before the pool forks: common/heap.py
    try:
        celery_worker.start()
    finally:
        heartbeat.stopped()
    raise typer.Exit(int(celery_worker.exitcode or ExitCode.OK))
