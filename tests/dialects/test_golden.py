"""Golden records: the information of ``golden_trace.json``, and replay to the same decisions.

The recorded trace's plan (two ``json_transform`` steps) is imported and run with a stub
skill; the run's golden record must carry every piece of information the trace has, and
replaying its events through ``decide`` must reproduce the decisions, which are checked
against what the store independently recorded (attempts, inquiries, the final state).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from treadle.common.dialects import import_aos, import_workflows_v1, step_seed
from treadle.common.spec import WorkflowSpec
from treadle.scheduler.core.commands import DispatchTask, OpenInquiry
from treadle.scheduler.service.renderings import StoredRun, golden_record, verify_golden

from .conftest import Driver, read_json


@pytest.fixture
def trace(aos_dir: Path) -> dict[str, Any]:
    found: dict[str, Any] = read_json(aos_dir / "golden_trace.json")
    return found


@pytest.fixture
def trace_run(driver: Driver, aos_dir: Path) -> StoredRun:
    path = aos_dir / "golden_trace.json"
    spec = import_aos(path.read_text(encoding="utf-8"), str(path))
    return driver.stored(driver.start(spec))


def test_the_golden_record_has_the_information_of_the_golden_trace(
    trace_run: StoredRun, trace: dict[str, Any]
) -> None:
    record = golden_record(trace_run)
    # the run: id, seed, status, start and end
    assert record["run_id"] == trace_run.state.run_id
    assert record["seed"] == trace_run.state.context.seed
    assert record["status"] == "succeeded"
    assert record["started_at"]
    assert record["completed_at"]
    assert record["started_at"] <= record["completed_at"]
    # per step: index, action, params, status, outputs, cost, retries
    assert len(record["steps"]) == len(trace["steps"])
    for mine, theirs in zip(record["steps"], trace["steps"], strict=True):
        assert mine["index"] == theirs["step_index"]
        assert mine["action"] == f"aos.{theirs['skill_name']}"
        assert {k: v for k, v in mine["params"].items() if k != "seed"} == theirs["params"]
        assert (
            mine["params"]["seed"]
            == trace_run.dispatches[(mine["index"] + 1, 0)].dispatch.input["seed"]
        )
        assert (mine["status"], mine["ok"]) == ("succeeded", theirs["status"] == "success")
        assert mine["outputs"] == theirs["outcome_data"]
        assert mine["retries"] == theirs["retry_count"]
        assert mine["cost_cents"] == 0
        assert mine["duration_ms"] is not None
        assert mine["started_at"] <= mine["finished_at"]


def test_replaying_the_record_reproduces_its_decisions(trace_run: StoredRun) -> None:
    record = golden_record(trace_run)
    assert verify_golden(record, trace_run.pinned.graph) == []
    assert len(record["decisions"]) == len(record["events"]) == len(trace_run.events)


def test_the_replayed_decisions_are_the_ones_the_store_recorded(
    driver: Driver, v1_dir: Path
) -> None:
    """A run with a branch, an inquiry and an event wait: replay against what was stored."""
    path = v1_dir / "publish_version_response.json"
    spec: WorkflowSpec = import_workflows_v1(path.read_text(encoding="utf-8"), str(path))
    run_id = driver.start(spec, {"provider": "hubspot", "snapshot": {"deal_value_usd": 90000}})
    driver.answer(run_id, {"approved": True})
    stored = driver.stored(run_id)
    with driver.runner.store.unit_of_work() as uow:
        attempts = uow.list_attempts(run_id)
        inquiries = uow.list_inquiries(run_id=run_id)
    commands = [c for decision in stored.decisions for c in decision.commands]
    dispatched = [c.dispatch for c in commands if isinstance(c, DispatchTask)]
    assert sorted((d.attempt_id, d.action_ref) for d in dispatched) == sorted(
        (a.attempt_id, a.action_ref) for a in attempts
    )
    asked = [c for c in commands if isinstance(c, OpenInquiry)]
    assert [(q.inquiry_id, q.task, q.prompt) for q in asked] == [
        (i.id, i.task, i.prompt) for i in inquiries
    ]
    assert stored.decisions[-1].state == stored.state
    assert verify_golden(golden_record(stored), stored.pinned.graph) == []


def test_a_record_that_does_not_match_the_engine_is_reported(trace_run: StoredRun) -> None:
    record = golden_record(trace_run)
    changed_result = copy.deepcopy(record)
    succeeded = next(e for e in changed_result["events"] if e["event"]["kind"] == "task_succeeded")
    succeeded["event"]["result"] = {"transformed": False}
    problems = verify_golden(changed_result, trace_run.pinned.graph)
    assert problems
    assert "replay gave" in problems[0]

    changed_decision = copy.deepcopy(record)
    changed_decision["decisions"][0][0]["kind"] = "something_else"
    [problem] = verify_golden(changed_decision, trace_run.pinned.graph)
    assert problem.startswith("event 1 (run_requested): replay gave [")


def test_costs_and_seeds_of_the_steps_are_in_the_record(driver: Driver, aos_dir: Path) -> None:
    """The skills report ``cost_cents``; each step's seed follows from the run's seed."""
    path = aos_dir / "workflow_multi_skill.json"
    stored = driver.stored(driver.start(import_aos(path.read_text(encoding="utf-8"), str(path))))
    record = golden_record(stored)
    assert [(s["task"], s["cost_cents"]) for s in record["steps"]] == [
        ("s1", 0.1),
        ("s2", 0),
        ("s3", 0.5),
    ]
    assert all(s["params"]["seed"] == step_seed(record["seed"], s["task"]) for s in record["steps"])
    assert record["steps"][1]["params"]["data"] == {
        "id": 1,
        "email": "jane.doe@example.com",
        "name": "Jane Doe",
    }  # s1's body, as the reference {{s1.body}} gave it
