"""The serialisable state of one run, as the pure core sees it.

Everything is a frozen dataclass and every collection is treated as immutable: ``decide``
copies what it changes and shares the rest. Two consequences the store relies on: an
execution or unit that did not change is the *same object* in the old and new state, so
the store diffs by identity and writes only what changed; and a state can be kept in
memory across events without defensive copies.

Vocabulary: a task may run several times (cycles, several inbound transitions), each time
as an :class:`Execution`. An execution does its work in :class:`Unit` s: one for a plain
task, one per item (or batch) for ``with_items``. Each unit is tried in numbered attempts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from treadle.common.limits import Limits
from treadle.common.statuses import RunStatus, TaskStatus

#: Scope key of the top level of a workflow; parallel blocks use their execution id (>= 1).
ROOT_SCOPE = 0

class TimerKind(StrEnum):
    """What a timer does when it fires."""

    DELAY = "delay"  # start a scheduled execution
    RETRY = "retry"  # launch the next attempt of a unit
    TIMEOUT = "timeout"  # an attempt ran past the task's timeout
    DEADLINE = "deadline"  # an inquiry or an event wait ran past its timeout


@dataclass(frozen=True, slots=True)
class Timer:
    """A pending timer owned by the run; the service stores it and reports when it fires."""

    id: str
    kind: TimerKind
    fire_at: datetime
    execution: int
    unit: int | None = None
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class Unit:
    """One call of a task: the whole task, or one with_items item or batch.

    ``index`` is ``None`` for a plain task. ``attempt`` counts attempts started (0 before the
    first). ``wait`` names what a waiting unit waits for (an inquiry id or a child run id).
    """

    index: int | None
    item: Any = None
    status: TaskStatus = TaskStatus.SCHEDULED
    attempt: int = 0
    result: Any = None
    error: Mapping[str, Any] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    timer: str | None = None
    inquiry_id: str | None = None
    child_run_id: str | None = None
    result_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Execution:
    """One run of one task within a scope (the top level or a parallel execution)."""

    id: int
    task: str
    scope: int
    status: TaskStatus
    started_at: datetime
    finished_at: datetime | None = None
    units: tuple[Unit, ...] = ()
    with_items: bool = False
    next_unit: int = 0
    result: Any = None
    error: Mapping[str, Any] | None = None
    timer: str | None = None
    handled: bool = False

    @property
    def is_active(self) -> bool:
        return not self.status.is_terminal


@dataclass(frozen=True, slots=True)
class Failure:
    """A task that ended badly with no transition handling it."""

    task: str
    execution: int
    status: TaskStatus
    error: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class RunContext:
    """Inputs fixed when the run starts: everything templates may read besides results."""

    parameters: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    keystore: Mapping[str, Any] = field(default_factory=dict)
    identity: Mapping[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    seed: int = 0
    limits: Limits = field(default_factory=Limits)
    depth: int = 0
    parent_run_id: str | None = None
    parent_attempt_id: str | None = None


@dataclass(frozen=True, slots=True)
class RunState:
    """All a run's state. ``decide`` returns a new one; it never mutates this one."""

    run_id: str
    workflow: str
    status: RunStatus = RunStatus.PENDING
    context: RunContext = field(default_factory=RunContext)
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    executions: Mapping[int, Execution] = field(default_factory=dict)
    latest: Mapping[str, int] = field(default_factory=dict)
    active: Mapping[int, int] = field(default_factory=dict)
    joins: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    failures: Mapping[int, tuple[Failure, ...]] = field(default_factory=dict)
    timers: Mapping[str, Timer] = field(default_factory=dict)
    next_execution: int = 1
    uuid_counter: int = 0
    context_bytes: int = 0
    output: Any = None
    error: Mapping[str, Any] | None = None

    def execution(self, execution_id: int) -> Execution:
        return self.executions[execution_id]

    def latest_execution(self, task: str) -> Execution | None:
        execution_id = self.latest.get(task)
        return None if execution_id is None else self.executions[execution_id]


def initial_state(run_id: str, workflow: str, created_at: datetime) -> RunState:
    """A run that has been created but not yet requested to start."""
    return RunState(run_id=run_id, workflow=workflow, created_at=created_at)
