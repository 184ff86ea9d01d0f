"""The store's work queues: outbox messages to publish, timers coming due, attempts to watch.

Several scheduler processes may drain these at once. On PostgreSQL each claim is
``SELECT ... FOR UPDATE SKIP LOCKED``: a row one process holds is invisible to the others
until its transaction ends, so no message is published twice by two relays and no timer
fires twice. On SQLite one unit of work at a time holds the database's write lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update

from treadle.common.errors import NotFound
from treadle.common.statuses import AttemptStatus
from treadle.scheduler.core.state import TimerKind
from treadle.scheduler.store.base import Repository, chunks
from treadle.scheduler.store.entries import AttemptEntry, OutboxEntry, TimerEntry
from treadle.scheduler.store.models import attempts, outbox, timers

_OPEN = (AttemptStatus.QUEUED.value, AttemptStatus.RUNNING.value)


class QueueRepository(Repository):
    """Outbox, timers and attempts."""

    # --- outbox -------------------------------------------------------------------------

    def claim_outbox(self, limit: int) -> list[OutboxEntry]:
        """Unsent messages, oldest first, locked for this transaction; counts a publish try."""
        stmt = (
            select(outbox.c.id, outbox.c.run_id, outbox.c.kind, outbox.c.payload, outbox.c.queue)
            .where(outbox.c.sent_at.is_(None))
            .order_by(outbox.c.id)
            .limit(limit)
        )
        rows = self._conn.execute(self._claim(stmt)).mappings().all()
        entries = [
            OutboxEntry(
                id=row["id"],
                run_id=row["run_id"],
                kind=row["kind"],
                payload=row["payload"],
                queue=row["queue"],
            )
            for row in rows
        ]
        ids = [entry.id for entry in entries]
        for part in chunks(ids):
            self._conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(part))
                .values(publish_attempts=outbox.c.publish_attempts + 1)
            )
        return entries

    def mark_outbox_sent(self, ids: Sequence[int], at: datetime) -> None:
        for part in chunks(list(ids)):
            self._conn.execute(update(outbox).where(outbox.c.id.in_(part)).values(sent_at=at))

    def pending_outbox_count(self) -> int:
        count = self._conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        ).scalar_one()
        return int(count)

    # --- timers -------------------------------------------------------------------------

    def due_timers(self, now: datetime, limit: int) -> list[TimerEntry]:
        """Timers with ``fire_at <= now``, oldest first, locked for this transaction."""
        stmt = (
            select(timers.c.id, timers.c.run_id, timers.c.kind, timers.c.fire_at)
            .where(timers.c.fire_at <= now)
            .order_by(timers.c.fire_at, timers.c.id)
            .limit(limit)
        )
        return [
            TimerEntry(
                id=row["id"],
                run_id=row["run_id"],
                kind=TimerKind(row["kind"]),
                fire_at=row["fire_at"],
            )
            for row in self._conn.execute(self._claim(stmt)).mappings()
        ]

    def delete_timers(self, ids: Sequence[str]) -> None:
        for part in chunks(list(ids)):
            self._conn.execute(delete(timers).where(timers.c.id.in_(part)))

    def next_timer_at(self) -> datetime | None:
        """When the earliest timer fires (``None`` without timers): how long a loop may sleep."""
        value: datetime | None = self._conn.execute(
            select(func.min(timers.c.fire_at))
        ).scalar_one_or_none()
        return value

    # --- attempts -----------------------------------------------------------------------

    def stuck_attempts(self, now: datetime, limit: int) -> list[AttemptEntry]:
        """Queued or running attempts whose deadline passed, oldest deadline first."""
        stmt = (
            select(attempts)
            .where(
                attempts.c.status.in_(_OPEN),
                attempts.c.deadline.is_not(None),
                attempts.c.deadline < now,
            )
            .order_by(attempts.c.deadline, attempts.c.attempt_id)
            .limit(limit)
        )
        return [_attempt(row) for row in self._conn.execute(self._claim(stmt)).mappings()]

    def get_attempt(self, attempt_id: str) -> AttemptEntry:
        row = (
            self._conn.execute(select(attempts).where(attempts.c.attempt_id == attempt_id))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"attempt {attempt_id} not found")
        return _attempt(row)

    def list_attempts(self, run_id: str) -> list[AttemptEntry]:
        """Every attempt of a run, in dispatch order."""
        rows = self._conn.execute(
            select(attempts)
            .where(attempts.c.run_id == run_id)
            .order_by(attempts.c.dispatched_at, attempts.c.attempt_id)
        ).mappings()
        return [_attempt(row) for row in rows]

    def record_result(
        self,
        attempt_id: str,
        status: AttemptStatus,
        *,
        worker: str | None,
        started_at: datetime | None,
        finished_at: datetime | None,
        error: Mapping[str, Any] | None,
        reason: str | None = None,
    ) -> bool:
        """Record how an attempt ended. False if it is unknown or already ended (a duplicate).

        ``reason`` says why a reconciler, rather than a worker, ended or re-dispatched it.
        ``worker`` and ``started_at`` keep their stored values when ``None`` is given.
        """
        values: dict[str, Any] = {
            "status": status.value,
            "finished_at": finished_at,
            "error": None if error is None else dict(error),
        }
        if worker is not None:
            values["worker"] = worker
        if started_at is not None:
            values["started_at"] = started_at
        if reason is not None:
            values["reason"] = reason
        result = self._conn.execute(
            update(attempts)
            .where(attempts.c.attempt_id == attempt_id, attempts.c.status.in_(_OPEN))
            .values(values)
        )
        return result.rowcount == 1

    def mark_attempt_started(self, attempt_id: str, worker: str, at: datetime) -> None:
        """A worker began the attempt (a redelivery to another worker updates the worker)."""
        self._conn.execute(
            update(attempts)
            .where(attempts.c.attempt_id == attempt_id, attempts.c.status.in_(_OPEN))
            .values(status=AttemptStatus.RUNNING.value, worker=worker, started_at=at)
        )


def _attempt(row: Mapping[Any, Any]) -> AttemptEntry:
    return AttemptEntry(
        attempt_id=row["attempt_id"],
        run_id=row["run_id"],
        execution_id=row["execution_id"],
        position=row["position"],
        attempt=row["attempt"],
        action_ref=row["action_ref"],
        queue=row["queue"],
        status=AttemptStatus(row["status"]),
        worker=row["worker"],
        dispatched_at=row["dispatched_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        deadline=row["deadline"],
        error=row["error"],
        reason=row["reason"],
    )
