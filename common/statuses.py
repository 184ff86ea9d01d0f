"""The states of runs, tasks, items, attempts and inquiries, and which moves are allowed.

States are enums, never bare strings; the tables below are the single source of truth for
which transitions the core may make: every status change of the core goes through
:func:`moved`, which refuses a move its table does not allow.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from treadle.common.errors import IllegalTransition


class RunStatus(StrEnum):
    """Lifecycle of a workflow run."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSING = "pausing"
    PAUSED = "paused"
    CANCELED = "canceled"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"

    @property
    def is_terminal(self) -> bool:
        return self in RUN_TERMINAL


RUN_TERMINAL = frozenset(
    {
        RunStatus.CANCELED,
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.TIMED_OUT,
        RunStatus.COMPENSATED,
    }
)

RUN_TRANSITIONS: Mapping[RunStatus, frozenset[RunStatus]] = {
    RunStatus.PENDING: frozenset({RunStatus.RUNNING, RunStatus.FAILED, RunStatus.CANCELED}),
    RunStatus.RUNNING: frozenset(
        {
            RunStatus.PAUSING,
            RunStatus.PAUSED,
            RunStatus.CANCELED,
            RunStatus.SUCCEEDED,
            RunStatus.FAILED,
            RunStatus.TIMED_OUT,
        }
    ),
    RunStatus.PAUSING: frozenset(
        {
            RunStatus.PAUSED,
            RunStatus.RUNNING,
            RunStatus.CANCELED,
            RunStatus.SUCCEEDED,
            RunStatus.FAILED,
            RunStatus.TIMED_OUT,
        }
    ),
    RunStatus.PAUSED: frozenset({RunStatus.RUNNING, RunStatus.CANCELED}),
    RunStatus.CANCELED: frozenset({RunStatus.COMPENSATING, RunStatus.RUNNING}),
    RunStatus.SUCCEEDED: frozenset({RunStatus.COMPENSATING}),
    RunStatus.FAILED: frozenset({RunStatus.RUNNING, RunStatus.COMPENSATING}),
    RunStatus.TIMED_OUT: frozenset({RunStatus.RUNNING, RunStatus.COMPENSATING}),
    RunStatus.COMPENSATING: frozenset({RunStatus.COMPENSATED, RunStatus.FAILED}),
    RunStatus.COMPENSATED: frozenset(),
}


class TaskStatus(StrEnum):
    """Lifecycle of one execution of a task (a task in a cycle has several executions).

    ``scheduled`` waits on the task's ``delay``; ``waiting`` waits on a person or an event;
    ``running`` covers dispatched attempts and the back-off between retries.
    """

    SCHEDULED = "scheduled"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELED = "canceled"
    SKIPPED = "skipped"
    COMPENSATED = "compensated"

    @property
    def is_terminal(self) -> bool:
        return self in TASK_TERMINAL

    @property
    def is_unsuccessful(self) -> bool:
        return self in (TaskStatus.FAILED, TaskStatus.TIMED_OUT)


TASK_TERMINAL = frozenset(
    {
        TaskStatus.SUCCEEDED,
        TaskStatus.FAILED,
        TaskStatus.TIMED_OUT,
        TaskStatus.CANCELED,
        TaskStatus.SKIPPED,
        TaskStatus.COMPENSATED,
    }
)

TASK_TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.SCHEDULED: frozenset(
        {
            TaskStatus.RUNNING,
            TaskStatus.WAITING,
            TaskStatus.CANCELED,
            TaskStatus.FAILED,
            TaskStatus.SKIPPED,  # its ``when`` guard was false
        }
    ),
    TaskStatus.WAITING: frozenset(
        {
            TaskStatus.RUNNING,
            TaskStatus.SUCCEEDED,
            TaskStatus.FAILED,
            TaskStatus.TIMED_OUT,
            TaskStatus.CANCELED,
            TaskStatus.SKIPPED,  # an operator skipped it while it waited
        }
    ),
    TaskStatus.RUNNING: frozenset(
        {
            TaskStatus.WAITING,  # its attempt asks a person or waits for an event
            TaskStatus.SUCCEEDED,
            TaskStatus.FAILED,
            TaskStatus.TIMED_OUT,
            TaskStatus.CANCELED,
        }
    ),
    TaskStatus.SUCCEEDED: frozenset({TaskStatus.COMPENSATED}),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.TIMED_OUT: frozenset(),
    TaskStatus.CANCELED: frozenset(),
    TaskStatus.SKIPPED: frozenset(),
    TaskStatus.COMPENSATED: frozenset(),
}

#: The moves an operator's retry of a run makes, and only it: an execution that ended with
#: a failure nothing handled (its own, or one of its transitions that could not be
#: evaluated, whatever it ended as) or that was cancelled reopens ``scheduled`` (its work
#: not begun) or ``running``; a unit that ended badly starts over ``scheduled``. Kept apart
#: from ``TASK_TRANSITIONS``, where an ended task stays ended.
TASK_RETRY_TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    status: frozenset({TaskStatus.SCHEDULED, TaskStatus.RUNNING})
    if status.is_terminal
    else frozenset()
    for status in TaskStatus
}


class AttemptStatus(StrEnum):
    """One try of one task (or one with_items item) on a worker.

    ``lost``: the worker holding it was lost (an infrastructure fault, not the action's);
    the task runs again as a new attempt, which its retry policy does not count.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELED = "canceled"
    LOST = "lost"

    @property
    def is_terminal(self) -> bool:
        return self not in (AttemptStatus.QUEUED, AttemptStatus.RUNNING)


class InquiryStatus(StrEnum):
    """A question put to a person."""

    PENDING = "pending"
    ANSWERED = "answered"
    TIMED_OUT = "timed_out"
    CANCELED = "canceled"


class InquiryPurpose(StrEnum):
    """Why an inquiry was opened: a task asks (``core.ask``, ``wait_for``), a task whose
    retries are exhausted escalates to a person, or the run's budget asks whether to go on
    (a run-level inquiry: it belongs to no task)."""

    TASK = "task"
    ESCALATION = "escalation"
    BUDGET = "budget"


_S = TypeVar("_S", bound=StrEnum)


_NOWHERE: frozenset[StrEnum] = frozenset()


def can_move(table: Mapping[_S, frozenset[_S]], old: _S, new: _S) -> bool:
    """Whether ``old -> new`` is allowed by ``table`` (staying put is always allowed)."""
    return old == new or new in table.get(old, frozenset())


def moved(table: Mapping[_S, frozenset[_S]], old: _S, new: _S) -> _S:
    """``new``, once ``table`` allows ``old -> new`` (staying put always is).

    The one way the core changes a status: ``status=moved(TASK_TRANSITIONS, unit.status,
    TaskStatus.RUNNING)``. Raises :class:`~treadle.common.errors.IllegalTransition` for a
    move the table does not allow.
    """
    if old is new or new in table.get(old, _NOWHERE):
        return new
    raise IllegalTransition(old, new)
