"""A run rehearsed from data: parameters, scripted results, answers, controls.

The project's scenario files (``tests/scenarios``) and users' workflow tests
(``tests/test_workflows.yaml`` in a pack) describe a run the same way; this turns that
description into :func:`~treadle.scheduler.rehearsal.rehearse`'s arguments, so both drive
the pure core through one path. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from treadle.common.budget import Budget, checked_budget
from treadle.common.graph import Graph
from treadle.common.limits import Limits
from treadle.scheduler.core.events import (
    BudgetChanged,
    CancelRequested,
    CompensateRequested,
    Event,
    EventReceived,
    PauseRequested,
    ResumeRequested,
    RetryRequested,
)
from treadle.scheduler.rehearsal import Rehearsal, rehearse, scripted

#: What ``controls: [{at: seconds, do: NAME}]`` may do.
CONTROLS: Final[Mapping[str, Callable[[], Event]]] = {
    "pause": PauseRequested,
    "resume": ResumeRequested,
    "cancel": CancelRequested,
    "retry": RetryRequested,
    "compensate": CompensateRequested,
}


@dataclass(frozen=True)
class RunScript:
    """Everything a rehearsed run is given besides its workflow."""

    parameters: Mapping[str, Any] = field(default_factory=dict)
    results: Mapping[str, Any] = field(default_factory=dict)
    answers: Mapping[str, Any] | None = None
    children: Mapping[str, Any] | None = None
    limits: Limits | None = None
    seed: int = 0
    depth: int = 0
    controls: Sequence[tuple[float, Event]] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    budget: Budget | None = None
    budget_ceiling: Budget | None = None
    budget_answers: Sequence[Any] = ()

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> RunScript:
        """From a scenario's keys (``parameters``, ``results``, ``answers``, ``children``,
        ``limits``, ``seed``, ``depth``, ``controls``, ``budget``, ``budget_ceiling``,
        ``budget_answers``); absent keys take the defaults."""
        return cls(
            parameters=dict(data.get("parameters") or {}),
            results=dict(data.get("results") or {}),
            answers=data.get("answers"),
            children=data.get("children"),
            limits=Limits(**data["limits"]) if data.get("limits") else None,
            seed=int(data.get("seed", 0)),
            depth=int(data.get("depth", 0)),
            controls=tuple(e for c in data.get("controls") or () for e in parse_controls(c)),
            budget=_budget(data.get("budget")),
            budget_ceiling=_budget(data.get("budget_ceiling")),
            budget_answers=tuple(data.get("budget_answers") or ()),
        )


def rehearse_script(graph: Graph, script: RunScript) -> Rehearsal:
    """Rehearse ``graph`` as ``script`` says (no actions run, no database, a fake clock)."""
    return rehearse(
        graph,
        parameters=script.parameters,
        script=scripted(script.results),
        answers=script.answers,
        child_outcomes=script.children,
        limits=script.limits,
        seed=script.seed,
        depth=script.depth,
        controls=script.controls,
        config=script.config,
        budget=script.budget,
        budget_ceiling=script.budget_ceiling,
        budget_answers=script.budget_answers,
    )


def _budget(data: Any) -> Budget | None:
    return None if data is None else checked_budget(data)


def parse_controls(data: Mapping[str, Any]) -> list[tuple[float, Event]]:
    """:func:`parse_control`, and ``{at, do: resume, budget: {cost_usd: 50}}``: the new
    limits (``BudgetChanged``), then the resume, at the same moment."""
    control = parse_control(data)
    if data.get("budget") is None:
        return [control]
    return [(control[0], BudgetChanged(budget=checked_budget(data["budget"]))), control]


def parse_control(data: Mapping[str, Any]) -> tuple[float, Event]:
    """``{at: seconds, do: pause|resume|cancel|retry|compensate}``, ``{at: seconds, do:
    retry, task: NAME}`` (a retry from that task) or ``{at: seconds, event: {id, type,
    subject, data}}`` (an outside event)."""
    at = float(data["at"])
    if "event" in data:
        event = data["event"]
        return at, EventReceived(
            event_id=str(event.get("id", f"ev-{at}")),
            type=str(event["type"]),
            subject=event.get("subject"),
            data=event.get("data"),
        )
    if data.get("task") is not None:
        if data["do"] != "retry":
            raise ValueError(f"only a retry names a task, not {data['do']!r}")
        return at, RetryRequested(task=str(data["task"]))
    return at, CONTROLS[str(data["do"])]()
