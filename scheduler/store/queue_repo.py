"""The store's work queues: outbox messages to publish, timers coming due, attempts to watch.

Several scheduler processes may drain these at once. On PostgreSQL each claim is
``SELECT ... FOR UPDATE SKIP LOCKED``: a row one process holds is invisible to the others
until its transaction ends, so no message is published twice by two relays and no timer
fires twice. On SQLite one unit of work at a time holds the database's write lock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, or_, select, update
from sqlalchemy.engine import Dialect

from treadle.common.emergency_stop import EMERGENCY_STOP
from treadle.common.errors import NotFound
from treadle.common.statuses import AttemptStatus
from treadle.scheduler.core.endings import AttemptEnding
from treadle.scheduler.core.state import TimerKind
from treadle.scheduler.store.base import Repository, chunks
from treadle.scheduler.store.bulk import bulk_update
from treadle.scheduler.store.entries import AttemptEntry, OutboxEntry, TimerEntry
from treadle.scheduler.store.models import attempts, outbox, timers
from treadle.scheduler.store.results_statement import results_statement

_OPEN = (AttemptStatus.QUEUED.value, AttemptStatus.RUNNING.value)

#: The PostgreSQL channel a save writing outbox rows for the schedulers notifies (a
#: client's save: ``notify_outbox``, :mod:`.command_rows`); schedulers LISTEN on it.
OUTBOX_CHANNEL = "treadle_outbox"


# Built once: constructing statements costs more than running them on SQLite.
_CLAIM_OUTBOX = Repository._claim(
    select(outbox.c.id, outbox.c.run_id, outbox.c.payload)
    .where(outbox.c.sent_at.is_(None))
    # A row the scheduler that wrote it is publishing itself waits out its hold.
    .where(or_(outbox.c.held_until.is_(None), outbox.c.held_until <= bindparam("now")))
    # A dispatch waiting for a concurrency slot or a rate limit stays until released.
    .where(outbox.c.flow_key.is_(None))
    .order_by(outbox.c.id)
    .limit(bindparam("limit"))
)
_MARK_SENT = (
    update(outbox)
    .where(outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(sent_at=bindparam("at"), publish_attempts=outbox.c.publish_attempts + 1)
)
_MARK_STARTED = (
    update(attempts)
    .where(attempts.c.attempt_id == bindparam("k_attempt_id"), attempts.c.status.in_(_OPEN))
    .values(
        status=AttemptStatus.RUNNING.value,
        worker=bindparam("k_worker"),
        worker_pid=bindparam("k_pid"),
        started_at=bindparam("k_at"),
        deliveries=attempts.c.deliveries + 1,
    )
    .returning(attempts.c.deliveries)
)
_RUNNING_ATTEMPTS = (
    select(attempts)
    .where(attempts.c.status == AttemptStatus.RUNNING.value, attempts.c.worker.is_not(None))
    .order_by(attempts.c.started_at, attempts.c.attempt_id)
    .limit(bindparam("limit"))
)
_OPEN_ATTEMPTS = Repository._lock_rows(
    select(
        attempts.c.attempt_id,
        attempts.c.worker,
        attempts.c.started_at,
        attempts.c.reason,
        attempts.c.action_ref,
        attempts.c.dispatched_at,
    )
    .where(attempts.c.attempt_id.in_(bindparam("ids", expanding=True)))
    .where(attempts.c.status.in_(_OPEN))
)


#: Published outbox rows to mark sent: groups of (row ids, when the broker confirmed them).
SentMarks = Sequence[tuple[Sequence[int], datetime]]


@dataclass(frozen=True)
class EndedAttempt:
    """An attempt :meth:`QueueRepository.record_results` ended: its action, when it was
    dispatched and how it ended (for the scheduler's task metrics)."""

    attempt_id: str
    action_ref: str
    status: AttemptStatus
    dispatched_at: datetime
    finished_at: datetime | None


@cache
def _record_processors(dialect: Dialect) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """The bind processors of ``attempts.finished_at`` and ``attempts.error`` (array
    elements bypass SQLAlchemy's types, as in ``bulk``)."""

    def same(value: Any) -> Any:
        return value

    return (
        attempts.c.finished_at.type.bind_processor(dialect) or same,
        attempts.c.error.type.bind_processor(dialect) or same,
    )


class QueueRepository(Repository):
    """Outbox, timers and attempts."""

    # --- outbox -------------------------------------------------------------------------

    def claim_outbox(self, limit: int) -> list[OutboxEntry]:
        """Unsent messages not held by their writer (see :mod:`.command_rows`), oldest
        first, locked for this transaction."""
        rows = (
            self._conn.execute(_CLAIM_OUTBOX, {"limit": limit, "now": self._clock()})
            .mappings()
            .all()
        )
        return [
            OutboxEntry(id=row["id"], run_id=row["run_id"], payload=row["payload"]) for row in rows
        ]

    def mark_outbox_sent(self, ids: Sequence[int], at: datetime) -> None:
        """Mark published entries sent and count the publish (a failed publish rolls back)."""
        for part in chunks(list(ids)):
            self._conn.execute(_MARK_SENT, {"ids": list(part), "at": at})

    def release_outbox(self, ids: Sequence[int]) -> None:
        """Lift the hold of rows their writer could not publish: a relay takes them now."""
        for part in chunks(list(ids)):
            self._conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(part), outbox.c.sent_at.is_(None))
                .values(held_until=None)
            )

    def pending_outbox_count(self) -> int:
        """Unsent outbox rows a relay could publish now (not those flow control holds)."""
        count = self._conn.execute(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.sent_at.is_(None), outbox.c.flow_key.is_(None))
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
        return [
            AttemptEntry.from_row(row) for row in self._conn.execute(self._claim(stmt)).mappings()
        ]

    def get_attempt(self, attempt_id: str) -> AttemptEntry:
        row = (
            self._conn.execute(select(attempts).where(attempts.c.attempt_id == attempt_id))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"attempt {attempt_id} not found")
        return AttemptEntry.from_row(row)

    def list_attempts(self, run_id: str) -> list[AttemptEntry]:
        """Every attempt of a run, in dispatch order."""
        rows = self._conn.execute(
            select(attempts)
            .where(attempts.c.run_id == run_id)
            .order_by(attempts.c.dispatched_at, attempts.c.attempt_id)
        ).mappings()
        return [AttemptEntry.from_row(row) for row in rows]

    def open_attempts(self, run_id: str, *, limit: int = 1000) -> list[AttemptEntry]:
        """A run's attempts still queued or running, oldest dispatch first (at most ``limit``)."""
        rows = self._conn.execute(
            select(attempts)
            .where(attempts.c.run_id == run_id, attempts.c.status.in_(_OPEN))
            .order_by(attempts.c.dispatched_at, attempts.c.attempt_id)
            .limit(limit)
        ).mappings()
        return [AttemptEntry.from_row(row) for row in rows]

    def record_results(
        self,
        outcomes: Sequence[AttemptEnding],
        *,
        ended: list[EndedAttempt] | None = None,
        sent: SentMarks = (),
        lock: Sequence[str] = (),
    ) -> set[str]:
        """Record many attempt endings in two statements; returns the ids that were fresh.

        An attempt that is unknown or already ended (a duplicate delivery, or a second
        result for the same attempt in this batch) is left as it is and not returned.
        ``worker``, ``started_at`` and ``reason`` keep their stored values when ``None``;
        ``reason`` says why the scheduler, rather than a worker, ended the attempt.
        ``ended``, when given, receives each fresh attempt's action and dispatch time (read
        by the same statements). ``sent`` outbox rows are marked sent as
        :meth:`mark_outbox_sent` would (on PostgreSQL by the same statement). The runs
        ``lock`` are locked first, as ``lock_runs`` locks them (on PostgreSQL by the same
        statement, :mod:`.results_statement`).
        """
        if self._postgres and outcomes:
            return self._record_results_returning(outcomes, ended, sent, lock)
        self._lock_runs(lock)
        for ids, at in sent:  # nothing to ride on (SQLite, or no endings)
            self.mark_outbox_sent(ids, at)
        if self._postgres:
            return set()
        wanted = list(dict.fromkeys(o.attempt_id for o in outcomes))
        stored: dict[str, Mapping[Any, Any]] = {}
        for part in chunks(wanted):
            for found in self._conn.execute(_OPEN_ATTEMPTS, {"ids": list(part)}).mappings():
                stored[found["attempt_id"]] = found
        rows: list[dict[str, Any]] = []
        fresh: set[str] = set()
        for o in outcomes:
            row = stored.get(o.attempt_id)
            if row is None or o.attempt_id in fresh:
                continue
            fresh.add(o.attempt_id)
            if ended is not None:
                ended.append(_ended(o, row["action_ref"], row["dispatched_at"]))
            rows.append(
                {
                    "attempt_id": o.attempt_id,
                    "status": o.status.value,
                    "finished_at": o.finished_at,
                    "error": None if o.error is None else dict(o.error),
                    "worker": o.worker if o.worker is not None else row["worker"],
                    "started_at": o.started_at if o.started_at is not None else row["started_at"],
                    "reason": o.reason if o.reason is not None else row["reason"],
                }
            )
        bulk_update(self._conn, attempts, ("attempt_id",), rows)
        return fresh

    def _record_results_returning(
        self,
        outcomes: Sequence[AttemptEnding],
        ended: list[EndedAttempt] | None,
        sent: SentMarks,
        lock: Sequence[str],
    ) -> set[str]:
        """:meth:`record_results` in one statement: the UPDATE locks and changes only the
        open rows, keeps stored values where the ending has none, and returns what it
        changed (the first ending of each attempt in the batch wins)."""
        first: dict[str, AttemptEnding] = {}
        for o in outcomes:
            first.setdefault(o.attempt_id, o)
        processors = _record_processors(self._conn.dialect)
        params: dict[str, Any] = {
            "ids": list(first),
            "statuses": [o.status.value for o in first.values()],
            "finished": [processors[0](o.finished_at) for o in first.values()],
            "errors": [
                processors[1](None if o.error is None else dict(o.error)) for o in first.values()
            ],
            "workers": [o.worker for o in first.values()],
            "started": [processors[0](o.started_at) for o in first.values()],
            "reasons": [o.reason for o in first.values()],
        }
        if sent:
            params["sent_ids"] = [row_id for ids, _ in sent for row_id in ids]
            params["sent_at"] = [processors[0](at) for ids, at in sent for _ in ids]
        locking = self._not_locked(lock)
        if locking:
            params["lock_ids"] = locking
        statement = results_statement(marking=bool(sent), locking=bool(locking))
        fresh: set[str] = set()
        for row in self._execute_prepared(statement, params):
            # (id, version, last_seq, action_ref, dispatched_at) when locking, else the
            # attempt's three (see results_statement)
            values: tuple[Any, ...] = row if locking else (row[0], None, None, row[1], row[2])
            key, version, last_seq, action_ref, dispatched_at = values
            if version is not None:
                self._note_locked(key, version, last_seq)
                continue
            fresh.add(key)
            if ended is not None:
                ended.append(_ended(first[key], action_ref, dispatched_at))
        return fresh

    def lost_attempt_counts(
        self, entries: Sequence[AttemptEntry]
    ) -> dict[tuple[str, int, int], int]:
        """How many attempts of each of these attempts' units were lost with their worker
        or the broker, by (run, execution, position); units with none are missing (attempts
        an emergency stop took back do not count)."""
        wanted = {entry.unit_key for entry in entries}
        counts: dict[tuple[str, int, int], int] = {}
        for part in chunks(sorted({run_id for run_id, _, _ in wanted})):
            rows = self._conn.execute(
                select(
                    attempts.c.run_id, attempts.c.execution_id, attempts.c.position, func.count()
                )
                .where(
                    attempts.c.run_id.in_(part),
                    attempts.c.status == AttemptStatus.LOST.value,
                    # taken back by an emergency stop: no fault of the worker or broker
                    or_(attempts.c.reason.is_(None), ~attempts.c.reason.startswith(EMERGENCY_STOP)),
                )
                .group_by(
                    attempts.c.run_id,
                    attempts.c.execution_id,
                    attempts.c.position,
                )
            )
            for run_id, execution_id, position, count in rows:
                key = (run_id, execution_id, position)
                if key in wanted:
                    counts[key] = int(count)
        return counts

    def queued_attempts(self, attempt_ids: Sequence[str]) -> list[AttemptEntry]:
        """Those of ``attempt_ids`` still queued: dispatched, and no worker said it started."""
        found: list[AttemptEntry] = []
        for part in chunks(sorted(set(attempt_ids))):
            rows = self._conn.execute(
                select(attempts)
                .where(attempts.c.attempt_id.in_(part))
                .where(attempts.c.status == AttemptStatus.QUEUED.value)
                .order_by(attempts.c.attempt_id)
            ).mappings()
            found.extend(AttemptEntry.from_row(row) for row in rows)
        return found

    def published_queued_attempts(self, before: datetime, limit: int) -> list[AttemptEntry]:
        """Attempts still queued that were dispatched before ``before`` and whose dispatch
        the relay has published (no unsent outbox row of their run from the moment they were
        dispatched), oldest first (no locks)."""
        unsent = exists().where(
            outbox.c.run_id == attempts.c.run_id,
            outbox.c.created_at == attempts.c.dispatched_at,
            outbox.c.sent_at.is_(None),
        )
        rows = self._conn.execute(
            select(attempts)
            .where(attempts.c.status == AttemptStatus.QUEUED.value)
            .where(attempts.c.dispatched_at < before)
            .where(~unsent)
            .order_by(attempts.c.dispatched_at, attempts.c.attempt_id)
            .limit(limit)
        ).mappings()
        return [AttemptEntry.from_row(row) for row in rows]

    def running_attempts(self, limit: int) -> list[AttemptEntry]:
        """Attempts a worker has started and not finished, oldest start first (no locks)."""
        rows = self._conn.execute(_RUNNING_ATTEMPTS, {"limit": limit}).mappings()
        return [AttemptEntry.from_row(row) for row in rows]

    def mark_attempt_started(
        self, attempt_id: str, worker: str, at: datetime, worker_pid: int | None = None
    ) -> int | None:
        """A worker began the attempt; returns how many times it has been started.

        A redelivery (the first worker died) updates the worker and counts again, which is
        how a task that keeps killing its worker is noticed on brokers without a delivery
        limit. ``None`` when the attempt is unknown or already ended.
        """
        started = self._conn.execute(
            _MARK_STARTED,
            {"k_attempt_id": attempt_id, "k_worker": worker, "k_at": at, "k_pid": worker_pid},
        ).scalar_one_or_none()
        return None if started is None else int(started)


def _ended(ending: AttemptEnding, action_ref: str, dispatched_at: datetime) -> EndedAttempt:
    return EndedAttempt(
        ending.attempt_id, action_ref, ending.status, dispatched_at, ending.finished_at
    )
