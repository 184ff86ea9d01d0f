"""The broker's queues and the workers as the scheduler last observed them, for people.

A scheduler reads each work queue's length and consumers from the broker now and then, and
notes when it last heard from each worker (``scheduler/service/broker_observer.py``); it
writes them here so every process can say why a task waits ("queued on q for 40 s; nothing
consumes q", "running on w since T; last heard from 3 s ago") without asking the broker
itself. Each answer carries when it was observed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from treadle.common.statuses import RunStatus
from treadle.scheduler.store.base import Repository, chunks
from treadle.scheduler.store.models import runs
from treadle.scheduler.store.observation_tables import queue_observations, worker_observations


@dataclass(frozen=True)
class QueueObservation:
    """A queue's length and consumers (None: the broker does not tell) at ``observed_at``."""

    queue: str
    messages: int
    consumers: int | None
    observed_at: datetime


@dataclass(frozen=True)
class WorkerObservation:
    """When a scheduler last heard from a worker."""

    hostname: str
    last_seen: datetime


class ObservationRepository(Repository):
    """Writes and reads the latest observations; and runs' statuses, for explanations."""

    def record_queue_observations(self, observed: Sequence[QueueObservation]) -> None:
        self._upsert(
            queue_observations,
            [
                {
                    "queue": o.queue,
                    "messages": o.messages,
                    "consumers": o.consumers,
                    "observed_at": o.observed_at,
                }
                for o in observed
            ],
            ("queue",),
        )

    def record_workers_seen(self, seen: Mapping[str, datetime]) -> None:
        self._upsert(
            worker_observations,
            [{"hostname": name, "last_seen": at} for name, at in sorted(seen.items())],
            ("hostname",),
        )

    def queue_observations(self, queues: Sequence[str]) -> dict[str, QueueObservation]:
        found: dict[str, QueueObservation] = {}
        for part in chunks(list(queues)):
            for row in self._conn.execute(
                select(queue_observations).where(queue_observations.c.queue.in_(part))
            ).mappings():
                found[row["queue"]] = QueueObservation(
                    row["queue"], row["messages"], row["consumers"], row["observed_at"]
                )
        return found

    def worker_observations(self, hostnames: Sequence[str]) -> dict[str, WorkerObservation]:
        found: dict[str, WorkerObservation] = {}
        for part in chunks(list(hostnames)):
            for row in self._conn.execute(
                select(worker_observations).where(worker_observations.c.hostname.in_(part))
            ).mappings():
                found[row["hostname"]] = WorkerObservation(row["hostname"], row["last_seen"])
        return found

    def run_statuses(self, run_ids: Sequence[str]) -> dict[str, RunStatus]:
        """The status of each of these runs that exists."""
        found: dict[str, RunStatus] = {}
        for part in chunks(list(run_ids)):
            for run_id, status in self._conn.execute(
                select(runs.c.id, runs.c.status).where(runs.c.id.in_(part))
            ):
                found[run_id] = RunStatus(status)
        return found
