"""What the core asks the outside world to do: the outputs of :func:`decide`.

The service turns each command into rows (outbox, timers, inquiries, child runs) in the same
transaction that saves the new state, so a command is never lost and never applied twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from treadle.common.flow import DEFAULT_PRIORITY, FlowClaim
from treadle.common.messages import TaskDispatch
from treadle.common.statuses import InquiryPurpose, InquiryStatus, RunStatus, TaskStatus
from treadle.scheduler.core.state import TimerKind


@dataclass(frozen=True, slots=True)
class Command:
    """Base of all commands; ``kind`` names the command in logs, golden files and the codec.

    The service finds each command's handler by its type (``scheduler/service/commands``),
    never by ``kind``.
    """

    kind: ClassVar[str] = "command"


@dataclass(frozen=True, slots=True)
class DispatchTask(Command):
    """Send one attempt to a worker (the dispatch carries its pinned runner and queue).

    ``priority`` is 0-9, 9 first (the task's, else the run's, else 5): the publisher
    orders the broker by it and the scheduler releases held-back work by it. ``claims``
    are the concurrency slots and rate limits the attempt must hold before it leaves the
    scheduler (``docs/flow-control.md``).
    """

    kind: ClassVar[str] = "dispatch_task"
    dispatch: TaskDispatch
    priority: int = DEFAULT_PRIORITY
    claims: tuple[FlowClaim, ...] = ()


@dataclass(frozen=True, slots=True)
class CancelTask(Command):
    """Stop an attempt that is queued or running (revoke, terminating if it runs)."""

    kind: ClassVar[str] = "cancel_task"
    attempt_id: str


@dataclass(frozen=True, slots=True)
class StartChildRun(Command):
    """Start a nested workflow run; its end is reported back on ``parent_attempt_id``."""

    kind: ClassVar[str] = "start_child_run"
    child_run_id: str
    workflow: str
    parameters: Mapping[str, Any]
    parent_attempt_id: str
    depth: int


@dataclass(frozen=True, slots=True)
class CancelChildRun(Command):
    kind: ClassVar[str] = "cancel_child_run"
    child_run_id: str


@dataclass(frozen=True, slots=True)
class ScheduleTimer(Command):
    kind: ClassVar[str] = "schedule_timer"
    timer_id: str
    fire_at: datetime
    timer_kind: TimerKind


@dataclass(frozen=True, slots=True)
class CancelTimer(Command):
    kind: ClassVar[str] = "cancel_timer"
    timer_id: str


@dataclass(frozen=True, slots=True)
class OpenInquiry(Command):
    """Ask a person; the answer must satisfy ``schema``. ``deadline`` is ``None`` if unbounded.

    ``purpose`` says why: a task's own question, a task's escalation, or the run's budget
    (run-level: ``task`` is empty and ``attempt_id`` is ``<run>/budget/<n>``).
    """

    kind: ClassVar[str] = "open_inquiry"
    inquiry_id: str
    attempt_id: str
    task: str
    prompt: Any
    schema: Mapping[str, Any] | None
    assigned_to: Any
    deadline: datetime | None
    purpose: InquiryPurpose = InquiryPurpose.TASK


@dataclass(frozen=True, slots=True)
class CloseInquiry(Command):
    kind: ClassVar[str] = "close_inquiry"
    inquiry_id: str
    status: InquiryStatus


@dataclass(frozen=True, slots=True)
class EmitLifecycleEvent(Command):
    """Tell observers a task execution changed state (started, waiting, ended)."""

    kind: ClassVar[str] = "lifecycle"
    task: str
    execution: int
    status: TaskStatus
    at: datetime


@dataclass(frozen=True, slots=True)
class CompleteRun(Command):
    """The run reached a final status (observers see it; the run row records it)."""

    kind: ClassVar[str] = "complete_run"
    status: RunStatus
    output: Any = None
    error: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ReportEndToParent(Command):
    """This child run ended: the parent's task waiting on ``parent_attempt_id`` ends too
    (succeeded with ``output``, or failed or timed out with ``error``)."""

    kind: ClassVar[str] = "report_end_to_parent"
    parent_attempt_id: str
    status: RunStatus
    output: Any = None
    error: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AwaitEvent(Command):
    """Something in the run now waits for an outside event matching these patterns.

    The service keeps an index of waits so an arriving event reaches the runs that may
    want it; the core then checks the wait's ``filter`` itself. ``wait_id`` is the attempt
    id of the waiting unit (or ``run/execution/0/0`` for a ``wait_for`` guard).
    """

    kind: ClassVar[str] = "await_event"
    wait_id: str
    event_type: str
    subject: str | None
    deadline: datetime | None


@dataclass(frozen=True, slots=True)
class StopAwaitingEvent(Command):
    kind: ClassVar[str] = "stop_awaiting_event"
    wait_id: str


@dataclass(frozen=True, slots=True)
class PauseChildRun(Command):
    kind: ClassVar[str] = "pause_child_run"
    child_run_id: str


@dataclass(frozen=True, slots=True)
class ReportPausedToParent(Command):
    """This child run is now paused: its parent, pausing too, may count it as finished."""

    kind: ClassVar[str] = "report_paused_to_parent"
    parent_run_id: str


@dataclass(frozen=True, slots=True)
class ResumeChildRun(Command):
    kind: ClassVar[str] = "resume_child_run"
    child_run_id: str


@dataclass(frozen=True, slots=True)
class RunStatusChanged(Command):
    """The run moved to ``status`` (for watchers and lifecycle events)."""

    kind: ClassVar[str] = "run_status"
    status: RunStatus
    at: datetime
