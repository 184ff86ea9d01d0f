"""How an attempt ended: the one shape from a worker's report to the core's event.

A worker reports a :class:`~treadle.common.messages.TaskResult`; the scheduler itself ends
attempts no worker will report on (the reconciler, the delivery limit, dead letters). Both
become an :class:`AttemptEnding`: the store records it on the attempt's row (first ending
wins) and, when it was the first, the run is told through :meth:`AttemptEnding.event`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from treadle.common.messages import ActionOutput, TaskResult
from treadle.common.statuses import AttemptStatus
from treadle.scheduler.core.events import (
    AttemptLost,
    Event,
    TaskFailed,
    TaskSucceeded,
    TaskTimedOut,
)


@dataclass(frozen=True, slots=True)
class AttemptEnding:
    """One attempt's end. ``status`` is its row's final status; ``reason`` says why the
    scheduler (not a worker) ended it; ``retryable`` is false when trying again cannot
    help (the task's retry policy is then not applied). A ``canceled`` ending only closes
    the row: the run no longer waits for that attempt."""

    attempt_id: str
    status: AttemptStatus
    result: Any = None
    error: Mapping[str, Any] | None = None
    worker: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str | None = None
    retryable: bool = True
    #: What the action printed, as its worker reported it (kept with the attempt; the
    #: run is not told).
    output: ActionOutput | None = None

    @classmethod
    def reported(cls, result: TaskResult) -> AttemptEnding:
        """The ending a worker reported."""
        return cls(
            attempt_id=result.attempt_id,
            status=result.outcome,
            result=result.result,
            error=None if result.error is None else result.error.as_dict(),
            worker=result.worker,
            started_at=result.started_at,
            finished_at=result.finished_at,
            output=result.output,
        )

    def event(self) -> Event | None:
        """What the run is told (``None`` for a ``canceled`` ending; ``AttemptLost`` for a
        ``lost`` one, which the core runs again without charging the retry policy)."""
        if self.status is AttemptStatus.SUCCEEDED:
            return TaskSucceeded(attempt_id=self.attempt_id, result=self.result)
        error = dict(self.error or {})
        if self.status is AttemptStatus.TIMED_OUT:
            return TaskTimedOut(attempt_id=self.attempt_id, error=error)
        if self.status is AttemptStatus.FAILED:
            return TaskFailed(attempt_id=self.attempt_id, error=error, retryable=self.retryable)
        if self.status is AttemptStatus.LOST:
            return AttemptLost(attempt_id=self.attempt_id, error=error)
        return None
