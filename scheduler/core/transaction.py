"""The working copy of a run's state during one :func:`decide` call.

A :class:`Tx` starts from a frozen :class:`RunState`, copies each mapping the first time it
is written (copy-on-write), collects the commands produced, and holds an agenda of follow-up
work so cascades (a skipped task whose successor is skipped ...) run in a loop rather than
through deep recursion. :meth:`Tx.freeze` produces the next frozen state; everything not
touched is shared with the previous state by identity.

What a decision may change is derived from :class:`RunState` itself: every field not marked
``fixed`` in its metadata is copied into the ``Tx`` and compared by identity when frozen, so
a field added to ``RunState`` is tracked without being listed here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from treadle.common.expr import TemplateEngine
from treadle.common.graph import Graph
from treadle.common.statuses import RUN_TRANSITIONS, RunStatus, moved
from treadle.scheduler.core.budget_state import BudgetState
from treadle.scheduler.core.commands import CancelTimer, Command, RunStatusChanged, ScheduleTimer
from treadle.scheduler.core.state import (
    FIXED,
    Deferred,
    Execution,
    Failure,
    RunContext,
    RunState,
    Timer,
    TimerKind,
    Unit,
    evolve,
)


@dataclass(frozen=True, slots=True)
class StartTask:
    """Agenda item: start a new execution of ``task`` in ``scope``."""

    task: str
    scope: int


@dataclass(frozen=True, slots=True)
class FillUnits:
    """Agenda item: launch more units of an execution, up to its concurrency."""

    execution: int


@dataclass(frozen=True, slots=True)
class Begin:
    """Agenda item: an execution's delay ended (or it is reopened): begin its work."""

    execution: int


@dataclass(frozen=True, slots=True)
class Relaunch:
    """Agenda item: start the next attempt of a unit right away (retry without delay)."""

    execution: int
    position: int


AgendaItem = StartTask | FillUnits | Relaunch | Begin

#: The fields of :class:`RunState` a decision may change (all but the ``fixed`` ones).
TRACKED: tuple[str, ...] = tuple(f.name for f in fields(RunState) if not f.metadata.get(FIXED))


class Tx:
    """Mutable working state for one decision; see the module docstring."""

    # The tracked fields (``TRACKED``) as the type checker sees them: ``__init__`` copies
    # every tracked field in, whether or not it is annotated here; these annotations only
    # type the ones the core reads through a ``Tx`` (a test keeps them equal to RunState's).
    status: RunStatus
    context: RunContext
    started_at: datetime | None
    finished_at: datetime | None
    vars: Mapping[str, Any]
    executions: Mapping[int, Execution]
    latest: Mapping[str, int]
    active: Mapping[int, int]
    joins: Mapping[str, tuple[int, ...]]
    failures: Mapping[int, tuple[Failure, ...]]
    held_failures: Mapping[int, tuple[Failure, ...]] | None
    timers: Mapping[str, Timer]
    next_execution: int
    uuid_counter: int
    context_bytes: int
    output: Any
    error: Mapping[str, Any] | None
    deferred: tuple[Deferred, ...]
    compensation: tuple[int, ...]
    paused_children: tuple[str, ...]
    budget: BudgetState | None

    def __init__(
        self, state: RunState, graph: Graph, now: datetime, engine: TemplateEngine
    ) -> None:
        self.base = state
        self.graph = graph
        self.now = now
        self.engine = engine
        self.run_id = state.run_id
        for name in TRACKED:
            setattr(self, name, getattr(state, name))
        self._owned: set[str] = set()
        self.commands: list[Command] = []
        self.agenda: deque[AgendaItem] = deque()
        self.scopes_to_check: set[int] = set()

    # -- copy-on-write ---------------------------------------------------------------------

    def _own(self, name: str) -> dict[Any, Any]:
        if name not in self._owned:
            setattr(self, name, dict(getattr(self, name)))
            self._owned.add(name)
        mapping: dict[Any, Any] = getattr(self, name)
        return mapping

    def set_var(self, name: str, value: Any) -> None:
        self._own("vars")[name] = value

    def put(self, execution: Execution) -> Execution:
        self._own("executions")[execution.id] = execution
        return execution

    def put_unit(
        self, execution: Execution, position: int, unit: Unit, **changes: Any
    ) -> Execution:
        """Replace one unit (and optionally other execution fields); returns the new execution."""
        return self.put(
            evolve(execution, units=execution.units.replaced(position, unit), **changes)
        )

    def execution(self, execution_id: int) -> Execution:
        return self.executions[execution_id]

    def add_execution(self, execution: Execution) -> None:
        self.put(execution)
        self._own("latest")[execution.task] = execution.id
        active = self._own("active")
        active[execution.scope] = active.get(execution.scope, 0) + 1

    def activate(self, scope: int) -> None:
        """One more execution is active in ``scope`` (a reopened one)."""
        active = self._own("active")
        active[scope] = active.get(scope, 0) + 1

    def clear_failures(self, scope: int) -> None:
        self._own("failures").pop(scope, None)

    def deactivate(self, scope: int) -> None:
        active = self._own("active")
        remaining = active.get(scope, 0) - 1
        if remaining > 0:
            active[scope] = remaining
        else:
            active.pop(scope, None)
        self.scopes_to_check.add(scope)

    def add_failure(self, scope: int, failure: Failure) -> bool:
        """Record an unhandled failure; True when it is the scope's first."""
        failures = self._own("failures")
        existing = failures.get(scope, ())
        failures[scope] = (*existing, failure)
        return not existing

    def is_failing(self, scope: int) -> bool:
        return bool(self.failures.get(scope))

    def held_in(self, scope: int) -> tuple[Failure, ...]:
        """The failures held aside in ``scope`` while a retry from one task goes on."""
        return (self.held_failures or {}).get(scope, ())

    def hold_failures(self, scope: int, failures: tuple[Failure, ...]) -> None:
        """Set ``failures`` aside: ``scope`` is not failing for them until it has nothing
        more to do (:meth:`restore_failures`)."""
        if failures:
            held = dict(self.held_failures or {})
            held[scope] = (*held.get(scope, ()), *failures)
            self.held_failures = held

    def restore_failures(self, scope: int | None = None) -> None:
        """The failures held in ``scope`` (every scope: None) count again, before any
        recorded since."""
        held = self.held_failures or {}
        scopes = [s for s in held if scope is None or s == scope]
        if not scopes:
            return
        failures = self._own("failures")
        for each in sorted(scopes):
            failures[each] = (*held[each], *failures.get(each, ()))
        rest = {s: f for s, f in held.items() if s not in scopes}
        self.held_failures = rest or None

    def record_join(self, key: str, edge: int) -> None:
        joins = self._own("joins")
        joins[key] = (*joins.get(key, ()), edge)

    def drop_join(self, key: str) -> None:
        self._own("joins").pop(key, None)

    # -- timers ----------------------------------------------------------------------------

    def schedule(self, timer: Timer) -> str:
        self._own("timers")[timer.id] = timer
        self.emit(ScheduleTimer(timer.id, timer.fire_at, timer.kind))
        return timer.id

    def schedule_in(
        self,
        timer_id: str,
        kind: TimerKind,
        after: timedelta,
        execution: int,
        *,
        unit: int | None = None,
        attempt: int = 0,
    ) -> str:
        return self.schedule(Timer(timer_id, kind, self.now + after, execution, unit, attempt))

    def cancel_timer(self, timer_id: str | None) -> None:
        if timer_id is not None and timer_id in self.timers:
            self._own("timers").pop(timer_id)
            self.emit(CancelTimer(timer_id))

    def pop_timer(self, timer_id: str) -> Timer | None:
        if timer_id not in self.timers:
            return None
        timer: Timer = self._own("timers").pop(timer_id)
        return timer

    # -- output ----------------------------------------------------------------------------

    def emit(self, command: Command) -> None:
        self.commands.append(command)

    def move_run(self, status: RunStatus) -> None:
        """Move the run to ``status`` (as ``RUN_TRANSITIONS`` allows) and say so."""
        if status is not self.status:
            self.status = moved(RUN_TRANSITIONS, self.status, status)
            self.emit(RunStatusChanged(status, self.now))

    @property
    def holding(self) -> bool:
        """Whether new work is held back (the run is pausing or paused)."""
        return self.status in (RunStatus.PAUSING, RunStatus.PAUSED)

    def defer(self, item: Deferred) -> None:
        self.deferred = (*self.deferred, item)

    def freeze(self) -> RunState:
        """The next state; the very same object as before when nothing changed."""
        base = self.base
        changes = {
            name: getattr(self, name)
            for name in TRACKED
            if getattr(self, name) is not getattr(base, name)
        }
        if not changes:
            return self.base
        return evolve(self.base, **changes)
