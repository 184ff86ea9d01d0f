"""Scenario tests: each YAML file here pins down one rule of the workflow language.

A scenario gives a workflow, its parameters, the scripted outcome of each task's attempts
and what a user would then see (the run's status, the order tasks started, each task's
status, the output or the error). The harness loads the workflow with the real loader and
graph compiler and rehearses it against the pure core on a fake clock: no threads, no
sleeps, no database. ``README.md`` in this folder describes the format.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from treadle.common.graph import compile_graph
from treadle.common.limits import Limits
from treadle.common.loader import load_workflow_text
from treadle.common.spec import RunnerType
from treadle.scheduler.core.events import (
    CancelRequested,
    CompensateRequested,
    Event,
    EventReceived,
    PauseRequested,
    ResumeRequested,
    RetryRequested,
)
from treadle.scheduler.rehearsal import EPOCH, Rehearsal, rehearse, replay, scripted

HERE = Path(__file__).resolve().parent
SCENARIOS = sorted(HERE.glob("*.yaml"))

TOP_LEVEL = {
    "description",
    "workflow",
    "parameters",
    "actions",
    "limits",
    "results",
    "answers",
    "children",
    "seed",
    "depth",
    "controls",
    "expect",
}
EXPECT_KEYS = {
    "status",
    "sequence",
    "tasks",
    "attempts",
    "output",
    "error",
    "dispatched",
    "clock_seconds",
    "task_errors",
    "results",
    "vars",
    "commands",
    "inputs",
    "statuses",
}


def load_scenario(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: a scenario is a mapping"
    unknown = set(data) - TOP_LEVEL
    assert not unknown, f"{path.name}: unknown scenario keys {sorted(unknown)}"
    assert isinstance(data.get("description"), str), f"{path.name}: needs a 'description'"
    assert isinstance(data.get("workflow"), dict), f"{path.name}: needs a 'workflow'"
    assert isinstance(data.get("expect"), dict), f"{path.name}: needs an 'expect'"
    unknown = set(data["expect"]) - EXPECT_KEYS
    assert not unknown, f"{path.name}: unknown expect keys {sorted(unknown)}"
    return data


def rehearse_scenario(path: Path, data: Mapping[str, Any]) -> tuple[Rehearsal, Any]:
    """Build the scenario's workflow through the loader and compiler, then rehearse it."""
    text = yaml.safe_dump(data["workflow"], sort_keys=False, allow_unicode=True)
    spec = load_workflow_text(text, f"{path.name}#workflow")
    kinds = {ref: RunnerType(kind) for ref, kind in (data.get("actions") or {}).items()}
    graph = compile_graph(spec, kinds.get)
    limits = Limits(**data["limits"]) if data.get("limits") else None
    record = rehearse(
        graph,
        parameters=data.get("parameters") or {},
        script=scripted(data.get("results") or {}),
        answers=data.get("answers"),
        child_outcomes=data.get("children"),
        limits=limits,
        seed=int(data.get("seed", 0)),
        depth=int(data.get("depth", 0)),
        controls=[parse_control(c) for c in data.get("controls") or ()],
    )
    return record, graph


_CONTROLS: dict[str, Callable[[], Event]] = {
    "pause": PauseRequested,
    "resume": ResumeRequested,
    "cancel": CancelRequested,
    "retry": RetryRequested,
    "compensate": CompensateRequested,
}


def parse_control(data: Mapping[str, Any]) -> tuple[float, Event]:
    """``{at: seconds, do: pause|resume|cancel|retry|compensate}`` or
    ``{at: seconds, event: {id, type, subject, data}}`` (an outside event)."""
    at = float(data["at"])
    if "event" in data:
        event = data["event"]
        return at, EventReceived(
            event_id=str(event.get("id", f"ev-{at}")),
            type=str(event["type"]),
            subject=event.get("subject"),
            data=event.get("data"),
        )
    return at, _CONTROLS[str(data["do"])]()


def check_expectations(record: Rehearsal, expect: Mapping[str, Any]) -> None:
    """Assert every key of ``expect`` against what the rehearsal produced."""
    state = record.state
    if "status" in expect:
        assert record.status.value == expect["status"], state.error
    if "sequence" in expect:
        assert record.sequence == expect["sequence"]
    if "statuses" in expect:
        # every status the run went through, in order (from its run_status commands)
        moves = [
            c.status.value for batch in record.commands for c in batch if c.kind == "run_status"
        ]
        assert moves == expect["statuses"]
    for task, status in (expect.get("tasks") or {}).items():
        assert record.task_status(task) == status, f"status of task '{task}'"
    for task, attempts in (expect.get("attempts") or {}).items():
        execution = state.latest_execution(task)
        assert execution is not None, f"task '{task}' never ran"
        assert sum(u.attempt for u in execution.units) == attempts, f"attempts of '{task}'"
    for task, result in (expect.get("results") or {}).items():
        execution = state.latest_execution(task)
        assert execution is not None, f"task '{task}' never ran"
        assert execution.result == result, f"result of task '{task}'"
    for task, wanted in (expect.get("task_errors") or {}).items():
        execution = state.latest_execution(task)
        assert execution is not None, f"task '{task}' never ran"
        _check_error(execution.error, wanted, f"error of task '{task}'")
    if "output" in expect:
        assert state.output == expect["output"]
    if "error" in expect:
        _check_error(state.error, expect["error"], "the run's error")
    for name, value in (expect.get("vars") or {}).items():
        assert state.vars.get(name) == value, f"variable '{name}'"
    if "dispatched" in expect:
        assert len(record.dispatched) == expect["dispatched"]
    for task, inputs in (expect.get("inputs") or {}).items():
        given = [dict(d.dispatch.input) for d in record.dispatched if d.dispatch.task == task]
        assert given == inputs, f"inputs dispatched for task '{task}'"
    if "commands" in expect:
        counts = Counter(c.kind for batch in record.commands for c in batch)
        for kind, count in expect["commands"].items():
            assert counts[kind] == count, f"number of {kind} commands"
    if "clock_seconds" in expect:
        elapsed = (record.events[-1][1] - EPOCH).total_seconds()
        assert elapsed == pytest.approx(expect["clock_seconds"])


def _check_error(actual: Mapping[str, Any] | None, wanted: Any, what: str) -> None:
    if wanted is None:
        assert actual is None, f"{what}: expected none, got {actual}"
        return
    assert actual is not None, f"{what}: expected {wanted}, got none"
    if "type" in wanted:
        assert actual.get("type") == wanted["type"], f"{what}: {actual}"
    if "contains" in wanted:
        assert wanted["contains"] in str(actual.get("message")), f"{what}: {actual}"
    if "message" in wanted:
        assert actual.get("message") == wanted["message"], f"{what}: {actual}"
    if "task" in wanted:
        assert actual.get("task") == wanted["task"], f"{what}: {actual}"


def test_there_are_scenarios() -> None:
    assert len(SCENARIOS) >= 40


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path: Path) -> None:
    data = load_scenario(path)
    record, _ = rehearse_scenario(path, data)
    check_expectations(record, data["expect"])


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_replays_to_the_same_commands(path: Path) -> None:
    """Feeding the recorded event log through ``decide`` again yields the same commands."""
    data = load_scenario(path)
    record, graph = rehearse_scenario(path, data)
    again = replay(graph, record.events, "r-rehearsal", EPOCH)
    assert again == record.commands
