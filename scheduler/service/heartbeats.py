"""The heartbeats of ``treadle scheduler`` and ``treadle beat`` (:mod:`treadle.common.heartbeat`).

Each is its service with a :class:`~treadle.common.heartbeat.HeartbeatWriter` around the
pass that proves progress: a scheduler's step (taking reports, relaying, firing timers,
reconciling: a step completes at least every poll interval, a second, when idle) and
beat's reading of the schedules (every ``TREADLE_BEAT_RELOAD_SECONDS``). A failed pass
leaves its reason in the file; the service's own loop, which retries, is unchanged. The
commands build these; tests and embedded uses build the plain services and write no file.
"""

from __future__ import annotations

import threading
from typing import Any

from kombu.connection import Connection

from treadle.common.catalog import Catalog
from treadle.common.heartbeat import HeartbeatWriter
from treadle.common.settings import Settings
from treadle.scheduler.service.beat import BeatServices
from treadle.scheduler.service.process import SchedulerProcess
from treadle.scheduler.service.startup import broker_address, database_address
from treadle.scheduler.store import Store
from treadle.scheduler.store.schedule_repo import ScheduleRow

__all__ = ["HeartbeatingBeat", "HeartbeatingScheduler", "problem_of"]


def problem_of(exc: BaseException) -> str:
    """An error as one line for a heartbeat: its type and its first line."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__


def _broker(url: str) -> str:
    connection = Connection(url)  # not connected: only its parsed address is read
    try:
        return broker_address(connection)
    finally:
        connection.release()


class HeartbeatingScheduler(SchedulerProcess):
    """A scheduler process that writes its heartbeat: starting, after each completed step
    (with what it is connected to), the error of a failed step, and stopped."""

    def __init__(
        self, settings: Settings, catalog: Catalog, *, heartbeat: HeartbeatWriter, **options: Any
    ) -> None:
        super().__init__(settings, catalog, **options)
        self.heartbeat = heartbeat
        self._connected_to = (
            f"database {database_address(settings.database_url)}, broker "
            f"{_broker(settings.broker_url)}, consuming {settings.results_queue}"
        )

    def start(self, stop: threading.Event | None = None) -> None:
        self.heartbeat.starting(
            f"connecting to the database at {database_address(self.settings.database_url)} "
            "and the broker (the log says why it waits)"
        )
        super().start(stop)
        self.heartbeat.progressed(self._connected_to)

    def step(self, timeout: float = 0.0) -> bool:
        try:
            happened = super().step(timeout)
        except Exception as exc:
            self.heartbeat.trouble(problem_of(exc))
            raise
        self.heartbeat.progressed()
        return happened

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.heartbeat.stopped()


class HeartbeatingBeat(BeatServices):
    """Beat's services, writing beat's heartbeat each time the schedules are read (the
    database answered and beat's loop turns) and the error when reading them fails."""

    def __init__(
        self, store: Store, settings: Settings, *, heartbeat: HeartbeatWriter, **options: Any
    ):
        super().__init__(store, settings, **options)
        self.heartbeat = heartbeat
        self._connected_to = f"database {database_address(settings.database_url)}"

    def load(self) -> list[ScheduleRow]:
        try:
            rows = super().load()
        except Exception as exc:
            self.heartbeat.trouble(problem_of(exc))
            raise
        self.heartbeat.progressed(f"{self._connected_to}, {len(rows)} schedule(s)")
        return rows
