"""Heartbeat files: how a long-running service tells ``treadle health`` it is making progress.

``treadle scheduler``, ``treadle worker`` and ``treadle beat`` each keep one small JSON file,
``<TREADLE_HEALTH_DIR>/<service>.json``, rewritten (atomically) by their own loop: who wrote
it (process id, host), when it started, when it last completed a pass (a scheduler step, a
tick of the worker's consumer loop while it consumes, beat's reading of the schedules), what
it is connected to and, while passes fail, why. ``treadle health <service>`` reads it: no
network and no database load, which is what a container's health check and a Kubernetes
exec probe want. One process of a service per container (or host) is assumed: a second one
of the same service on the same host rewrites the same file.

This module is the contract between the writers and the reader: the file's model, where it
lives, and the writer, which never fails its service (a folder it cannot write to is logged
once). Judging a heartbeat is :mod:`treadle.common.health`.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from treadle.common.errors import TreadleError
from treadle.common.settings import Settings

__all__ = [
    "Heartbeat",
    "HeartbeatState",
    "HeartbeatUnreadable",
    "HeartbeatWriter",
    "ServiceName",
    "heartbeat_path",
    "read_heartbeat",
]

log = logging.getLogger("treadle.health")

#: The longest pause between two writes of a running service's heartbeat.
WRITE_EVERY_SECONDS = 5.0


class ServiceName(StrEnum):
    """The services that keep a heartbeat file (``treadle health`` also checks ``api``,
    over HTTP)."""

    SCHEDULER = "scheduler"
    WORKER = "worker"
    BEAT = "beat"


class HeartbeatState(StrEnum):
    """Where a service is in its life, as its heartbeat says."""

    STARTING = "starting"  #: connecting, or waiting for the database, broker or schema
    RUNNING = "running"  #: past start-up: its passes complete (``progress_at``) or fail
    STOPPED = "stopped"  #: it stopped cleanly


class Heartbeat(BaseModel):
    """The content of a heartbeat file. ``connected_to`` names hosts and queues, never a
    credential; ``problem`` is why the latest pass failed (cleared by the next one that
    completes)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    service: ServiceName
    state: HeartbeatState
    pid: int
    host: str
    started_at: datetime
    written_at: datetime
    progress_at: datetime | None = None
    connected_to: str = ""
    problem: str | None = None


class HeartbeatUnreadable(TreadleError):
    """A heartbeat file exists but does not hold a heartbeat."""


def heartbeat_dir(settings: Settings) -> Path:
    """``TREADLE_HEALTH_DIR``, else ``treadle-health`` in the temporary folder."""
    if settings.health_dir:
        return Path(settings.health_dir)
    return Path(tempfile.gettempdir()) / "treadle-health"


def heartbeat_path(settings: Settings, service: ServiceName) -> Path:
    """The heartbeat file of ``service`` on this host."""
    return heartbeat_dir(settings) / f"{service.value}.json"


def write_interval(settings: Settings) -> float:
    """Seconds between writes of a running service's heartbeat: at most
    :data:`WRITE_EVERY_SECONDS`, and a quarter of ``TREADLE_HEALTH_STALE_SECONDS``."""
    return min(WRITE_EVERY_SECONDS, settings.health_stale_seconds / 4)


def read_heartbeat(path: Path) -> Heartbeat | None:
    """The heartbeat in ``path``; ``None`` when there is no such file.

    Raises HeartbeatUnreadable naming the file and why.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HeartbeatUnreadable(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return Heartbeat.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise HeartbeatUnreadable(f"{path} is not a heartbeat: {where}: {first['msg']}") from exc


def _utc_now() -> datetime:
    return datetime.now(UTC)


class HeartbeatWriter:
    """Writes one service's heartbeat file, at most every ``every`` seconds while nothing
    changes (a change of state or problem is written at once). Thread-safe."""

    def __init__(
        self,
        path: Path,
        service: ServiceName,
        *,
        every: float = WRITE_EVERY_SECONDS,
        clock: Callable[[], datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.service = service
        self.every = every
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.RLock()
        self._current = Heartbeat(
            service=service,
            state=HeartbeatState.STARTING,
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=clock(),
            written_at=clock(),
        )
        self._next_write = 0.0
        self._write_failed = False

    @classmethod
    def for_service(cls, settings: Settings, service: ServiceName) -> HeartbeatWriter:
        """The writer of ``service``'s file as the settings place and pace it."""
        return cls(heartbeat_path(settings, service), service, every=write_interval(settings))

    def starting(self, detail: str) -> None:
        """Starting (again): ``detail`` says what it is waiting for."""
        self._update(
            force=True, state=HeartbeatState.STARTING, connected_to=detail, progress_at=None
        )

    def progressed(self, connected_to: str | None = None) -> None:
        """A pass completed: the service is running and makes progress."""
        changes: dict[str, object] = {"state": HeartbeatState.RUNNING, "problem": None}
        if connected_to is not None:
            changes["connected_to"] = connected_to
        with self._lock:
            last = self._current
            force = last.state is not HeartbeatState.RUNNING or last.problem is not None
            self._update(force=force, progress=True, **changes)

    def trouble(self, problem: str) -> None:
        """A pass failed, or the service lost a connection: ``problem`` says why."""
        with self._lock:
            self._update(force=problem != self._current.problem, problem=problem)

    def stopped(self) -> None:
        """The service stopped cleanly."""
        self._update(force=True, state=HeartbeatState.STOPPED)

    def _update(self, *, force: bool, progress: bool = False, **changes: object) -> None:
        with self._lock:
            now = self._clock()
            if progress:
                changes["progress_at"] = now
            self._current = self._current.model_copy(update={**changes, "written_at": now})
            if not force and self._monotonic() < self._next_write:
                return
            self._next_write = self._monotonic() + self.every
            self._write(self._current)

    def _write(self, heartbeat: Heartbeat) -> None:
        """Write the file atomically (a reader never sees half of it); a failure is logged
        once and never raised: the service goes on, and its health check says why."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            partial.write_text(heartbeat.model_dump_json(), encoding="utf-8")
            os.replace(partial, self.path)
        except OSError as exc:
            if not self._write_failed:
                log.warning("cannot write the heartbeat file %s: %s", self.path, exc)
            self._write_failed = True
        else:
            self._write_failed = False
