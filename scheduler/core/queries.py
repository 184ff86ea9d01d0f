"""Questions about a run's state that several layers ask, answered once by the core.

The core's handlers, the service (the reconciler) and the runners around it (the embedded
loop, ``treadle run --distributed`` following the database) each need to know:

* :func:`current_unit` / :func:`is_current`: is an attempt still the one its run waits for?
  The core ignores a result of any other attempt, so the reconciler must use the same
  rule to decide between timing an attempt out (the run acts on it) and only closing its
  row (the run no longer waits for it).
* :func:`only_waits`: can nothing move the run now but a person or an outside event?
  That is when ``treadle run`` stops following and exits 3.

Answered separately in each layer, these rules drift apart; here they are pure functions
of the state (child runs are looked up through a callback), so every layer shares them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core.ids import parse_attempt_id
from treadle.scheduler.core.state import Execution, RunState, Timer, TimerKind, Unit

#: Child runs are followed this deep at most when deciding whether a run only waits.
MAX_CHILD_DEPTH = 32

_CURRENT_UNIT = (TaskStatus.RUNNING, TaskStatus.WAITING)


class RunView(Protocol):
    """What the queries read of a run: a frozen :class:`RunState` or the core's working copy."""

    @property
    def run_id(self) -> str: ...

    @property
    def status(self) -> RunStatus: ...

    @property
    def executions(self) -> Mapping[int, Execution]: ...

    @property
    def timers(self) -> Mapping[str, Timer]: ...


def current_unit(run: RunView, attempt_id: str) -> tuple[Execution, int] | None:
    """The execution and unit position ``attempt_id`` belongs to, if the run still waits
    for that attempt; else ``None``.

    It is current when it names this run, the run and its execution have not ended, and it
    is its unit's latest attempt with the unit running or waiting, and not already failed
    with a retry scheduled (the unit then runs on in its back-off under the same attempt
    number until the retry starts).
    """
    ref = parse_attempt_id(attempt_id)
    if ref is None or ref.run_id != run.run_id or run.status.is_terminal:
        return None
    execution = run.executions.get(ref.execution)
    if execution is None or execution.status.is_terminal or ref.position >= len(execution.units):
        return None
    unit = execution.units[ref.position]
    if unit.attempt != ref.attempt or unit.status not in _CURRENT_UNIT:
        return None
    if unit.status is TaskStatus.RUNNING and in_retry_backoff(run, unit):
        return None
    return execution, ref.position


def is_current(run: RunView, attempt_id: str) -> bool:
    """Whether the run still waits for ``attempt_id`` (see :func:`current_unit`)."""
    return current_unit(run, attempt_id) is not None


def in_retry_backoff(run: RunView, unit: Unit) -> bool:
    """Whether ``unit``'s last attempt failed and its retry timer is pending."""
    timer = run.timers.get(unit.timer) if unit.timer is not None else None
    return timer is not None and timer.kind is TimerKind.RETRY


def only_waits(
    state: RunState, child_run: Callable[[str], RunState | None], depth: int = 0
) -> bool:
    """Whether nothing but people or outside events can move the run now.

    True when some task waits (an inquiry, an event) and nothing is in flight: no attempt
    dispatched, no retry or delay pending, no child run that does more than wait itself.
    Deadlines of waits (and the run's own) do not count: they end waits, they do no work.
    ``child_run`` looks a child run up by id, ``None`` when it is not stored yet (its
    start is in flight). A run that has ended does not wait.
    """
    if state.status.is_terminal or depth > MAX_CHILD_DEPTH:
        return False
    if any(timer.kind is not TimerKind.DEADLINE for timer in state.timers.values()):
        return False
    waiting = False
    for execution in state.executions.values():
        if execution.status.is_terminal:
            continue
        if execution.status is TaskStatus.WAITING:
            waiting = True
            continue
        for unit in execution.units:
            if unit.status is TaskStatus.WAITING:
                waiting = True
            elif unit.status is TaskStatus.RUNNING:
                child = None if unit.child_run_id is None else child_run(unit.child_run_id)
                if child is None or not only_waits(child, child_run, depth + 1):
                    return False
                waiting = True
    return waiting
