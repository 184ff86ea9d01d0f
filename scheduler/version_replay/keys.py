"""How a replay against another version recognises "the same call": by name, not by id.

Ids are positional (``<run>/<execution>/<unit>/<attempt>``): a version with one more task
numbers its executions differently. So each call is named by what it *is*: the task, the
pass (the n-th execution of that task in the run, counting from 1, for loops), the item
index (``None`` for a task without ``with_items``) and the attempt. Timers are named the
same way, plus their kind. Pure functions of a run's state.
"""

from __future__ import annotations

from typing import NamedTuple

from treadle.scheduler.core.escalation import NOTIFY_POSITION
from treadle.scheduler.core.ids import parse_attempt_id
from treadle.scheduler.core.state import RunState


class CallKey(NamedTuple):
    """One call of a task: ``(task, pass, item, attempt)``."""

    task: str
    pass_: int
    item: int | None
    attempt: int

    def __str__(self) -> str:
        item = "" if self.item is None else f", item {self.item}"
        return f"{self.task} (pass {self.pass_}{item}, attempt {self.attempt})"


class StepKey(NamedTuple):
    """One execution of a task: ``(task, pass)``."""

    task: str
    pass_: int

    def __str__(self) -> str:
        return self.task if self.pass_ == 1 else f"{self.task} (pass {self.pass_})"


#: A timer by what it is: ``("run", kind)``, ``("step", task, pass, kind)`` or
#: ``("call", task, pass, item, attempt, kind)``.
TimerKey = tuple[object, ...]


def pass_of(state: RunState, execution: int) -> int:
    """The pass of ``execution``: how many executions of its task started up to it."""
    task = state.executions[execution].task
    return sum(
        1 for number, e in state.executions.items() if e.task == task and number <= execution
    )


def step_key(state: RunState, execution: int) -> StepKey:
    return StepKey(state.executions[execution].task, pass_of(state, execution))


def call_key(state: RunState, attempt_id: str) -> CallKey | None:
    """The call an attempt id of ``state``'s run names (None when it names none)."""
    ref = parse_attempt_id(attempt_id)
    if ref is None or ref.execution not in state.executions or ref.position >= NOTIFY_POSITION:
        return None  # (an escalation's notification is not a call of the task)
    execution = state.executions[ref.execution]
    units = execution.units
    item = units[ref.position].index if ref.position < len(units) else None
    return CallKey(execution.task, pass_of(state, ref.execution), item, ref.attempt)


def timer_key(state: RunState, timer_id: str) -> TimerKey | None:
    """What the timer ``timer_id`` of ``state``'s run is for (None when unknown)."""
    rest = timer_id.removeprefix(f"{state.run_id}/")
    parts = rest.split("/")
    if len(parts) == 2 and parts[0] == "run":
        return ("run", parts[1])
    if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) in state.executions:
        return ("step", *step_key(state, int(parts[0])), parts[1])
    if len(parts) == 4:
        call = call_key(state, f"{state.run_id}/{'/'.join(parts[:3])}")
        return None if call is None else ("call", *call, parts[3])
    return None
