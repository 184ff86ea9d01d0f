"""Lifecycle events are written with the decision that made them, as CloudEvents whose data
is the workflows/v1 payload: the fields of the conformance fixtures, the run as it was at
that moment (the same as replaying the stored run gives), nothing when the setting is off.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.dialects.conftest import read_json

from treadle.common.trace_ids import trace_id_of
from treadle.scheduler.service.control_rules import Control
from treadle.scheduler.service.controls import apply_control, apply_control_in
from treadle.scheduler.service.renderings import load_stored_run, v1_lifecycle_events

from .conftest import SDR_EVENT, run_chain, sdr_run, stored_events, types_of


def test_the_sdr_runs_events_carry_the_fixtures_fields(make_runner, v1_dir: Path) -> None:
    runner = make_runner()
    run_id = sdr_run(runner, v1_dir)
    events = stored_events(runner.store, run_id)
    started_fixture = read_json(v1_dir / "run_lifecycle_event_started.json")
    waiting_fixture = read_json(v1_dir / "step_lifecycle_event_waiting.json")
    recorded = read_json(v1_dir / "get_run_response.json")["run"]

    [start] = [e for e in events if e.type == "workflows.changes.run.start"]
    data = start.cloudevent["data"]
    assert set(data) == set(started_fixture)
    assert set(started_fixture["run"]) <= set(data["run"])
    for key in ("definition_id", "workspace_id", "state", "trigger_event_id", "trigger_type"):
        assert data["run"][key] == started_fixture["run"][key], key
    assert data["run"]["entity_type"] == started_fixture["run"]["entity_type"]
    assert data["run"]["input_payload"] == recorded["input_payload"]
    assert data["run"]["total_cost_usd"] == started_fixture["run"]["total_cost_usd"]
    assert data["operation"] == "started"
    first, second, *_ = data["run"]["steps"]
    first_fixture, second_fixture = started_fixture["run"]["steps"]
    assert set(first_fixture) <= set(first)
    for mine, theirs in ((first, first_fixture), (second, second_fixture)):
        for key in ("step_id", "step_name", "step_type", "state"):
            assert mine[key] == theirs[key], key
    assert first["input_payload"] == recorded["input_payload"]
    assert first["objective_id"] == f"{run_id}/1/0/1"  # the attempt it was dispatched as

    [wait] = [e for e in events if e.type == "workflows.changes.step.wait"]
    data = wait.cloudevent["data"]
    assert set(waiting_fixture) <= set(data)
    assert set(waiting_fixture["step"]) <= set(data["step"])
    for key in ("definition_id", "workspace_id", "workflow_state", "trigger_type"):
        assert data[key] == waiting_fixture[key], key
    assert (data["trigger_event_id"], data["operation"]) == (SDR_EVENT, "waiting")
    for key in ("step_id", "step_name", "step_type", "state"):
        assert data["step"][key] == waiting_fixture["step"][key], key
    assert waiting_fixture["step"]["input_payload"].items() <= data["step"]["input_payload"].items()
    assert data["workflow_total_cost_usd"] == pytest.approx(
        waiting_fixture["workflow_total_cost_usd"]
    )


def test_each_event_shows_the_run_as_replaying_it_does(make_runner, v1_dir: Path) -> None:
    runner = make_runner()
    run_id = sdr_run(runner, v1_dir)
    written = [e.cloudevent["data"] for e in stored_events(runner.store, run_id)]
    replayed = v1_lifecycle_events(load_stored_run(runner.store, run_id, runner.definitions))
    assert written == replayed
    assert types_of(stored_events(runner.store, run_id)) == [
        "run.start",
        "step.start", "step.complete",  # research-company
        "step.start", "step.complete",  # qualify-lead
        "step.start", "step.complete",  # check-governance
        "step.start", "step.complete",  # route-by-value
        "step.wait",  # approve-high-value
    ]  # fmt: skip


def test_an_event_is_a_cloudevent_with_a_stable_id(make_runner) -> None:
    runner = make_runner()
    run_id = run_chain(runner)
    events = stored_events(runner.store, run_id)
    assert types_of(events) == [
        "run.start",
        "step.start",
        "step.complete",
        "step.start",
        "step.complete",
        "run.complete",
    ]
    ids = [e.cloudevent["id"] for e in events]
    assert len(set(ids)) == len(ids)
    for entry in events:
        event = entry.cloudevent
        assert re.fullmatch(rf"{re.escape(run_id)}/\d+/\d+", event["id"])
        assert event["id"] == entry.event_id
        assert {k: v for k, v in event.items() if k not in ("id", "type", "time", "data")} == {
            "specversion": "1.0",
            "source": f"treadle/default/runs/{run_id}",
            "subject": run_id,
            "datacontenttype": "application/json",
            "traceid": trace_id_of(run_id),
        }
        assert event["time"] == event["data"]["recorded_at"]
        assert entry.published_at is None  # nobody published them yet
    last = events[-1].cloudevent["data"]["run"]
    assert last["state"] == "WORKFLOW_STATE_COMPLETED"
    assert [s["state"] for s in last["steps"]] == ["STEP_RUN_STATE_COMPLETED"] * 2


def test_controls_write_their_events_in_their_own_transaction(make_runner, v1_dir: Path) -> None:
    runner = make_runner()
    run_id = sdr_run(runner, v1_dir)
    before = len(stored_events(runner.store, run_id))

    def pause_then_fail() -> None:
        with runner.store.unit_of_work() as uow:
            apply_control_in(uow, runner.runs, run_id, Control.PAUSE)
            assert len(uow.list_lifecycle_events(run_id=run_id, limit=1000)) == before + 1
            raise RuntimeError("the decision's transaction rolls back")

    with pytest.raises(RuntimeError):
        pause_then_fail()
    assert len(stored_events(runner.store, run_id)) == before  # its event went with it

    for control in (Control.PAUSE, Control.RESUME, Control.CANCEL):
        apply_control(runner.runs, run_id, control)
    added = stored_events(runner.store, run_id)[before:]
    assert types_of(added) == ["run.pause", "run.resume", "step.cancel", "run.cancel"]
    states = [e.cloudevent["data"].get("run", {}).get("state") for e in added]
    assert states[:2] == ["WORKFLOW_STATE_PAUSED", "WORKFLOW_STATE_RUNNING"]
    assert added[-1].cloudevent["data"]["run"]["state"] == "WORKFLOW_STATE_CANCELLED"


def test_with_the_setting_off_nothing_is_written(make_runner) -> None:
    runner = make_runner(lifecycle_events=False)
    assert runner.runs.lifecycle is None
    run_chain(runner)
    assert stored_events(runner.store) == []
