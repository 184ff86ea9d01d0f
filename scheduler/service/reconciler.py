"""Find attempts no worker will ever report on, and end them so their runs move on.

Workers normally report every attempt they run, and the core's own timeout timers end
attempts that run too long. The reconciler is the safety net for what neither covers:

* an attempt still queued or running well past its deadline (dispatch time + timeout, plus
  a grace period) that its run still waits for becomes ``TaskTimedOut`` (type ``Timeout``);
* an attempt running on a worker that has not answered Celery's ping (nor sent a report)
  for ``worker_lost_after`` seconds is ``lost`` (``WorkerLost``): an infrastructure fault,
  not the action's, so the task runs again at once as a new attempt without charging its
  retry policy; a unit lost more than ``delivery_limit`` times fails for good
  (``DeliveryLimitExceeded``). The new attempt has a new id: a late copy of the old
  message, if the broker ever delivers it, is stale and dropped. Silence while the broker
  itself could not be reached does not count: workers get the whole ``worker_lost_after``
  again once it answers. Workers answer the ``treadle_worker_state`` control command
  with their main process id and the attempts they hold: a worker restarted under the
  same name (another main process id) does not vouch for the attempts its predecessor
  started, and an attempt a live worker no longer holds, with no result for
  ``worker_lost_after``, lost its report on the way and is lost too. On Redis, an attempt a
  worker reserved and never started within ``worker_lost_after`` is lost the same way,
  instead of waiting out the visibility timeout;
* on Redis, when the server's ``run_id`` changes (it restarted), every attempt still queued
  from before whose message is no longer on the broker (neither in its queue nor reserved
  by a worker) is ``lost`` (``MessageLost``) and runs again the same way: Redis without
  persistence comes back empty. Attempts whose messages survived (persistence on) are left
  alone, so nothing runs twice (unless a worker took and finished one in the moment
  between the restart and the check, its reports not yet applied). The last ``run_id``
  seen is stored (``broker_incarnations``), so a restart while no scheduler ran is
  noticed by the next one to start.

Each ending (an :class:`~treadle.scheduler.core.endings.AttemptEnding`) is recorded on the
attempt row with its ``reason`` and applied to the run in the same transaction. Several
schedulers may reconcile at once: recording an ending only succeeds while the attempt is
still open, so a second reconciler's ending is a no-op, and the run lock serialises the
events (a stale one is ignored by the core).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from treadle.common.errors import NotFound
from treadle.common.statuses import AttemptStatus
from treadle.common.transport import WorkerState
from treadle.scheduler.core.endings import AttemptEnding
from treadle.scheduler.core.ids import parse_attempt_id
from treadle.scheduler.core.queries import is_current
from treadle.scheduler.core.state import RunState
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.store import AttemptEntry, Store, UnitOfWork

log = logging.getLogger("treadle.scheduler")

#: Attempts reserved by a worker longer than the given seconds ago, with how long ago.
Reservations = Callable[[float], Mapping[str, float]]
#: Asks workers by name; answers name -> its state (main process id, attempts held).
Ping = Callable[[Sequence[str], float], Mapping[str, WorkerState]]
#: Which incarnation of the broker answers (Redis's ``run_id``; None: not tracked).
Incarnation = Callable[[], str | None]
#: The attempts whose messages the broker still holds, given the queues they went to.
Held = Callable[[Sequence[str]], Collection[str]]
#: An attempt found lost: (attempt, reason for the record, message of its error).
_Loss = tuple[AttemptEntry, str, str]


def _settled(
    uow: UnitOfWork, runs: RunService, endings: Sequence[AttemptEnding]
) -> list[AttemptEnding]:
    """Record ``endings`` on attempts still open and apply their events; returns those
    that were (a second reconciler, or the worker's result, may have come first)."""
    fresh = runs.settle(uow, endings)
    return [ending for ending in endings if ending.attempt_id in fresh]


class WorkerLiveness:
    """When each worker was last heard from: a report it sent or a ping it answered.

    A worker this process has not heard from counts as heard from when its attempt started
    or when this process started, whichever is later, so a restarted scheduler gives every
    worker the full ``worker_lost_after`` before declaring it lost; the same holds from the
    moment the broker answers again after it could not be reached.
    """

    def __init__(self, since: datetime) -> None:
        self.since = since
        self._seen: dict[str, datetime] = {}
        self._broker_lost = False

    def seen(self, worker: str, at: datetime) -> None:
        last = self._seen.get(worker)
        if last is None or at > last:
            self._seen[worker] = at

    def heard_from(self) -> dict[str, datetime]:
        """When this process last heard from each worker it heard from."""
        return dict(self._seen)

    def broker_unreachable(self) -> None:
        """The broker could not be reached: workers cannot be heard until it is back."""
        self._broker_lost = True

    def broker_reachable(self, at: datetime) -> bool:
        """The broker answers again; True (and silence counted only from ``at``) when it
        had been unreachable."""
        if not self._broker_lost:
            return False
        self._broker_lost = False
        self.since = max(self.since, at)
        return True

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
    #: Those of ``lost`` whose message a restarted broker lost (for the metrics).
    vanished: list[str] = field(default_factory=list)

    @property
    def revoke(self) -> list[str]:
        """Attempts to revoke: a slow or orphaned copy must not keep running."""
        return [*self.timed_out, *self.lost]

    def __bool__(self) -> bool:
        return bool(self.timed_out or self.lost or self.closed)


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
        delivery_limit: int = 5,
        reservations: Reservations | None = None,
        incarnation: Incarnation | None = None,
        held: Held | None = None,
        broker: str = "broker",
    ) -> None:
        self._store = store
        self._incarnation = incarnation
        self._held = held
        #: The key under which the broker's last seen incarnation is stored.
        self._broker = broker
        #: The broker incarnation whose lost messages have been looked for.
        self.broker_incarnation: str | None = None
        self.delivery_limit = delivery_limit
        self._reservations = reservations
        self._clock = clock
        self.liveness = liveness
        self._ping = ping
        self.worker_lost_after = worker_lost_after
        self.grace = grace
        self.ping_timeout = ping_timeout
        self._limit = limit
        #: Running attempts their live worker no longer holds, since when (see _end_lost).
        self._unheld: dict[str, datetime] = {}

    def reconcile(self, runs: RunService) -> Reconciliation:
        """One pass: overdue attempts, then messages a restarted broker lost, then
        attempts on lost workers."""
        now = self._clock()
        overdue = self._end_overdue(runs, now)
        vanished = self._end_vanished(runs, now)
        lost = [*vanished, *self._end_lost(runs, now)]
        result = Reconciliation(
            timed_out=[e.attempt_id for e in overdue if e.status is AttemptStatus.TIMED_OUT],
            lost=[e.attempt_id for e in lost],
            closed=[e.attempt_id for e in overdue if e.status is AttemptStatus.CANCELED],
            vanished=[e.attempt_id for e in vanished],
        )
        for attempt_id in result.timed_out:
            log.warning("attempt %s had no result by its deadline: timed out", attempt_id)
        for ending in lost:
            log.warning("attempt %s: %s", ending.attempt_id, ending.reason)
        return result

    # -- overdue attempts -------------------------------------------------------------------

    def _end_overdue(self, runs: RunService, now: datetime) -> list[AttemptEnding]:
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
                endings.append(self._overdue_ending(attempt, states[attempt.run_id], now))
            return _settled(uow, runs, endings)

    def _overdue_ending(
        self, attempt: AttemptEntry, state: RunState | None, now: datetime
    ) -> AttemptEnding:
        deadline = attempt.deadline or attempt.dispatched_at
        if state is None or not is_current(state, attempt.attempt_id):
            return AttemptEnding(
                attempt.attempt_id,
                AttemptStatus.CANCELED,
                finished_at=now,
                reason=(
                    f"reconciler: past its deadline ({deadline.isoformat()}) and its run "
                    "no longer waits for it"
                ),
            )
        ref = parse_attempt_id(attempt.attempt_id)
        execution = state.executions[ref.execution] if ref is not None else None
        task = execution.task if execution is not None else attempt.action_ref
        timeout = deadline - attempt.dispatched_at
        return AttemptEnding(
            attempt.attempt_id,
            AttemptStatus.TIMED_OUT,
            finished_at=now,
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

    def _end_lost(self, runs: RunService, now: datetime) -> list[AttemptEnding]:
        if self._ping is None:
            return []
        with self._store.unit_of_work() as uow:
            running = uow.running_attempts(self._limit)
        workers = sorted({a.worker for a in running if a.worker})
        try:
            answered = self._ping(workers, self.ping_timeout) if workers else {}
            reserved = self._reserved_too_long()
        except Exception as exc:
            log.warning("cannot reach the workers (%s); skipping the lost-worker check", exc)
            self.liveness.broker_unreachable()
            return []
        if self.liveness.broker_reachable(now):
            # Workers could not be heard while the broker could not be reached: they get
            # the whole ``worker_lost_after`` again from now.
            return []
        for worker in answered:
            self.liveness.seen(worker, now)
        lost: list[_Loss] = []
        if reserved:
            with self._store.unit_of_work() as uow:
                for attempt in uow.queued_attempts(list(reserved)):
                    held = f"{reserved[attempt.attempt_id]:.0f} s"
                    why = f"a worker reserved it {held} ago and never started it"
                    lost.append((attempt, why, "the worker that reserved this attempt was lost"))
        unheld: dict[str, datetime] = {}
        for attempt in running:
            worker = attempt.worker or ""
            state = answered.get(worker)
            pid = state.pid if state is not None else None
            if pid is not None and attempt.worker_pid is not None and pid != attempt.worker_pid:
                # Another incarnation answers for the name: the process that started the
                # attempt is gone, however lively its successor is.
                gone = f"pid {attempt.worker_pid} is gone, {pid} answers"
                what = f"worker {worker} restarted while running this attempt"
                lost.append((attempt, f"worker {worker} restarted ({gone})", what))
                continue
            if state is not None and state.attempts is not None:
                if attempt.attempt_id in state.attempts:
                    continue
                # Alive, yet no longer holding it: its result is on the way, or was lost
                # (a Redis broker that restarted empty took it along).
                since = unheld[attempt.attempt_id] = self._unheld.get(attempt.attempt_id, now)
                if now - since > self.worker_lost_after:
                    ago = _seconds(now - since)
                    why = f"worker {worker} no longer holds it and no result came for {ago}"
                    lost.append((attempt, why, f"the result of this attempt on {worker} was lost"))
                continue
            silent = now - self.liveness.last_seen(worker, attempt.started_at)
            if silent > self.worker_lost_after:
                seconds = f"{silent.total_seconds():.0f} s"
                why = f"worker {worker} did not answer pings for {seconds}"
                lost.append(
                    (attempt, why, f"worker {worker} stopped answering while running this attempt")
                )
        self._unheld = unheld
        return self._settle_lost(runs, lost, now, "WorkerLost")

    def _settle_lost(
        self, runs: RunService, lost: Sequence[_Loss], now: datetime, error_type: str
    ) -> list[AttemptEnding]:
        """End ``lost`` attempts (see :meth:`_lost_ending`); returns the endings recorded."""
        if not lost:
            return []
        with self._store.unit_of_work() as uow:
            losses = uow.lost_attempt_counts([a for a, _, _ in lost])
            endings = [
                self._lost_ending(
                    attempt,
                    why,
                    message,
                    losses.get(attempt.unit_key, 0),
                    now,
                    error_type=error_type,
                )
                for attempt, why, message in lost
            ]
            return _settled(uow, runs, endings)

    # -- a broker that restarted empty --------------------------------------------------------

    def note_broker(self) -> None:
        """Learn which incarnation of the broker was last seen (at the scheduler's start).
        When none was ever stored, the one answering now is noted; when the stored one
        differs from it, the broker restarted while no scheduler ran, and the first pass
        looks for what it lost. Best effort."""
        if self._incarnation is None or self.broker_incarnation is not None:
            return
        try:
            seen = self._incarnation()
        except Exception as exc:
            log.warning("cannot ask the broker which incarnation it is (%s)", exc)
            return
        if seen is None:
            return
        with self._store.unit_of_work() as uow:
            known = uow.noted_incarnation(self._broker)
            if known is None:
                uow.note_incarnation(self._broker, seen, self._clock())
        self.broker_incarnation = known or seen

    def _note(self, incarnation: str) -> None:
        with self._store.unit_of_work() as uow:
            uow.note_incarnation(self._broker, incarnation, self._clock())
        self.broker_incarnation = incarnation

    def _end_vanished(self, runs: RunService, now: datetime) -> list[AttemptEnding]:
        """When the broker is another incarnation than last seen, attempts queued before now
        whose messages it no longer holds are lost. The incarnation is noted only once
        every such attempt was looked at, so a failed or partial pass is taken up again."""
        if self._incarnation is None or self._held is None:
            return []
        try:
            seen = self._incarnation()
        except Exception as exc:
            log.warning("cannot ask the broker which incarnation it is (%s)", exc)
            return []
        known = self.broker_incarnation
        if seen is None or seen == known:
            return []
        if known is None:  # the first look: nothing to compare with
            self.note_broker()
            return []
        log.warning(
            "the broker restarted (run id %s, was %s): looking for lost messages", seen, known
        )
        with self._store.unit_of_work() as uow:
            queued = uow.published_queued_attempts(now, self._limit)
        try:
            held = self._held(sorted({a.queue for a in queued if a.queue}))
        except Exception as exc:
            log.warning("cannot read the broker's messages (%s); trying again later", exc)
            return []
        if len(queued) < self._limit:  # else the next pass looks at the rest
            self._note(seen)
        why = "the broker restarted and lost the message"
        vanished = [
            (a, why, f"{why} of this attempt")
            for a in queued
            if a.queue and a.attempt_id not in held
        ]
        return self._settle_lost(runs, vanished, now, "MessageLost")

    def _reserved_too_long(self) -> Mapping[str, float]:
        """Attempts a worker took off the queue longer than ``worker_lost_after`` ago and
        still has not acknowledged (Redis), by id, with how long ago. A live worker starts
        what it reserves at once (prefetch is one task per pool process), so one that did
        not has died with it: on Redis the message would wait out the visibility timeout."""
        if self._reservations is None:
            return {}
        return self._reservations(self.worker_lost_after.total_seconds())

    def _lost_ending(
        self,
        attempt: AttemptEntry,
        why: str,
        message: str,
        lost_before: int,
        now: datetime,
        *,
        error_type: str,
    ) -> AttemptEnding:
        """The attempt is ``lost`` (``why`` for the record, ``message`` and ``error_type``
        for the error): the task runs again as a new attempt, its retry policy not charged;
        after ``delivery_limit`` losses of one unit it fails for good."""
        reason = f"reconciler: {why}"
        if lost_before >= self.delivery_limit:
            return AttemptEnding(
                attempt.attempt_id,
                AttemptStatus.FAILED,
                finished_at=now,
                reason=reason,
                retryable=False,
                error={
                    "type": "DeliveryLimitExceeded",
                    "message": (
                        f"the task's attempts were lost {lost_before + 1} times (a worker or "
                        "the broker lost them; each time it was run again); it is not retried"
                    ),
                },
            )
        return AttemptEnding(
            attempt.attempt_id,
            AttemptStatus.LOST,
            finished_at=now,
            reason=reason,
            error={"type": error_type, "message": message},
        )
