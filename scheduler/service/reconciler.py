"""Find attempts no worker will ever report on, and end them so their runs move on.

Workers normally report every attempt they run, and the core's own timeout timers end
attempts that run too long. The reconciler is the safety net for what neither covers:

* an attempt still queued or running well past its deadline (dispatch time + timeout, plus
  a grace period) that its run still waits for becomes ``TaskTimedOut`` (type ``Timeout``);
* an attempt running on a worker that has not answered Celery's ping (nor sent a report)
  for ``worker_lost_after`` seconds fails with ``WorkerLost``; that failure is retryable,
  so the task's retry policy decides between another attempt and failing the task.

Each ending is recorded on the attempt row with its ``reason`` and applied to the run in
the same transaction. Several schedulers may reconcile at once: recording an ending only
succeeds while the attempt is still open, so a second reconciler's ending is a no-op, and
the run lock serialises the events (a stale one is ignored by the core).

:func:`end_attempts` is also how the report applier records a batch of results together
with the attempts it fails for hitting the delivery limit, in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from treadle.common.errors import NotFound
from treadle.common.messages import TaskResult
from treadle.common.statuses import AttemptStatus
from treadle.scheduler.core.events import Event, TaskFailed, TaskTimedOut
from treadle.scheduler.core.ids import parse_attempt_id
from treadle.scheduler.core.state import RunState
from treadle.scheduler.service.runs import (
    AttemptEnding,
    RunService,
    result_event,
    result_outcome,
)
from treadle.scheduler.store import AttemptEntry, AttemptOutcome, Store, UnitOfWork

log = logging.getLogger("treadle.scheduler")

Ping = Callable[[Sequence[str], float], set[str]]


@dataclass(frozen=True)
class Ending:
    """An attempt the scheduler ends itself, because no worker result will come.

    ``status`` is what the attempt row records; ``reason`` says why (shown by ``treadle
    runs show``). A ``canceled`` ending only closes the row: the run no longer waits for it.
    """

    attempt_id: str
    status: AttemptStatus
    reason: str
    error: Mapping[str, Any] | None = None
    retryable: bool = True

    def outcome(self, now: datetime) -> AttemptOutcome:
        """The attempt row's new state."""
        return AttemptOutcome(
            attempt_id=self.attempt_id,
            status=self.status,
            finished_at=now,
            error=None if self.error is None else dict(self.error),
            reason=self.reason,
        )

    def event(self) -> Event | None:
        error = dict(self.error or {})
        if self.status is AttemptStatus.TIMED_OUT:
            return TaskTimedOut(attempt_id=self.attempt_id, error=error)
        if self.status is AttemptStatus.FAILED:
            return TaskFailed(attempt_id=self.attempt_id, error=error, retryable=self.retryable)
        return None


def end_attempts(
    uow: UnitOfWork,
    runs: RunService,
    endings: Sequence[Ending],
    now: datetime,
    *,
    results: Sequence[TaskResult] = (),
) -> list[Ending]:
    """Record ``endings`` (and worker ``results``) on attempts still open and apply the
    events of those that were; returns the endings applied.

    A result wins over an ending for the same attempt (the task did finish): results come
    first, and a second copy of either is ignored (see :meth:`RunService.settle_attempts`).
    """
    settled = runs.settle_attempts(
        uow,
        [
            *(AttemptEnding(result_outcome(r), result_event(r)) for r in results),
            *(AttemptEnding(e.outcome(now), e.event()) for e in endings),
        ],
    )
    result_ids = {r.attempt_id for r in results}
    return [e for e in endings if e.attempt_id in settled and e.attempt_id not in result_ids]


class WorkerLiveness:
    """When each worker was last heard from: a report it sent or a ping it answered.

    A worker this process has not heard from counts as heard from when its attempt started
    or when this process started, whichever is later, so a restarted scheduler gives every
    worker the full ``worker_lost_after`` before declaring it lost.
    """

    def __init__(self, since: datetime) -> None:
        self.since = since
        self._seen: dict[str, datetime] = {}

    def seen(self, worker: str, at: datetime) -> None:
        last = self._seen.get(worker)
        if last is None or at > last:
            self._seen[worker] = at

    def last_seen(self, worker: str, started_at: datetime | None = None) -> datetime:
        candidates = [self.since]
        if started_at is not None:
            candidates.append(started_at)
        if worker in self._seen:
            candidates.append(self._seen[worker])
        return max(candidates)


@dataclass(frozen=True)
class Reconciliation:
    """What one pass of the reconciler ended."""

    timed_out: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)

    @property
    def revoke(self) -> list[str]:
        """Attempts to revoke: a slow or orphaned copy must not keep running."""
        return [*self.timed_out, *self.lost]

    def __bool__(self) -> bool:
        return bool(self.timed_out or self.lost or self.closed)


def is_current(state: RunState, attempt_id: str) -> bool:
    """Whether ``state`` still waits for ``attempt_id`` (its unit's latest, unfinished try)."""
    ref = parse_attempt_id(attempt_id)
    if ref is None or state.status.is_terminal:
        return False
    execution = state.executions.get(ref.execution)
    if execution is None or execution.status.is_terminal:
        return False
    if not 0 <= ref.position < len(execution.units):
        return False
    unit = execution.units[ref.position]
    return unit.attempt == ref.attempt and not unit.status.is_terminal


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():g} s"


class Reconciler:
    """Ends overdue attempts and attempts on lost workers; see the module docstring."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime],
        liveness: WorkerLiveness,
        ping: Ping | None,
        worker_lost_after: timedelta,
        grace: timedelta = timedelta(seconds=30),
        ping_timeout: float = 1.0,
        limit: int = 500,
    ) -> None:
        self._store = store
        self._clock = clock
        self.liveness = liveness
        self._ping = ping
        self.worker_lost_after = worker_lost_after
        self.grace = grace
        self.ping_timeout = ping_timeout
        self._limit = limit

    def reconcile(self, runs: RunService) -> Reconciliation:
        """One pass: overdue attempts first, then attempts on lost workers."""
        now = self._clock()
        overdue = self._end_overdue(runs, now)
        lost = self._end_lost(runs, now)
        result = Reconciliation(
            timed_out=[e.attempt_id for e in overdue if e.status is AttemptStatus.TIMED_OUT],
            lost=[e.attempt_id for e in lost],
            closed=[e.attempt_id for e in overdue if e.status is AttemptStatus.CANCELED],
        )
        for attempt_id in result.timed_out:
            log.warning("attempt %s had no result by its deadline: timed out", attempt_id)
        for ending in lost:
            log.warning("attempt %s: %s", ending.attempt_id, ending.reason)
        return result

    # -- overdue attempts -------------------------------------------------------------------

    def _end_overdue(self, runs: RunService, now: datetime) -> list[Ending]:
        with self._store.unit_of_work() as uow:
            stuck = uow.stuck_attempts(now - self.grace, self._limit)
            if not stuck:
                return []
            states: dict[str, RunState | None] = {}
            endings = []
            for attempt in stuck:
                if attempt.run_id not in states:
                    try:
                        states[attempt.run_id] = uow.load_run(attempt.run_id)
                    except NotFound:
                        states[attempt.run_id] = None
                endings.append(self._overdue_ending(attempt, states[attempt.run_id]))
            return end_attempts(uow, runs, endings, now)

    def _overdue_ending(self, attempt: AttemptEntry, state: RunState | None) -> Ending:
        deadline = attempt.deadline or attempt.dispatched_at
        if state is None or not is_current(state, attempt.attempt_id):
            return Ending(
                attempt.attempt_id,
                AttemptStatus.CANCELED,
                reason=(
                    f"reconciler: past its deadline ({deadline.isoformat()}) and its run "
                    "no longer waits for it"
                ),
            )
        ref = parse_attempt_id(attempt.attempt_id)
        execution = state.executions[ref.execution] if ref is not None else None
        task = execution.task if execution is not None else attempt.action_ref
        timeout = deadline - attempt.dispatched_at
        return Ending(
            attempt.attempt_id,
            AttemptStatus.TIMED_OUT,
            reason=(
                f"reconciler: no result by the deadline {deadline.isoformat()} "
                f"(+{_seconds(self.grace)} grace)"
            ),
            error={
                "type": "Timeout",
                "message": (
                    f"attempt {attempt.attempt} of task '{task}' did not finish within its "
                    f"timeout of {_seconds(timeout)} (found by the reconciler: no result by "
                    "the deadline)"
                ),
            },
        )

    # -- lost workers -------------------------------------------------------------------------

    def _end_lost(self, runs: RunService, now: datetime) -> list[Ending]:
        if self._ping is None:
            return []
        with self._store.unit_of_work() as uow:
            running = uow.running_attempts(self._limit)
        workers = sorted({a.worker for a in running if a.worker})
        if not workers:
            return []
        try:
            answered = self._ping(workers, self.ping_timeout)
        except Exception as exc:
            log.warning("cannot ping the workers (%s); skipping the lost-worker check", exc)
            return []
        for worker in answered:
            self.liveness.seen(worker, now)
        endings = []
        for attempt in running:
            worker = attempt.worker or ""
            silent = now - self.liveness.last_seen(worker, attempt.started_at)
            if silent > self.worker_lost_after:
                endings.append(
                    Ending(
                        attempt.attempt_id,
                        AttemptStatus.FAILED,
                        reason=(
                            f"reconciler: worker {attempt.worker} did not answer pings for "
                            f"{silent.total_seconds():.0f} s"
                        ),
                        error={
                            "type": "WorkerLost",
                            "message": (
                                f"worker {attempt.worker} stopped answering while running "
                                "this attempt"
                            ),
                        },
                    )
                )
        if not endings:
            return []
        with self._store.unit_of_work() as uow:
            return end_attempts(uow, runs, endings, now)
