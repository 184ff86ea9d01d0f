"""The SDR pipeline (``publish_version_response.json``) run embedded with stub agents.

The conformance case: with ``qualify-lead`` returning ``deal_value_usd: 85000`` the run
stops WAITING at ``approve-high-value`` with the step ids, types and states of
``get_run_response.json``; after approval it goes through ``send-outreach`` and
``notify-team`` and waits on ``wait-for-reply``. The other paths of the same definition
(a rejected approval, the standard route, governance requiring approval or denying, a
compensation) are checked on the same import.

The governance policy and the notifications are the core pack's ``core.risk_policy`` and
``core.notify``; the reply event is sent through the events API
(:class:`~treadle.scheduler.service.events.EventRouter`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from treadle.common.dialects import import_workflows_v1
from treadle.common.spec import WorkflowSpec
from treadle.scheduler.service.controls import Control, apply_control
from treadle.scheduler.service.renderings import v1_run

from .conftest import Driver, read_json

PUBLISHED = "publish_version_response.json"
REPLY = "siphon.tap.gmail.message.received"


def import_sdr(v1_dir: Path, **step_changes: dict[str, Any]) -> WorkflowSpec:
    """The SDR version, with fields of some steps changed (by step id)."""
    document = read_json(v1_dir / PUBLISHED)
    for step in document["version"]["steps"]:
        step.update(step_changes.get(step["id"].replace("-", "_"), {}))
    return import_workflows_v1(json.dumps(document), str(v1_dir / PUBLISHED))


@pytest.fixture
def sdr(v1_dir: Path) -> WorkflowSpec:
    return import_sdr(v1_dir)


@pytest.fixture
def recorded(v1_dir: Path) -> dict[str, Any]:
    run: dict[str, Any] = read_json(v1_dir / "get_run_response.json")["run"]
    return run


def rendered(driver: Driver, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = v1_run(driver.stored(run_id))["run"]
    return run


def states(run: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (s["step_id"], s["step_type"], s["state"].removeprefix("STEP_RUN_STATE_"))
        for s in run["steps"]
    ]


def step(run: dict[str, Any], step_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in run["steps"] if s["step_id"] == step_id)
    return found


def lead(deal_value: int | None = None) -> dict[str, Any]:
    snapshot: dict[str, Any] = {"email": "jane.doe@acme.com", "company": "Acme Corporation",
                                "lifecycle_stage": "lead"}  # fmt: skip
    if deal_value is not None:
        snapshot["deal_value_usd"] = deal_value
    return {"provider": "hubspot", "entity_type": "contact", "entity_id": "hs_1",
            "action": "created", "snapshot": snapshot}  # fmt: skip


def send_event(driver: Driver, event_type: str, **fields: Any) -> Any:
    from treadle.scheduler.service.events import EventRouter

    outcome = EventRouter(driver.runner.starter).send(event_type, **fields)
    driver.follow(*outcome.started_runs, *outcome.updated_runs)
    return outcome


def test_the_run_waits_at_the_approval_gate_as_the_recorded_run_does(
    driver: Driver, sdr: WorkflowSpec, recorded: dict[str, Any]
) -> None:
    run_id = driver.start(sdr, recorded["input_payload"])
    run = rendered(driver, run_id)
    assert run["state"] == recorded["state"] == "WORKFLOW_STATE_RUNNING"
    assert states(run) == [
        (s["step_id"], s["step_type"], s["state"].removeprefix("STEP_RUN_STATE_"))
        for s in recorded["steps"]
    ]
    assert run["input_payload"] == recorded["input_payload"]
    assert run["definition_id"] == recorded["definition_id"]
    assert run["workspace_id"] == recorded["workspace_id"]
    assert run["entity_type"] == "ENTITY_TYPE_CONTACT"
    assert step(run, "qualify-lead")["output_payload"]["deal_value_usd"] == 85000
    for step_id in ("route-by-value", "check-governance"):
        mine, theirs = step(run, step_id), step(recorded, step_id)
        for key in ("output_payload", "governance_decision"):
            assert mine.get(key) == theirs.get(key), (step_id, key)
    gate = step(run, "approve-high-value")
    with driver.runner.store.unit_of_work() as uow:
        [pending] = uow.list_inquiries(run_id=run_id)
    assert gate["approval_request_id"] == pending.id
    assert gate["input_payload"]["deal_value_usd"] == 85000
    assert pending.prompt["risk_level"] == "RISK_LEVEL_HIGH"
    assert run["total_cost_usd"] == pytest.approx(0.055)
    assert step(run, "research-company")["cost_usd"] == pytest.approx(0.034)


def test_after_approval_it_sends_notifies_and_waits_for_the_reply(
    driver: Driver, sdr: WorkflowSpec, recorded: dict[str, Any]
) -> None:
    run_id = driver.start(sdr, recorded["input_payload"])
    driver.answer(run_id, {"approved": True, "comment": "go"})
    run = rendered(driver, run_id)
    assert run["state"] == "WORKFLOW_STATE_RUNNING"
    assert [state for _, _, state in states(run)] == [
        "COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED",
        "COMPLETED", "COMPLETED", "WAITING",
    ]  # fmt: skip
    assert step(run, "approve-high-value")["output_payload"] == {"approved": True, "comment": "go"}
    assert step(run, "send-outreach")["output_payload"]["sent"] is True
    assert step(run, "notify-team")["output_payload"] == {"delivered": True, "channel": "log"}
    # the reply arrives: the wait completes with the event, and the run with it
    send_event(
        driver, REPLY, subject=REPLY, data={"from": "jane.doe@acme.com"}, event_id="ev-reply"
    )
    run = rendered(driver, run_id)
    reply = step(run, "wait-for-reply")
    assert (reply["state"], reply["event_id"], reply["output_payload"]) == (
        "STEP_RUN_STATE_COMPLETED",
        "ev-reply",
        {"from": "jane.doe@acme.com"},
    )
    assert run["state"] == "WORKFLOW_STATE_COMPLETED"
    assert driver.runner.state_of(run_id).output == {"payload": {"from": "jane.doe@acme.com"}}


def test_a_rejected_approval_fails_the_run_at_the_gate(
    driver: Driver, sdr: WorkflowSpec, recorded: dict[str, Any]
) -> None:
    run_id = driver.start(sdr, recorded["input_payload"])
    driver.answer(run_id, {"approved": False})
    run = rendered(driver, run_id)
    assert run["state"] == "WORKFLOW_STATE_FAILED"
    assert step(run, "approve-high-value")["state"] == "STEP_RUN_STATE_FAILED"
    assert step(run, "send-outreach")["state"] == "STEP_RUN_STATE_SKIPPED"
    assert "approval 'approve-high-value' was rejected" in run["error"]["message"]


def test_a_small_deal_takes_the_standard_route_without_approval(
    driver: Driver, sdr: WorkflowSpec
) -> None:
    run_id = driver.start(sdr, lead(deal_value=20000))
    run = rendered(driver, run_id)
    assert step(run, "route-by-value")["output_payload"] == {
        "selected_edge": "standard",
        "deal_value_usd": 20000,
    }
    assert step(run, "approve-high-value")["state"] == "STEP_RUN_STATE_PENDING"
    assert step(run, "wait-for-reply")["state"] == "STEP_RUN_STATE_WAITING"


def test_a_high_risk_governance_check_asks_for_approval_first(driver: Driver, v1_dir: Path) -> None:
    spec = import_sdr(v1_dir, check_governance={"risk_level": "RISK_LEVEL_HIGH"})
    run_id = driver.start(spec, lead(deal_value=1000))
    run = rendered(driver, run_id)
    governance = step(run, "check-governance")
    assert governance["state"] == "STEP_RUN_STATE_WAITING"
    assert governance["governance_decision"] == "ACTION_DECISION_REQUIRE_APPROVAL"
    assert governance["approval_request_id"].startswith("iq_")
    assert step(run, "route-by-value")["state"] == "STEP_RUN_STATE_PENDING"
    driver.answer(run_id, {"approved": True}, task="check-governance:approval")
    run = rendered(driver, run_id)
    assert step(run, "check-governance")["state"] == "STEP_RUN_STATE_COMPLETED"
    assert step(run, "wait-for-reply")["state"] == "STEP_RUN_STATE_WAITING"


def test_a_critical_governance_check_denies_and_fails_the_run(driver: Driver, v1_dir: Path) -> None:
    spec = import_sdr(v1_dir, check_governance={"risk_level": "RISK_LEVEL_CRITICAL"})
    run_id = driver.start(spec, lead())
    run = rendered(driver, run_id)
    governance = step(run, "check-governance")
    assert governance["state"] == "STEP_RUN_STATE_FAILED"
    assert governance["governance_decision"] == "ACTION_DECISION_DENY"
    assert run["state"] == "WORKFLOW_STATE_FAILED"


def test_compensating_runs_the_compensation_step_for_the_sent_outreach(
    driver: Driver, sdr: WorkflowSpec
) -> None:
    run_id = driver.start(sdr, lead(deal_value=100))
    assert step(rendered(driver, run_id), "wait-for-reply")["state"] == "STEP_RUN_STATE_WAITING"
    apply_control(driver.runner.runs, run_id, Control.COMPENSATE)
    driver.follow(run_id)
    run = rendered(driver, run_id)
    assert driver.status(run_id) == "compensated"
    assert run["state"] == "WORKFLOW_STATE_CANCELLED"
    assert step(run, "send-outreach")["state"] == "STEP_RUN_STATE_COMPENSATED"
    undo = step(run, "notify-outreach-failed")
    assert (undo["step_type"], undo["state"]) == (
        "STEP_TYPE_NOTIFICATION",
        "STEP_RUN_STATE_COMPLETED",
    )
    assert step(run, "research-company")["state"] == "STEP_RUN_STATE_COMPLETED"  # no compensation
