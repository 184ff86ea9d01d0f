"""Apply a batch of worker reports, and decide the failures the scheduler itself sees.

:class:`ReportApplier` applies a :class:`~treadle.scheduler.service.report_consumer.ReportBatch`
in as few transactions as it can; taking the batch from the broker (and acknowledging it
after commit) is :mod:`~treadle.scheduler.service.report_consumer`'s job. Duplicates change
nothing (a result for an attempt that already ended is dropped by the store).

An attempt started more than ``delivery_limit`` times (its worker died each time), or
dead-lettered by the broker, fails with ``DeliveryLimitExceeded`` and is not retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from treadle.common.statuses import AttemptStatus
from treadle.scheduler.core.endings import AttemptEnding
from treadle.scheduler.core.ids import parse_attempt_id
from treadle.scheduler.service.reconciler import WorkerLiveness
from treadle.scheduler.service.report_consumer import DeadLetter, ReportBatch
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.store import Store

log = logging.getLogger("treadle.scheduler")


def delivery_limit_exceeded(attempt_id: str, starts: int, now: datetime) -> AttemptEnding:
    """The attempt was started ``starts`` times and never finished: fail it for good."""
    return AttemptEnding(
        attempt_id,
        AttemptStatus.FAILED,
        finished_at=now,
        reason=f"started {starts} times without a result (delivery limit exceeded)",
        error={
            "type": "DeliveryLimitExceeded",
            "message": (
                f"the task was started {starts} times without finishing (its worker died "
                "each time); it is not retried"
            ),
        },
        retryable=False,
    )


def dead_lettered(letter: DeadLetter, delivery_limit: int, now: datetime) -> AttemptEnding:
    """The broker dead-lettered the attempt's message: fail it for good."""
    if letter.reason == "delivery_limit":
        return AttemptEnding(
            letter.attempt_id,
            AttemptStatus.FAILED,
            finished_at=now,
            reason="dead-lettered by the broker: delivery limit exceeded",
            error={
                "type": "DeliveryLimitExceeded",
                "message": (
                    f"the task was delivered {delivery_limit + 1} times without finishing "
                    "(its worker died each time); it is not retried"
                ),
            },
            retryable=False,
        )
    return AttemptEnding(
        letter.attempt_id,
        AttemptStatus.FAILED,
        finished_at=now,
        reason=f"dead-lettered by the broker: {letter.reason}",
        error={
            "type": "Undeliverable",
            "message": (
                f"the broker dead-lettered the task's message ({letter.reason}); it is not retried"
            ),
        },
        retryable=False,
    )


@dataclass(frozen=True)
class AppliedReports:
    """What applying a batch did, and which attempts to revoke now that it committed."""

    started: int = 0
    results: int = 0
    failed: list[str] = field(default_factory=list)
    revoke: list[str] = field(default_factory=list)


class ReportApplier:
    """Applies a :class:`ReportBatch` in one transaction: started notices, then results and
    the failures the scheduler decided (delivery limit, dead letters), then their events.

    Kept apart from the consumer so the policy (what a report does to an attempt) can be
    read and tested without a broker.
    """

    def __init__(
        self,
        store: Store,
        *,
        delivery_limit: int,
        liveness: WorkerLiveness,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._delivery_limit = delivery_limit
        self._liveness = liveness
        self._clock = clock

    def apply(self, batch: ReportBatch, runs: RunService) -> AppliedReports:
        """Apply ``batch`` in one transaction (the caller acknowledges it after commit)."""
        now = self._clock()
        for started in batch.started:
            self._liveness.seen(started.worker, now)
        for result in batch.results:
            if result.worker:
                self._liveness.seen(result.worker, now)
        if not (batch.started or batch.results or batch.dead_letters):
            return AppliedReports()
        # An attempt whose result is in this batch ends here: counting its start would cost
        # a statement for nothing (the result records its worker and start time).
        finishing = {result.attempt_id for result in batch.results}
        with self._store.unit_of_work() as uow:
            # Runs first, then their attempt rows: the lock order every transaction keeps.
            # With results only, the statement recording them locks the runs (``settle``).
            starting = [s for s in batch.started if s.attempt_id not in finishing]
            if starting:
                uow.lock_runs(sorted(_runs_of(batch)))
            endings: list[AttemptEnding] = []
            for started in starting:
                count = uow.mark_attempt_started(
                    started.attempt_id, started.worker, started.at, started.worker_pid
                )
                if count is not None and count > self._delivery_limit:
                    endings.append(delivery_limit_exceeded(started.attempt_id, count, now))
            endings.extend(dead_lettered(d, self._delivery_limit, now) for d in batch.dead_letters)
            # A result wins over the scheduler's ending of the same attempt (the task did
            # finish): results come first, and the first ending of an attempt is recorded.
            reported = [AttemptEnding.reported(result) for result in batch.results]
            fresh = runs.settle(uow, [*reported, *endings])
            failed = [e for e in endings if e.attempt_id in fresh and e.attempt_id not in finishing]
        for ending in failed:
            log.warning("attempt %s failed: %s", ending.attempt_id, ending.reason)
        # A message still circulating after the limit must not run again (a dead-lettered
        # one has left the queue already).
        dead = {d.attempt_id for d in batch.dead_letters}
        return AppliedReports(
            started=len(batch.started),
            results=len(batch.results),
            failed=[e.attempt_id for e in failed],
            revoke=[e.attempt_id for e in failed if e.attempt_id not in dead],
        )


def _runs_of(batch: ReportBatch) -> set[str]:
    """The runs whose attempts a batch touches."""
    attempts = [
        *(s.attempt_id for s in batch.started),
        *(r.attempt_id for r in batch.results),
        *(d.attempt_id for d in batch.dead_letters),
    ]
    refs = (parse_attempt_id(attempt) for attempt in attempts)
    return {ref.run_id for ref in refs if ref is not None}
