"""Scenario tests: each YAML file here pins down one rule of the workflow language.

A scenario gives a workflow, its parameters, the scripted outcome of each task's attempts
and what a user would then see (the run's status, the order tasks started, each task's
status, the output or the error). The harness loads the workflow with the real loader and
graph compiler and rehearses it against the pure core on a fake clock: no threads, no
sleeps, no database. ``README.md`` in this folder describes the format.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from treadle.common.graph import Graph, compile_graph
from treadle.common.loader import load_workflow_text
from treadle.common.spec import RunnerType
from treadle.scheduler.rehearsal import EPOCH, Rehearsal, replay
from treadle.scheduler.workflow_tests import EXPECT_KEYS, RunScript, differences, rehearse_script

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
    "budget",
    "budget_ceiling",
    "budget_answers",
    "expect",
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


def rehearse_scenario(path: Path, data: Mapping[str, Any]) -> tuple[Rehearsal, Graph]:
    """Build the scenario's workflow through the loader and compiler, then rehearse it
    (the driver users' workflow tests use too: ``treadle.scheduler.workflow_tests``)."""
    text = yaml.safe_dump(data["workflow"], sort_keys=False, allow_unicode=True)
    spec = load_workflow_text(text, f"{path.name}#workflow")
    kinds = {ref: RunnerType(kind) for ref, kind in (data.get("actions") or {}).items()}
    graph = compile_graph(spec, kinds.get)
    return rehearse_script(graph, RunScript.from_data(data)), graph


def test_there_are_scenarios() -> None:
    assert len(SCENARIOS) >= 40


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path: Path) -> None:
    data = load_scenario(path)
    record, _ = rehearse_scenario(path, data)
    assert differences(record, data["expect"]) == []


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_replays_to_the_same_commands(path: Path) -> None:
    """Feeding the recorded event log through ``decide`` again yields the same commands."""
    data = load_scenario(path)
    record, graph = rehearse_scenario(path, data)
    again = replay(graph, record.events, "r-rehearsal", EPOCH)
    assert again == record.commands
