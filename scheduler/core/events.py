"""What can happen to a run: the inputs of :func:`decide`.

Events are facts the service observed (a worker's result, a timer, a person's answer, an
operator's request). They are appended to the run's event log before being applied, so
replaying the log through ``decide`` reproduces the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from treadle.common.budget import Budget
from treadle.scheduler.core.state import RunContext


@dataclass(frozen=True, slots=True)
class Event:
    """Base of all events; ``kind`` names the event in the log."""

    kind: ClassVar[str] = "event"


@dataclass(frozen=True, slots=True)
class RunRequested(Event):
    """Start the run with validated parameters and the context fixed at start."""

    kind: ClassVar[str] = "run_requested"
    context: RunContext = field(default_factory=RunContext)


@dataclass(frozen=True, slots=True)
class TaskSucceeded(Event):
    """An attempt (or a child run, or an answered inquiry) produced ``result``."""

    kind: ClassVar[str] = "task_succeeded"
    attempt_id: str = ""
    result: Any = None
    result_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class TaskFailed(Event):
    """An attempt failed with ``error`` (``{type, message}``).

    ``retryable`` is false when trying again cannot help (a task that killed its worker up
    to the broker's delivery limit): the task's retry policy is then not applied.
    """

    kind: ClassVar[str] = "task_failed"
    attempt_id: str = ""
    error: Mapping[str, Any] = field(default_factory=dict)
    retryable: bool = True


@dataclass(frozen=True, slots=True)
class TaskTimedOut(Event):
    """An attempt was reported timed out by a worker (time limit) or a reconciler."""

    kind: ClassVar[str] = "task_timed_out"
    attempt_id: str = ""
    error: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AttemptLost(Event):
    """The worker holding an attempt was lost (not the action's fault): the unit runs again
    at once as a new attempt, which the task's retry policy does not count. ``error``
    (``{type, message}``) says what happened; it is kept on the unit until it ends."""

    kind: ClassVar[str] = "attempt_lost"
    attempt_id: str = ""
    error: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TimerFired(Event):
    """A timer the run scheduled came due."""

    kind: ClassVar[str] = "timer_fired"
    timer_id: str = ""


@dataclass(frozen=True, slots=True)
class InquiryAnswered(Event):
    """A person answered an inquiry (the service validated ``response`` against its schema)."""

    kind: ClassVar[str] = "inquiry_answered"
    inquiry_id: str = ""
    response: Any = None
    responder: str | None = None


@dataclass(frozen=True, slots=True)
class EventReceived(Event):
    """An outside event arrived that the run may be waiting for."""

    kind: ClassVar[str] = "event_received"
    event_id: str = ""
    type: str = ""
    subject: str | None = None
    data: Any = None


# The operator controls carry an optional ``reason`` and ``by`` (who asked: ``token:<name>``
# through the API, ``cli:<login>`` on the database): the core ignores both (cancel uses the
# reason in the run's error); they stay in the run's event log: who did what, and why.


@dataclass(frozen=True, slots=True)
class PauseRequested(Event):
    kind: ClassVar[str] = "pause_requested"
    reason: str | None = None
    by: str | None = None


@dataclass(frozen=True, slots=True)
class ResumeRequested(Event):
    kind: ClassVar[str] = "resume_requested"
    reason: str | None = None
    by: str | None = None


@dataclass(frozen=True, slots=True)
class CancelRequested(Event):
    kind: ClassVar[str] = "cancel_requested"
    reason: str | None = None
    by: str | None = None


@dataclass(frozen=True, slots=True)
class RetryRequested(Event):
    """Run an ended run's failed work again: every unhandled failure and every cancelled
    execution, or, when ``task`` names one, only that task's latest execution, the flow
    going on from it (events logged before ``task`` existed have none: a whole retry)."""

    kind: ClassVar[str] = "retry_requested"
    reason: str | None = None
    by: str | None = None
    task: str | None = None


@dataclass(frozen=True, slots=True)
class CompensateRequested(Event):
    kind: ClassVar[str] = "compensate_requested"
    reason: str | None = None
    by: str | None = None


@dataclass(frozen=True, slots=True)
class ChildRunPaused(Event):
    """A child run of this run is now ``paused`` (it was paused with this run)."""

    kind: ClassVar[str] = "child_run_paused"
    child_run_id: str


@dataclass(frozen=True, slots=True)
class StepFailRequested(Event):
    """An operator fails task ``task`` while it waits on a person or an outside event.

    Its inquiry is closed (canceled) or its event wait dropped, and it fails with
    ``reason`` as its error: its transitions decide what follows (no retry). The service
    checks first that the task waits (:func:`~treadle.scheduler.core.interventions.waiting_step`);
    for a task that does not, this changes nothing.
    """

    kind: ClassVar[str] = "step_fail_requested"
    task: str = ""
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class StepSkipRequested(Event):
    """An operator skips task ``task`` while it waits on a person or an outside event.

    Its inquiry is closed (canceled) or its event wait dropped, and it ends ``skipped``
    with no result, as a task whose ``when`` guard is false: its transitions decide what
    follows. For a task that does not wait, this changes nothing.
    """

    kind: ClassVar[str] = "step_skip_requested"
    task: str = ""
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BudgetChanged(Event):
    """An operator sets new limits of the run's budget (``treadle runs resume ID --budget
    cost_usd=50``): each limit ``budget`` sets replaces the run's, capped by its
    workspace's ceiling; the rest stay. A raised limit's soft ratio asks again."""

    kind: ClassVar[str] = "budget_changed"
    budget: Budget = field(default_factory=Budget)
    reason: str | None = None
    by: str | None = None


EVENT_TYPES: Mapping[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        RunRequested,
        TaskSucceeded,
        TaskFailed,
        TaskTimedOut,
        AttemptLost,
        TimerFired,
        InquiryAnswered,
        EventReceived,
        PauseRequested,
        ResumeRequested,
        CancelRequested,
        RetryRequested,
        CompensateRequested,
        ChildRunPaused,
        StepFailRequested,
        StepSkipRequested,
        BudgetChanged,
    )
}
