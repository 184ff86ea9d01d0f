"""Validation of a task's guard-rail fields: costs and escalation.

What the loader cannot see alone: an escalation on a task whose failures it cannot catch
(a parallel block), ``notify`` inputs ``core.notify`` does not declare, an estimate above
the task's own ceiling. :class:`~treadle.common.validate_spec.WorkflowCheck` reports what
:func:`guard_problems` finds, each with the field's path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from treadle.common.budget import usd
from treadle.common.source import Path, Severity
from treadle.common.spec import ParameterSpec, TaskSpec, TaskType

#: The action an escalation's ``notify`` sends.
NOTIFY_ACTION: Final = "core.notify"


@dataclass(frozen=True)
class GuardProblem:
    """One problem with a task's guard-rail fields, at ``path``."""

    path: Path
    message: str
    severity: Severity = Severity.ERROR


def guard_problems(
    task: TaskSpec, declared: Callable[[str], tuple[ParameterSpec, ...] | None] | None
) -> Iterator[GuardProblem]:
    """The problems of ``task``'s costs and escalation; ``declared`` gives an action's
    parameters (``None`` without a catalog: the notify inputs are not checked)."""
    what = f"task '{task.name}'"
    estimate, ceiling = task.cost_estimate_usd, task.cost_ceiling_usd
    if estimate is not None and ceiling is not None and estimate > ceiling:
        yield GuardProblem(
            (*task.path, "cost_estimate_usd"),
            f"{what} is estimated at {usd(estimate)}, above its own 'cost_ceiling_usd' of "
            f"{usd(ceiling)}: it would never be dispatched",
        )
    if task.type is TaskType.PARALLEL:
        for key in ("cost_estimate_usd", "cost_ceiling_usd", "escalate"):
            if getattr(task, key) is not None:
                yield GuardProblem(
                    (*task.path, key),
                    f"'{key}' does not apply to parallel {what}; give it to its nested tasks",
                )
        return
    escalate = task.escalate
    if escalate is None or escalate.notify is None or declared is None:
        return
    params = declared(NOTIFY_ACTION)
    if not params:
        return
    names = {p.name for p in params}
    for key in escalate.notify:
        if key not in names:
            yield GuardProblem(
                (*task.path, "escalate", "notify", key),
                f"'escalate.notify' of {what} gives '{key}', which '{NOTIFY_ACTION}' does not "
                f"declare (it takes {', '.join(sorted(names))})",
            )


def escalation_templates(task: TaskSpec) -> Iterator[tuple[Path, Any]]:
    """The values of ``task``'s escalation rendered at run time, with their paths."""
    escalate = task.escalate
    if escalate is None:
        return
    base = (*task.path, "escalate")
    if escalate.notify:
        yield (*base, "notify"), escalate.notify
    if escalate.ask is not None:
        if escalate.ask.prompt is not None:
            yield (*base, "ask", "prompt"), escalate.ask.prompt
        if escalate.ask.assigned_to is not None:
            yield (*base, "ask", "assigned_to"), escalate.ask.assigned_to
