"""The scheduler's gauges, read now and then: from the database, the broker's last
observation and the workers' last signs of life.

:class:`MetricsRefresher` sets them every ``interval`` seconds (the scheduler uses
``TREADLE_OBSERVE_SECONDS``), never per step: one read-only snapshot of a few counting
queries (:func:`read_gauges`), plus what the process knows already (the
:class:`~treadle.scheduler.service.broker_observer.BrokerObserver`'s ``latest`` queue
readings and :class:`~treadle.scheduler.service.reconciler.WorkerLiveness`). Every scheduler
reads the same rows, so these gauges are taken with ``max()`` across schedulers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, not_, select

from treadle.common.flow import ClaimKind
from treadle.common.metrics import Metrics
from treadle.common.statuses import RUN_TERMINAL, AttemptStatus, InquiryStatus, RunStatus
from treadle.scheduler.store import Store, UnitOfWork
from treadle.scheduler.store.models import attempts, event_waits, inquiries, outbox, runs, timers
from treadle.scheduler.store.observation_repo import QueueObservation

log = logging.getLogger("treadle.scheduler")

#: A timer this late is overdue: a step fires due timers at once, so only a scheduler
#: that does not step (or whose steps fail) leaves one this long.
TIMER_GRACE = timedelta(seconds=5)

_OPEN_ATTEMPT = (AttemptStatus.QUEUED.value, AttemptStatus.RUNNING.value)
#: Runs that are over, or wait for a person to resume them.
_NOT_STALLING = (*(s.value for s in RUN_TERMINAL), RunStatus.PAUSED.value, RunStatus.PENDING.value)


@dataclass(frozen=True)
class Gauges:
    """What :func:`read_gauges` counted."""

    outbox_pending: int = 0
    outbox_oldest_age: float = 0.0
    timers_overdue: int = 0
    attempts_past_deadline: int = 0
    inquiries_pending: int = 0
    flow_waiting: Mapping[str, int] = field(default_factory=dict)
    runs_stalled: int = 0


def read_gauges(uow: UnitOfWork, now: datetime, *, stalled_after: timedelta) -> Gauges:
    """Count the scheduler's backlogs in one transaction.

    The outbox counts exclude rows flow control holds back (``flow_key`` set: they wait for
    a slot or a rate window, not for a relay; :data:`flow_waiting` counts them by kind). A
    run is stalled when it has not ended, is not paused, has not moved for
    ``stalled_after`` and has no timer, pending inquiry, event wait, held dispatch or child
    run that has not ended: nothing will move it.
    """
    conn = uow.connection
    unsent = and_(outbox.c.sent_at.is_(None), outbox.c.flow_key.is_(None))
    pending, oldest = conn.execute(
        select(func.count(), func.min(outbox.c.created_at)).where(unsent)
    ).one()
    overdue = conn.execute(
        select(func.count()).where(timers.c.fire_at < now - TIMER_GRACE)
    ).scalar_one()
    past_deadline = conn.execute(
        select(func.count()).where(attempts.c.status.in_(_OPEN_ATTEMPT), attempts.c.deadline < now)
    ).scalar_one()
    asked = conn.execute(
        select(func.count()).where(inquiries.c.status == InquiryStatus.PENDING.value)
    ).scalar_one()
    rate = outbox.c.flow_until.is_not(None)
    waiting = {kind.value: 0 for kind in ClaimKind}
    for is_rate, count in conn.execute(
        select(rate, func.count())
        .where(outbox.c.sent_at.is_(None), outbox.c.flow_key.is_not(None))
        .group_by(rate)
    ):
        waiting[(ClaimKind.RATE if is_rate else ClaimKind.CONCURRENCY).value] += int(count)
    return Gauges(
        outbox_pending=int(pending),
        outbox_oldest_age=0.0 if oldest is None else max((now - oldest).total_seconds(), 0.0),
        timers_overdue=int(overdue),
        attempts_past_deadline=int(past_deadline),
        inquiries_pending=int(asked),
        flow_waiting=waiting,
        runs_stalled=_stalled(uow, now - stalled_after),
    )


def _stalled(uow: UnitOfWork, moved_before: datetime) -> int:
    child = runs.alias("child")
    waits_for_something = [
        exists().where(timers.c.run_id == runs.c.id),
        exists().where(
            inquiries.c.run_id == runs.c.id, inquiries.c.status == InquiryStatus.PENDING.value
        ),
        exists().where(event_waits.c.run_id == runs.c.id),
        exists().where(
            outbox.c.run_id == runs.c.id, outbox.c.sent_at.is_(None), outbox.c.flow_key.is_not(None)
        ),
        exists().where(
            child.c.parent_run_id == runs.c.id,
            child.c.status.not_in([s.value for s in RUN_TERMINAL]),
        ),
    ]
    stmt = select(func.count()).where(
        runs.c.status.not_in(_NOT_STALLING),
        runs.c.updated_at < moved_before,
        *(not_(condition) for condition in waits_for_something),
    )
    return int(uow.connection.execute(stmt).scalar_one())


class MetricsRefresher:
    """Sets the scheduler's gauges every ``interval`` seconds (:meth:`step`)."""

    def __init__(
        self,
        metrics: Metrics,
        store: Store,
        *,
        queues: Callable[[], Mapping[str, QueueObservation]],
        workers_seen: Callable[[], Mapping[str, datetime]],
        worker_lost_after: timedelta,
        stalled_after: timedelta,
        clock: Callable[[], datetime],
        interval: float,
    ) -> None:
        self._metrics = metrics
        self._store = store
        self._queues = queues
        self._workers_seen = workers_seen
        self._worker_lost_after = worker_lost_after
        self._stalled_after = stalled_after
        self._clock = clock
        self._interval = timedelta(seconds=interval)
        self._next = clock()

    def step(self) -> bool:
        """Refresh if it is time; True when it did. A failed read is logged and leaves the
        gauges as they were (the step goes on)."""
        now = self._clock()
        if now < self._next:
            return False
        self._next = now + self._interval
        self.set_process_gauges(now)
        try:
            with self._store.snapshot() as uow:
                gauges = read_gauges(uow, now, stalled_after=self._stalled_after)
        except Exception as exc:
            log.warning("could not read the metrics' counts from the database: %s", exc)
            return True
        self.set_database_gauges(gauges)
        return True

    def set_process_gauges(self, now: datetime) -> None:
        """Queue lengths and consumers as last observed; 1 or 0 per worker heard from."""
        length = self._metrics.gauge("celery_queue_length")
        consumers = self._metrics.gauge("celery_active_consumer_count")
        for queue, seen in self._queues().items():
            length.labels(queue).set(seen.messages)
            if seen.consumers is not None:  # Redis does not know its consumers
                consumers.labels(queue).set(seen.consumers)
        up = self._metrics.gauge("celery_worker_up")
        for worker, last in self._workers_seen().items():
            up.labels(worker).set(1 if now - last <= self._worker_lost_after else 0)

    def set_database_gauges(self, gauges: Gauges) -> None:
        m = self._metrics
        m.gauge("treadle_outbox_pending").set(gauges.outbox_pending)
        m.gauge("treadle_outbox_oldest_age_seconds").set(gauges.outbox_oldest_age)
        m.gauge("treadle_timers_overdue").set(gauges.timers_overdue)
        m.gauge("treadle_attempts_past_deadline").set(gauges.attempts_past_deadline)
        m.gauge("treadle_inquiries_pending").set(gauges.inquiries_pending)
        for kind, count in gauges.flow_waiting.items():
            m.gauge("treadle_flow_waiting").labels(kind).set(count)
        m.gauge("treadle_runs_stalled").set(gauges.runs_stalled)
