"""Budgets and escalation through the services, on real runs (SQLite, in-process workers).

An embedded runner runs a small pack whose action reports what it cost. Covered: a run
its cost budget stopped is paused with the reason in the run document and in "why"; a
resume that does not raise the limit, or raises it above the workspace's ceiling, is
refused and changes nothing; a resume with a higher limit continues where it stopped and
re-runs nothing; the metrics count the stop and the cost. The soft question is a run-level
inquiry (no task) answered like any other, checked against its schema. An escalation is
an inquiry whose answer (who answered it included) is in the audit log and the event log;
its notify attempt runs without disturbing the task. A schedule whose run its budget
stopped records its next fires as skipped by the budget.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from treadle.clientlib.audit import database_principal
from treadle.clientlib.changes import answer
from treadle.common.budget import Budget
from treadle.common.catalog import Catalog
from treadle.common.errors import ParameterError
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.metrics import Metrics
from treadle.common.metrics_catalog import MetricSource
from treadle.common.settings import Settings
from treadle.common.statuses import InquiryPurpose, InquiryStatus, RunStatus
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.core.events import InquiryAnswered
from treadle.scheduler.service import schedules
from treadle.scheduler.service.controls import Control, ControlRefused, apply_control
from treadle.scheduler.service.run_document import stored_run_document
from treadle.scheduler.service.run_metrics import RunMetrics
from treadle.scheduler.service.schedule_firing import ScheduleFiring

PACKS = Path(__file__).resolve().parents[2] / "packs"

PACK = {
    "pack.yaml": """
        ref: spend
        version: "1.0.0"
        description: An action that reports what it cost, one that fails.
    """,
    "actions/cost.yaml": """
        name: cost
        description: 'Returns {"cost_usd": usd}.'
        runner_type: python
        entry_point: actions.py:cost
        parameters:
          usd: {type: number, required: true}
    """,
    "actions/broken.yaml": """
        name: broken
        description: Always fails.
        runner_type: python
        entry_point: actions.py:broken
    """,
    "actions/actions.py": """
        def cost(usd):
            return {"cost_usd": usd}


        def broken():
            raise RuntimeError("the service is down")
    """,
}

THREE_STEPS = """
ref: spend.three
budget: {cost_usd: 1}
tasks:
  - name: a
    action: spend.cost
    input: {usd: 0.6}
    next: [{do: [b]}]
  - name: b
    action: spend.cost
    input: {usd: 0.6}
    next: [{do: [c]}]
  - name: c
    action: spend.cost
    input: {usd: 0.6}
"""

SOFT = """
ref: spend.soft
budget: {cost_usd: 10, soft_ratio: 0.5}
tasks:
  - name: a
    action: spend.cost
    input: {usd: 6}
    next: [{do: [b]}]
  - name: b
    action: spend.cost
    input: {usd: 1}
"""

ESCALATED = """
ref: spend.escalated
tasks:
  - name: call
    action: spend.broken
    escalate:
      notify: {channel: log}
      ask: {prompt: "call failed: retry, skip or fail?", assigned_to: ops}
    next: [{do: [after]}]
  - name: after
    action: core.echo
    input: {message: "{{ task.call.result.value }}"}
"""


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    root = tmp_path_factory.mktemp("packs") / "spend"
    for name, text in PACK.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return load_packs([PACKS, root.parent])


class World:
    def __init__(self, url: str, catalog: Catalog) -> None:
        ceilings = '{"all": {"cost_usd": 20}}'
        self.runner = EmbeddedRunner(Settings(database_url=url, budget_limits=ceilings), catalog)
        self.metrics = Metrics([MetricSource.SCHEDULER, MetricSource.RUNS])
        self.runner.runs.observers.append(RunMetrics(self.metrics, self.runner.definitions))

    def run(self, text: str) -> str:
        spec = load_workflow_text(textwrap.dedent(text), "wf.yaml")
        run_id = self.runner.start(spec, {})
        self.runner.follow(run_id)
        return run_id

    def document(self, run_id: str) -> dict[str, Any]:
        with self.runner.store.snapshot() as uow:
            return stored_run_document(uow, run_id)

    def value(self, metric: str, /, **labels: str) -> float:
        found = self.metrics.registry.get_sample_value(metric, labels)
        return 0.0 if found is None else found


@pytest.fixture
def world(tmp_path: Path, catalog: Catalog) -> Iterator[World]:
    made = World(f"sqlite:///{tmp_path / 'budgets.db'}", catalog)
    try:
        yield made
    finally:
        made.runner.close()


def test_a_cost_stop_resumes_with_a_higher_limit_and_reruns_nothing(world: World) -> None:
    run_id = world.run(THREE_STEPS)
    document = world.document(run_id)
    assert document["status"] == "paused"
    assert document["budget"]["stopped"] == {
        "kind": "cost_usd",
        "soft": False,
        "message": "spent 1.20 USD of the 1.00 USD cost budget",
        "inquiry": None,
    }
    assert document["budget"]["spent"] == {"cost_usd": 1.2, "attempts": 2, "items": 0}
    first = document["why"][0]
    assert first["reason"] == "budget"
    assert "treadle runs resume" in first["message"]
    assert "--budget cost_usd=" in first["message"]

    runs = world.runner.runs
    with pytest.raises(ControlRefused, match=r"stopped on its cost_usd budget .*--budget"):
        apply_control(runs, run_id, Control.RESUME)
    with pytest.raises(ControlRefused, match="stopped on its cost_usd budget"):
        apply_control(runs, run_id, Control.RESUME, budget=Budget(cost_usd=1.2))
    with pytest.raises(ParameterError, match=r"above this workspace's limit of 20\.00 USD"):
        apply_control(runs, run_id, Control.RESUME, budget=Budget(cost_usd=50))
    assert world.document(run_id)["status"] == "paused"  # nothing changed

    apply_control(runs, run_id, Control.RESUME, budget=Budget(cost_usd=5), by="cli:ada")
    world.runner.follow(run_id)
    document = world.document(run_id)
    assert document["status"] == "succeeded"
    assert [(t["name"], t["attempts"]) for t in document["tasks"]] == [
        ("a", 1),
        ("b", 1),
        ("c", 1),
    ]
    assert document["budget"]["limits"] == {"cost_usd": 5.0}
    assert document["budget"]["spent"]["cost_usd"] == pytest.approx(1.8)
    assert document["budget"]["stopped"] is None

    assert world.value("treadle_budget_stops_total", kind="cost_usd") == 1
    assert world.value("treadle_cost_usd_total", workflow="spend.three") == pytest.approx(1.8)
    assert world.value("treadle_step_cost_usd_count", action="spend.cost") == 3


def test_the_soft_question_is_a_run_level_inquiry_checked_against_its_schema(
    world: World,
) -> None:
    run_id = world.run(SOFT)
    document = world.document(run_id)
    assert document["status"] == "paused"
    [inquiry] = document["inquiries"]
    assert inquiry["task"] is None
    assert inquiry["purpose"] == "budget"
    assert inquiry["prompt"] == "60% of the cost budget used (6.00 of 10.00 USD): continue?"
    assert document["why"][0]["reason"] == "budget"

    auditor = world.runner.auditor(database_principal({"login": "ada"}))
    with pytest.raises(ParameterError, match="response: 'continue' is a required property"):
        answer(auditor, world.runner.runs, inquiry["id"], {"go": True}, responder="ada")
    answer(auditor, world.runner.runs, inquiry["id"], {"continue": True}, responder="ada")
    world.runner.follow(run_id)
    assert world.document(run_id)["status"] == "succeeded"
    assert world.value("treadle_budget_stops_total", kind="cost_usd") == 0  # asked, not stopped


def test_an_escalation_waits_for_a_person_and_records_who_decided(world: World) -> None:
    run_id = world.run(ESCALATED)
    document = world.document(run_id)
    assert document["status"] == "running"
    assert document["tasks"][0]["status"] == "waiting"
    [inquiry] = document["inquiries"]
    assert (inquiry["task"], inquiry["purpose"]) == ("call", "escalation")
    assert inquiry["assigned_to"] == "ops"
    assert inquiry["schema"]["required"] == ["decision"]
    why = document["why"][0]["message"]
    assert why.startswith("failed and escalated: waits for inquiry")
    with world.runner.store.unit_of_work() as uow:
        assert uow.open_attempts(run_id, limit=10) == []  # the notification ran and ended
        notified = [a for a in uow.list_attempts(run_id) if a.action_ref == "core.notify"]
    assert [a.status.value for a in notified] == ["succeeded"]

    auditor = world.runner.auditor(database_principal({"login": "ada"}))
    with pytest.raises(ParameterError, match=r"response\['decision'\]"):
        answer(auditor, world.runner.runs, inquiry["id"], {"decision": "maybe"}, responder="ada")
    answered = answer(
        auditor,
        world.runner.runs,
        inquiry["id"],
        {"decision": "skip", "output": {"value": "cached"}},
        responder="ada",
    )
    assert (answered.status, answered.responder) == (InquiryStatus.ANSWERED, "ada")
    world.runner.follow(run_id)
    document = world.document(run_id)
    assert document["status"] == "succeeded"
    assert [(t["name"], t["status"]) for t in document["tasks"]] == [
        ("call", "skipped"),
        ("after", "succeeded"),
    ]
    assert document["tasks"][1]["result"] == {"message": "cached"}
    with world.runner.store.unit_of_work() as uow:
        entries = uow.list_audit(workspace=None, action="inquiry.respond")
        events = [recorded.event for recorded in uow.list_events(run_id)]
    assert [(e.target, e.actor, e.outcome.value) for e in reversed(entries)] == [
        (inquiry["id"], "client:ada", "failed"),  # the answer the schema refused
        (inquiry["id"], "client:ada", "ok"),
    ]
    assert entries[0].details == {"responder": "ada"}
    answers = [e for e in events if isinstance(e, InquiryAnswered)]
    assert [(a.responder, a.response["decision"]) for a in answers] == [("ada", "skip")]


def test_the_inquiry_rows_know_their_purpose(world: World) -> None:
    soft = world.run(SOFT)
    with world.runner.store.unit_of_work() as uow:
        [entry] = uow.list_inquiries(run_id=soft)
        run = uow.load_run(soft)
    assert (entry.task, entry.purpose) == (None, InquiryPurpose.BUDGET)
    assert run.status is RunStatus.PAUSED


FROZEN = """
ref: spend.frozen
budget: {cost_usd: 0}
tasks:
  - name: only
    action: core.noop
"""


def test_fires_while_the_schedules_run_is_stopped_by_its_budget_are_skipped_budget(
    world: World,
) -> None:
    now = [datetime(2026, 6, 1, 12, tzinfo=UTC)]
    runner = world.runner
    runner.definitions.publish(load_workflow_text(textwrap.dedent(FROZEN), "wf.yaml"), at=now[0])
    firing = ScheduleFiring(runner.starter, clock=lambda: now[0])
    given = schedules.ScheduleInput(
        name="frozen", workflow="spend.frozen", interval=timedelta(minutes=1)
    )
    with runner.store.unit_of_work() as uow:
        row = schedules.create(uow, given, workspace="default", created_by="t", now=now[0])
    for _ in range(2):
        now[0] += timedelta(minutes=1)
        firing.fire_due(row.id)
    with runner.store.snapshot() as uow:
        fires = uow.fires(row.id, newest_first=False, limit=10)
    assert [f.status for f in fires] == ["started", "skipped_budget"]
    assert fires[1].reason == (
        f"run {fires[0].run_id} of the schedule is stopped by its cost_usd budget: "
        "spent 0.00 USD of the 0.00 USD cost budget"
    )
