"""The workflows/v1 state vocabulary: run and step states of imported runs, as rendered.

Run states PENDING, RUNNING, PAUSED, COMPENSATING, COMPLETED, FAILED, CANCELLED and step
states PENDING, RUNNING, WAITING, COMPLETED, FAILED, SKIPPED, COMPENSATED, CANCELLED: every
Treadle status has one, and the lifecycle controls (pause, resume, cancel, compensate) and
timeouts show up in the rendered run and its lifecycle events. Compensation steps
(``compensation_step_id``) run in reverse topological order. PARALLEL and HUMAN_TASK steps
are run here; the SDR pipeline's other step types in ``test_v1_runs``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from treadle.common.catalog import Catalog
from treadle.common.dialects import import_workflows_v1, read_workflows_v1
from treadle.common.spec import WorkflowSpec
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.service.controls import Control, apply_control
from treadle.scheduler.service.renderings import v1_lifecycle_events, v1_run
from treadle.scheduler.service.renderings.v1_steps import STEP_STATES
from treadle.scheduler.service.renderings.workflows_v1 import RUN_STATES

from .conftest import Driver, read_json

RUN_VOCABULARY = {"PENDING", "RUNNING", "PAUSED", "COMPENSATING", "COMPLETED", "FAILED",
                  "CANCELLED"}  # fmt: skip
STEP_VOCABULARY = {"PENDING", "RUNNING", "WAITING", "COMPLETED", "FAILED", "SKIPPED",
                   "COMPENSATED", "CANCELLED"}  # fmt: skip


def rendered(driver: Driver, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = v1_run(driver.stored(run_id))["run"]
    return run


def step_states(run: dict[str, Any]) -> dict[str, str]:
    return {s["step_id"]: s["state"].removeprefix("STEP_RUN_STATE_") for s in run["steps"]}


@pytest.fixture
def sdr(v1_dir: Path) -> WorkflowSpec:
    path = v1_dir / "publish_version_response.json"
    return import_workflows_v1(path.read_text(encoding="utf-8"), str(path))


@pytest.fixture
def at_the_gate(driver: Driver, sdr: WorkflowSpec, v1_dir: Path) -> str:
    """An SDR run waiting at ``approve-high-value``, as in ``get_run_response.json``."""
    recorded = read_json(v1_dir / "get_run_response.json")["run"]
    return driver.start(sdr, recorded["input_payload"])


def test_every_treadle_status_has_a_v1_state_and_every_v1_state_is_used() -> None:
    assert set(RUN_STATES) == set(RunStatus)
    assert set(RUN_STATES.values()) == RUN_VOCABULARY
    assert set(STEP_STATES) == set(TaskStatus)
    # RUNNING, WAITING ... come from task statuses; unreached steps are PENDING, SKIPPED or
    # CANCELLED (see the tests below)
    assert set(STEP_STATES.values()) == STEP_VOCABULARY


def test_pausing_resuming_and_cancelling_show_in_the_run_state(
    driver: Driver, at_the_gate: str
) -> None:
    apply_control(driver.runner.runs, at_the_gate, Control.PAUSE)
    driver.follow(at_the_gate)
    run = rendered(driver, at_the_gate)
    assert run["state"] == "WORKFLOW_STATE_PAUSED"
    assert step_states(run)["approve-high-value"] == "WAITING"

    apply_control(driver.runner.runs, at_the_gate, Control.RESUME)
    driver.follow(at_the_gate)
    assert rendered(driver, at_the_gate)["state"] == "WORKFLOW_STATE_RUNNING"

    apply_control(driver.runner.runs, at_the_gate, Control.CANCEL)
    driver.follow(at_the_gate)
    run = rendered(driver, at_the_gate)
    assert run["state"] == "WORKFLOW_STATE_CANCELLED"
    assert list(step_states(run).values()) == [*["COMPLETED"] * 4, *["CANCELLED"] * 4]

    runs = [e for e in v1_lifecycle_events(driver.stored(at_the_gate)) if "run" in e]
    assert [(e["operation"], e["run"]["state"]) for e in runs] == [
        ("started", "WORKFLOW_STATE_RUNNING"),
        ("paused", "WORKFLOW_STATE_PAUSED"),
        ("resumed", "WORKFLOW_STATE_RUNNING"),
        ("cancelled", "WORKFLOW_STATE_CANCELLED"),
    ]


def test_compensating_a_run_at_the_gate_cancels_what_it_had_not_reached(
    driver: Driver, at_the_gate: str
) -> None:
    """Nothing done there has a compensation: the run is cancelled, then compensated at once."""
    apply_control(driver.runner.runs, at_the_gate, Control.COMPENSATE)
    driver.follow(at_the_gate)
    assert driver.status(at_the_gate) == "compensated"
    run = rendered(driver, at_the_gate)
    assert run["state"] == "WORKFLOW_STATE_CANCELLED"
    # unreached steps stay CANCELLED after the compensation, as after the cancel before it
    assert list(step_states(run).values()) == [*["COMPLETED"] * 4, *["CANCELLED"] * 4]
    runs = [e for e in v1_lifecycle_events(driver.stored(at_the_gate)) if "run" in e]
    # each run event shows the state it reports, though one decision made both of the last
    assert [(e["operation"], e["run"]["state"]) for e in runs][-3:] == [
        ("cancelled", "WORKFLOW_STATE_CANCELLED"),
        ("compensating", "WORKFLOW_STATE_COMPENSATING"),
        ("compensated", "WORKFLOW_STATE_CANCELLED"),
    ]
    assert "completed_at" not in runs[-2]["run"]


# -- a version with every remaining step type --------------------------------------------------


def fan_out_version(**wait: Any) -> str:
    """PARALLEL into an agent and a HUMAN_TASK, joined by an agent, then a WAIT_FOR_EVENT;
    both agents have a compensation step."""
    return json.dumps(
        {
            "definition_id": "wf_fan_out",
            "version": 1,
            "steps": [
                {"id": "fan", "name": "Fan Out", "step_type": "STEP_TYPE_PARALLEL"},
                {"id": "research", "step_type": "STEP_TYPE_AGENT_ACTION",
                 "action_type": "company.research", "compensation_step_id": "undo-research"},
                {"id": "review", "name": "Review", "step_type": "STEP_TYPE_HUMAN_TASK"},
                {"id": "send", "step_type": "STEP_TYPE_AGENT_ACTION",
                 "action_type": "email.send", "compensation_step_id": "undo-send"},
                {"id": "wait", "step_type": "STEP_TYPE_WAIT_FOR_EVENT",
                 "event_type_pattern": "mail.*", **wait},
                {"id": "undo-research", "step_type": "STEP_TYPE_NOTIFICATION",
                 "notification_template": "research-undone"},
                {"id": "undo-send", "step_type": "STEP_TYPE_NOTIFICATION",
                 "notification_template": "send-undone"},
            ],
            "edges": [
                {"from_step_id": "fan", "to_step_id": "research"},
                {"from_step_id": "fan", "to_step_id": "review"},
                {"from_step_id": "research", "to_step_id": "send"},
                {"from_step_id": "review", "to_step_id": "send"},
                {"from_step_id": "send", "to_step_id": "wait"},
            ],
        }
    )  # fmt: skip


def test_parallel_branches_meet_and_a_human_task_passes_its_answer_on(driver: Driver) -> None:
    spec = import_workflows_v1(fan_out_version(), "fan_out.json")
    run_id = driver.start(spec, {})
    run = rendered(driver, run_id)
    assert [(s["step_id"], s["step_type"]) for s in run["steps"]] == [
        ("fan", "STEP_TYPE_PARALLEL"),
        ("research", "STEP_TYPE_AGENT_ACTION"),
        ("review", "STEP_TYPE_HUMAN_TASK"),
        ("send", "STEP_TYPE_AGENT_ACTION"),
        ("wait", "STEP_TYPE_WAIT_FOR_EVENT"),
    ]  # compensation steps appear once they have run
    assert step_states(run) == {
        "fan": "COMPLETED", "research": "COMPLETED", "review": "WAITING",
        "send": "PENDING", "wait": "PENDING",
    }  # fmt: skip
    review = next(s for s in run["steps"] if s["step_id"] == "review")
    assert review["approval_request_id"].startswith("iq_")

    driver.answer(run_id, {"sequence": "enterprise-outbound"})
    run = rendered(driver, run_id)
    assert step_states(run)["send"] == "COMPLETED"
    assert step_states(run)["wait"] == "WAITING"
    send = next(s for s in run["steps"] if s["step_id"] == "send")
    # the payload a joined step receives is what the branch that finished last passed on:
    # here the HUMAN_TASK's answer
    assert send["input_payload"] == {"sequence": "enterprise-outbound"}


def test_compensation_steps_run_in_reverse_topological_order(driver: Driver) -> None:
    spec = import_workflows_v1(fan_out_version(), "fan_out.json")
    run_id = driver.start(spec, {})
    driver.answer(run_id, {"sequence": "s"})
    apply_control(driver.runner.runs, run_id, Control.COMPENSATE)
    run = rendered(driver, run_id)
    assert run["state"] == "WORKFLOW_STATE_COMPENSATING"
    driver.follow(run_id)

    run = rendered(driver, run_id)
    assert step_states(run) == {
        "fan": "COMPLETED", "research": "COMPENSATED", "review": "COMPLETED",
        "send": "COMPENSATED", "wait": "CANCELLED",
        "undo-research": "COMPLETED", "undo-send": "COMPLETED",
    }  # fmt: skip
    events = v1_lifecycle_events(driver.stored(run_id))
    steps = [(e["operation"], e["step"]["step_id"]) for e in events if "step" in e]
    undone = [step_id for operation, step_id in steps if operation == "compensated"]
    assert undone == ["send", "research"]  # the later step first
    started = [step_id for operation, step_id in steps if operation == "started"]
    assert started[-2:] == ["undo-send", "undo-research"]
    assert all(
        e["workflow_state"] == "WORKFLOW_STATE_COMPENSATING"
        for e in events
        if "step" in e and e["step"]["step_id"].startswith("undo-")
    )


def test_a_step_past_its_timeout_fails_and_the_run_with_it(
    make_driver: Callable[..., Driver], catalog: Catalog
) -> None:
    now = [datetime(2026, 4, 13, 14, 30, tzinfo=UTC)]
    driver = make_driver(catalog, clock=lambda: now[0])
    text = fan_out_version(timeout_seconds=3600, config={"timeout_action": "follow_up"})
    spec, issues = read_workflows_v1(text, "fan_out.json")
    assert spec is not None
    assert [(i.severity.value, i.message) for i in issues] == [
        (
            "warning",
            "steps[4].config.timeout_action: 'timeout_action' 'follow_up' is not supported: "
            "when 'timeout_seconds' passes the step ends timed out (STEP_RUN_STATE_FAILED) "
            "and the run fails",
        )
    ]
    run_id = driver.start(spec, {})
    driver.answer(run_id, {"sequence": "s"})
    now[0] += timedelta(seconds=3601)
    driver.follow(run_id)
    run = rendered(driver, run_id)
    assert run["state"] == "WORKFLOW_STATE_FAILED"
    assert step_states(run)["wait"] == "FAILED"
    assert "task 'wait' timed out" in run["error"]["message"]


def test_a_branch_can_route_on_the_edge_an_earlier_branch_selected(driver: Driver) -> None:
    """The second BRANCH's value is named ``selected_edge``, like its own selection."""
    research = {"step_type": "STEP_TYPE_AGENT_ACTION", "action_type": "company.research"}
    text = json.dumps(
        {
            "definition_id": "wf_two_branches",
            "steps": [
                {"id": "research", **research},
                {"id": "first", "step_type": "STEP_TYPE_BRANCH",
                 "condition_expr": "research.output.icp_score"},
                {"id": "second", "step_type": "STEP_TYPE_BRANCH",
                 "condition_expr": "first.output.selected_edge"},
                {"id": "go", **research},
                {"id": "stop", **research},
            ],
            "edges": [
                {"from_step_id": "research", "to_step_id": "first"},
                {"from_step_id": "first", "to_step_id": "second", "label": "good",
                 "condition_expr": "icp_score > 0.5"},
                {"from_step_id": "second", "to_step_id": "go", "label": "go",
                 "condition_expr": "selected_edge == 'good'"},
                {"from_step_id": "second", "to_step_id": "stop", "label": "stop"},
            ],
        }
    )  # fmt: skip
    run_id = driver.start(import_workflows_v1(text, "branches.json"), {})
    run = rendered(driver, run_id)
    assert run["state"] == "WORKFLOW_STATE_COMPLETED"
    outputs = {s["step_id"]: s.get("output_payload") for s in run["steps"]}
    assert outputs["first"] == {"selected_edge": "good", "icp_score": 0.87}
    assert outputs["second"] == {"selected_edge": "go"}  # the first edge whose condition holds
    assert step_states(run) == {
        "research": "COMPLETED", "first": "COMPLETED", "second": "COMPLETED",
        "go": "COMPLETED", "stop": "SKIPPED",
    }  # fmt: skip
