"""Triggers and lifecycle events of imported workflows/v1 definitions.

* the SDR pipeline's webhook trigger starts a run from a ``hubspot.contact.created`` event
  (and its filter keeps non-leads out); the run's lifecycle events carry the fields of
  ``run_lifecycle_event_started.json`` and ``step_lifecycle_event_waiting.json``;
* the event-trigger example (``handle_trigger_request.json`` / ``_response.json``): one
  event starts the runs whose trigger matches and completes a WAIT_FOR_EVENT step waiting
  on the same event type.

Events are sent through the events API (``EventRouter``, what ``treadle events send`` and
``Client.send_event`` use).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from treadle.common.dialects import V1Options, import_workflows_v1
from treadle.common.spec import WorkflowSpec
from treadle.scheduler.service.events import EventOutcome, EventRouter
from treadle.scheduler.service.renderings import v1_lifecycle_events, v1_run

from .conftest import Driver, follow_up_version, intake_version, read_json

SDR_EVENT = "evt_tap_hubspot_contact_created_acme"


def publish(driver: Driver, *specs: WorkflowSpec) -> None:
    for spec in specs:
        driver.runner.definitions.publish(spec, at=driver.runner.clock())


def send(driver: Driver, event_type: str, **fields: Any) -> EventOutcome:
    outcome = EventRouter(driver.runner.starter).send(event_type, **fields)
    driver.follow(*outcome.started_runs, *outcome.updated_runs)
    return outcome


@pytest.fixture
def sdr(v1_dir: Path) -> WorkflowSpec:
    path = v1_dir / "publish_version_response.json"
    return import_workflows_v1(path.read_text(encoding="utf-8"), str(path))


@pytest.fixture
def triggered_sdr(driver: Driver, sdr: WorkflowSpec, v1_dir: Path) -> str:
    """The SDR run the recorded webhook event starts (it waits at the approval gate)."""
    publish(driver, sdr)
    recorded = read_json(v1_dir / "get_run_response.json")["run"]
    outcome = send(
        driver, "hubspot.contact.created", data=recorded["input_payload"], event_id=SDR_EVENT
    )
    [run_id] = outcome.started_runs
    return run_id


def test_the_webhook_trigger_starts_a_run_for_leads_only(
    driver: Driver, triggered_sdr: str, v1_dir: Path
) -> None:
    recorded = read_json(v1_dir / "get_run_response.json")["run"]
    run = v1_run(driver.stored(triggered_sdr))["run"]
    for key in ("trigger_event_id", "trigger_type", "input_payload", "entity_type", "state"):
        assert run[key] == recorded[key], key
    customer = {**recorded["input_payload"], "snapshot": {"lifecycle_stage": "customer"}}
    assert send(driver, "hubspot.contact.created", data=customer).started_runs == []
    again = send(
        driver, "hubspot.contact.created", data=recorded["input_payload"], event_id=SDR_EVENT
    )
    assert (again.duplicate, again.started_runs) == (True, [])


def test_lifecycle_events_carry_the_fields_of_the_recorded_events(
    driver: Driver, triggered_sdr: str, v1_dir: Path
) -> None:
    events = v1_lifecycle_events(driver.stored(triggered_sdr))
    started_fixture = read_json(v1_dir / "run_lifecycle_event_started.json")
    waiting_fixture = read_json(v1_dir / "step_lifecycle_event_waiting.json")

    started = next(e for e in events if e["operation"] == "started" and "run" in e)
    assert set(started_fixture) <= set(started)
    assert set(started_fixture["run"]) <= set(started["run"])
    first_fixture, *_ = started_fixture["run"]["steps"]
    first = started["run"]["steps"][0]
    assert set(first_fixture) <= set(first)
    assert (first["step_id"], first["state"]) == ("research-company", "STEP_RUN_STATE_RUNNING")
    assert (
        first["input_payload"]
        == read_json(v1_dir / "get_run_response.json")["run"]["input_payload"]
    )
    assert {s["state"] for s in started["run"]["steps"][1:]} == {"STEP_RUN_STATE_PENDING"}
    for key in ("definition_id", "trigger_event_id", "trigger_type", "entity_type", "workspace_id"):
        assert started["run"][key] == started_fixture["run"][key], key

    waiting = next(e for e in events if e["operation"] == "waiting")
    assert set(waiting_fixture) <= set(waiting)
    assert set(waiting_fixture["step"]) <= set(waiting["step"])
    for key in ("definition_id", "workflow_state", "trigger_type", "trigger_event_id", "operation"):
        assert waiting[key] == waiting_fixture[key], key
    step = waiting["step"]
    assert (step["step_id"], step["step_type"], step["state"]) == (
        "approve-high-value",
        "STEP_TYPE_APPROVAL_GATE",
        "STEP_RUN_STATE_WAITING",
    )
    assert waiting_fixture["step"]["input_payload"].items() <= step["input_payload"].items()
    assert waiting["workflow_total_cost_usd"] == pytest.approx(
        waiting_fixture["workflow_total_cost_usd"]
    )


def test_lifecycle_events_follow_the_run_in_order(driver: Driver, triggered_sdr: str) -> None:
    events = v1_lifecycle_events(driver.stored(triggered_sdr))
    seen = [(e["operation"], e["step"]["step_id"] if "step" in e else None) for e in events]
    assert seen == [
        ("started", None),
        ("started", "research-company"), ("completed", "research-company"),
        ("started", "qualify-lead"), ("completed", "qualify-lead"),
        ("started", "check-governance"), ("completed", "check-governance"),
        ("started", "route-by-value"), ("completed", "route-by-value"),
        ("waiting", "approve-high-value"),
    ]  # fmt: skip
    times = [e["recorded_at"] for e in events]
    assert times == sorted(times)


# -- the event-trigger example -------------------------------------------------------------------


def test_an_event_starts_triggered_runs_and_completes_a_waiting_step(
    driver: Driver, v1_dir: Path
) -> None:
    request = read_json(v1_dir / "handle_trigger_request.json")
    response = read_json(v1_dir / "handle_trigger_response.json")
    intake = import_workflows_v1(
        intake_version(),
        "intake.json",
        V1Options(
            actions={"contact.research": "company.research"}, parameters=["contact_id", "company"]
        ),
    )
    follow_up = import_workflows_v1(follow_up_version(), "follow_up.json")
    publish(driver, intake, follow_up)
    tap = send(
        driver,
        "hubspot.contact.created",
        data={"provider": "hubspot", "entity_type": "contact", "entity_id": "contact_123"},
        event_id="evt_tap_hubspot_contact_created_001",
    )
    [waiting_run] = tap.started_runs
    assert (
        v1_run(driver.stored(waiting_run))["run"]["steps"][0]["state"] == "STEP_RUN_STATE_WAITING"
    )

    outcome = send(
        driver,
        request["event_type"],
        subject=request["event_subject"],
        data=request["input_payload"],
        event_id=request["trigger_event_id"],
    )
    [started] = outcome.started_runs
    assert outcome.updated_runs == [waiting_run]

    [expected_started] = response["started_runs"]
    run = v1_run(driver.stored(started))["run"]
    for key in ("definition_id", "trigger_event_id", "trigger_type", "input_payload"):
        assert run[key] == expected_started[key], key
    assert [(s["step_id"], s["step_type"], s["agent_id"]) for s in run["steps"]] == [
        (s["step_id"], s["step_type"], s["agent_id"]) for s in expected_started["steps"]
    ]

    [expected_updated] = response["updated_runs"]
    updated = v1_run(driver.stored(waiting_run))["run"]
    for key in ("definition_id", "trigger_event_id", "trigger_type", "entity_id", "entity_type"):
        assert updated[key] == expected_updated[key], key
    wait, follow = updated["steps"]
    expected_wait, expected_follow = expected_updated["steps"]
    assert (wait["step_id"], wait["state"], wait["event_id"]) == (
        expected_wait["step_id"],
        expected_wait["state"],
        expected_wait["event_id"],
    )
    assert expected_wait["output_payload"].items() <= wait["output_payload"].items()
    assert (follow["step_id"], follow["agent_id"]) == (expected_follow["step_id"], "agent_outreach")
    assert expected_follow["input_payload"].items() <= follow["input_payload"].items()
    assert follow["state"] == "STEP_RUN_STATE_COMPLETED"

    again = send(
        driver,
        request["event_type"],
        subject=request["event_subject"],
        data=request["input_payload"],
        event_id=request["trigger_event_id"],
    )
    assert (again.duplicate, again.started_runs, again.updated_runs) == (True, [], [])
