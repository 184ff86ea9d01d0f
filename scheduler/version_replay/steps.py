"""What each step of a run did, by name: the trace a replay against a version compares.

For each execution of a task (a :class:`StepKey`: the task and its pass) the trace keeps
what a reviewer of a new version asks about: the action, the input of every call (by
item and attempt; an inquiry's prompt, a child run's parameters), the status it ended
with, and the workflow variables published when it ended. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from treadle.common.graph import Graph
from treadle.scheduler.core.commands import DispatchTask, OpenInquiry, StartChildRun
from treadle.scheduler.version_replay.keys import StepKey, call_key, step_key
from treadle.scheduler.version_replay.log import RunLog

#: A call within a step: ``(item, attempt)``.
CallPlace = tuple[int | None, int]


@dataclass
class StepTrace:
    """One execution of a task, as the trace keeps it."""

    key: StepKey
    action: str | None
    started: datetime
    status: str = ""
    inputs: dict[CallPlace, Any] = field(default_factory=dict)
    published: dict[str, Any] = field(default_factory=dict)


def trace_of(log: RunLog, graph: Graph) -> dict[StepKey, StepTrace]:
    """Every step of the run ``log`` holds, in the order they started."""
    steps: dict[StepKey, StepTrace] = {}
    by_execution: dict[int, StepKey] = {}
    for entry in log.decided:
        state = entry.after
        for number, execution in state.executions.items():
            if number not in by_execution:
                key = step_key(state, number)
                by_execution[number] = key
                node = graph.nodes.get(execution.task)
                action = None if node is None else node.spec.action
                steps[key] = StepTrace(key, action, execution.started_at)
        for command in entry.commands:
            placed = _input_of(state, command)
            if placed is not None:
                call, given = placed
                steps[StepKey(call.task, call.pass_)].inputs[(call.item, call.attempt)] = given
        ended = [
            number
            for number, execution in state.executions.items()
            if execution.status.is_terminal and not _ended(entry.before.executions.get(number))
        ]
        changed = _changed_vars(entry.before.vars, state.vars)
        for number in ended:
            steps[by_execution[number]].published.update(changed)
    final = log.state
    for number, key in by_execution.items():
        steps[key].status = final.executions[number].status.value
    return steps


def _input_of(state: Any, command: Any) -> tuple[Any, Any] | None:
    if isinstance(command, DispatchTask):
        given: Any = dict(command.dispatch.input)
        attempt_id = command.dispatch.attempt_id
    elif isinstance(command, StartChildRun):
        given, attempt_id = dict(command.parameters), command.parent_attempt_id
    elif isinstance(command, OpenInquiry):
        given, attempt_id = {"prompt": command.prompt}, command.attempt_id
    else:
        return None
    call = call_key(state, attempt_id)
    return None if call is None else (call, given)


def _ended(execution: Any) -> bool:
    return execution is not None and execution.status.is_terminal


def _changed_vars(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in after.items() if before.get(name, _ABSENT) != value}


_ABSENT = object()
