"""A whole distributed deployment for a test module: database, broker, scheduler, worker.

:func:`running_services` makes a throwaway PostgreSQL database and RabbitMQ vhost, starts
one ``treadle scheduler`` and one ``treadle worker`` on them with the given packs, waits
until both are ready, and stops both by pid (and drops the database and vhost) at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from treadle.common.secret_box import generate_key
from treadle.testing.processes import (
    SCHEDULER_READY,
    WORKER_READY,
    ServiceProcess,
    stop_all,
    treadle_environment,
)
from treadle.testing.services import throwaway_postgres_database, throwaway_rabbitmq_vhost

__all__ = ["RunningServices", "running_services"]


@dataclass
class RunningServices:
    """What :func:`running_services` started: the settings every process of it shares."""

    database_url: str
    broker_url: str
    environment: dict[str, str]
    processes: list[ServiceProcess] = field(default_factory=list)

    def logs(self, lines: int = 60) -> str:
        """The last lines of each process's log, for the message of a failed wait."""
        return "\n".join(f"--- {p.name}:\n{p.tail(lines)}" for p in self.processes)


@contextmanager
def running_services(
    name: str,
    logs: Path,
    pack_paths: Sequence[str | Path],
    *,
    concurrency: int = 2,
    **settings: str | int | float,
) -> Iterator[RunningServices]:
    """A scheduler and a worker (``concurrency`` pool processes) on fresh services.

    ``name`` tags the database, the vhost and the worker's node name; ``settings`` are
    further ``TREADLE_*`` settings (``reconcile_interval=2``). Logs go under ``logs``.
    Like a real deployment, the services share a ``TREADLE_SECRET_KEY`` (a new one
    unless ``secret_key`` is given): processes of the test that store secrets need it too.
    """
    settings.setdefault("secret_key", generate_key())
    with ExitStack() as stack:
        database_url = stack.enter_context(throwaway_postgres_database(f"treadle_{name}"))
        broker_url = stack.enter_context(throwaway_rabbitmq_vhost(f"treadle_{name}"))
        environment = treadle_environment(
            None,  # this process's environment; ``settings`` are all TREADLE_* settings
            database_url=database_url,
            broker_url=broker_url,
            pack_paths=[str(path) for path in pack_paths],
            log_level="INFO",
            **settings,
        )
        running = RunningServices(database_url, broker_url, environment)
        stack.callback(stop_all, running.processes)
        scheduler = ServiceProcess("scheduler", ["scheduler"], environment, logs / "scheduler.log")
        running.processes.append(scheduler)
        scheduler.wait_for_log(SCHEDULER_READY, 60)  # it creates the schema and publishes
        node = f"{name}-{uuid.uuid4().hex[:6]}@%h"
        worker = ServiceProcess(
            "worker",
            ["worker", "--hostname", node, "--concurrency", str(concurrency), "--loglevel", "INFO"],
            environment,
            logs / "worker.log",
        )
        running.processes.append(worker)
        worker.wait_for_log(WORKER_READY, 60)
        yield running
