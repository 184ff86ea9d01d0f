"""Rules on a real store: events start them, criteria decide, every match is recorded, a
reloaded pack replaces them, and a timer rule's parameters see the trigger's payload.

An embedded runner (SQLite, the shipped packs) carries the runs; rules come from a pack
written by the test and are stored by ``sync_rules`` as ``treadle scheduler`` stores
them; beat's firing service runs on a fake clock.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from treadle.common.catalog import Catalog
from treadle.common.errors import ConflictError
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.settings import Settings
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.service import rules, schedules
from treadle.scheduler.service.beat import next_due
from treadle.scheduler.service.events import EventRouter
from treadle.scheduler.service.rule_sync import RuleSyncReport, sync_rules
from treadle.scheduler.service.run_document import stored_run_document
from treadle.scheduler.service.schedule_firing import ScheduleFiring
from treadle.scheduler.store.rule_repo import MatchRow, RuleRow

PACKS = Path(__file__).resolve().parents[2] / "packs"
T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)

GREETER = """
ref: ops.greet
parameters:
  who: {type: string, required: true}
tasks:
  - name: hello
    action: core.echo
    input:
      message: "hello {{ parameters.who }}"
output_map:
  said: "{{ task.hello.result.message }}"
"""

TRIGGERED = """
ref: ops.triggered
tasks:
  - name: hello
    action: core.echo
    input: {message: triggered}
trigger:
  type: event
  event_type: deploy.done
"""

RULES = """
---
name: on_deploy
ref: ops.on_deploy
description: greet whoever deployed, for production only
enabled: true
trigger:
  type: deploy.*
  parameters:
    subject: "svc/*"
criteria:
  - "trigger.env == 'production'"
action:
  ref: ops.greet
  parameters:
    who: "{{ trigger.user }} ({{ event.subject }})"
---
# comments only: no rule
---
name: every_minute
ref: ops.tick
trigger:
  type: core.intervaltimer
  parameters: {unit: minutes, interval: 1}
action:
  ref: core.echo
  parameters:
    message: "fired {{ trigger.fired_at }} #{{ trigger.execution_count }}"
"""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class World:
    """A pack ``ops`` with ``rules/ops.yaml``, an embedded runner and beat's firing."""

    def __init__(self, folder: Path, database_url: str) -> None:
        self.folder = folder
        self.clock = Clock()
        self.runner = EmbeddedRunner(Settings(database_url=database_url), load_packs([PACKS]))
        self.store = self.runner.store
        self.firing = ScheduleFiring(self.runner.starter, clock=self.clock)
        self.router = EventRouter(self.runner.starter)
        for text in (GREETER, TRIGGERED):
            spec = load_workflow_text(textwrap.dedent(text), "wf.yaml")
            self.runner.definitions.publish(spec, at=T0)
        with self.store.unit_of_work() as uow:
            uow.register_catalog(self.runner.catalog, T0)
        self.report = self.sync(RULES)

    def sync(self, text: str) -> RuleSyncReport:
        pack = self.folder / "ops"
        (pack / "rules").mkdir(parents=True, exist_ok=True)
        (pack / "pack.yaml").write_text("ref: ops\n")
        (pack / "rules" / "ops.yaml").write_text(textwrap.dedent(text))
        catalog: Catalog = load_packs([pack])
        assert catalog.issues == []
        with self.store.unit_of_work() as uow:
            return sync_rules(uow, catalog.rules, set(catalog.packs), now=self.clock())

    def rule(self, key: str) -> RuleRow:
        with self.store.snapshot() as uow:
            return rules.find(uow, key, workspace="default")

    def matches(self, key: str) -> list[MatchRow]:
        with self.store.snapshot() as uow:
            return list(reversed(uow.rule_matches(self.rule(key).id)))

    def output(self, run_id: str) -> Any:
        self.runner.follow(run_id)
        with self.store.snapshot() as uow:
            return stored_run_document(uow, run_id)["output"]


@pytest.fixture(params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path: Path, migrated_database_url: Callable[[str], str]
) -> Iterator[World]:
    made = World(tmp_path, migrated_database_url(request.param))
    try:
        yield made
    finally:
        made.runner.close()


def test_an_event_starts_the_rules_workflow_and_the_workflow_trigger_still_works(
    world: World,
) -> None:
    data = {"env": "production", "user": "ada"}
    outcome = world.router.send("deploy.done", subject="svc/api", data=data, event_id="ev-1")
    [match] = world.matches("ops.on_deploy")
    assert (match.outcome, match.event_id, match.trigger_key) == ("started", "ev-1", "event:ev-1")
    assert match.payload is None  # the event itself is recorded; the match keeps its digest
    assert len(match.payload_digest) == 64
    assert match.run_id in outcome.started_runs
    assert world.output(match.run_id) == {"said": "hello ada (svc/api)"}
    # the workflow's own event trigger started its run as before
    assert len(outcome.started_runs) == 2
    assert outcome.refused == {}

    again = world.router.send("deploy.done", subject="svc/api", data=data, event_id="ev-1")
    assert again.duplicate
    assert len(world.matches("ops.on_deploy")) == 1


def test_criteria_false_records_a_match_without_a_run(world: World) -> None:
    outcome = world.router.send(
        "deploy.done", subject="svc/api", data={"env": "staging", "user": "bo"}, event_id="ev-2"
    )
    [match] = world.matches("ops.on_deploy")
    assert (match.outcome, match.run_id) == ("criteria_false", None)
    assert "trigger.env == 'production'" in (match.reason or "")
    assert len(outcome.started_runs) == 1  # only the workflow trigger's


def test_type_and_subject_patterns_and_disabling_select_the_events(world: World) -> None:
    data = {"env": "production", "user": "cy"}
    world.router.send("deploy.done", subject="db/main", data=data, event_id="ev-3")
    world.router.send("build.done", subject="svc/api", data=data, event_id="ev-4")
    assert world.matches("ops.on_deploy") == []
    with world.store.unit_of_work() as uow:
        rules.set_enabled(uow, "on_deploy", False, workspace="default", now=T0)
    world.router.send("deploy.done", subject="svc/api", data=data, event_id="ev-5")
    assert world.matches("ops.on_deploy") == []
    assert world.rule("ops.on_deploy").enabled is False


def test_a_rule_that_cannot_start_is_recorded_with_why(world: World) -> None:
    world.sync(RULES.replace("ref: ops.greet", "ref: ops.nowhere"))
    outcome = world.router.send(
        "deploy.done", subject="svc/api", data={"env": "production", "user": "di"},
        event_id="ev-6",
    )  # fmt: skip
    [match] = world.matches("ops.on_deploy")
    assert (match.outcome, match.run_id) == ("failed_to_start", None)
    assert "no workflow or action 'ops.nowhere'" in (match.reason or "")
    assert outcome.refused == {"rule:ops.on_deploy": match.reason}


def test_a_timer_rules_action_sees_the_payload_and_runs_as_a_one_task_run(
    world: World,
) -> None:
    schedule_id = world.rule("ops.tick").schedule_id
    assert schedule_id is not None
    with world.store.snapshot() as uow:
        row = uow.schedule_by_id(schedule_id)
    assert row is not None
    assert (row.name, row.source, row.workflow) == ("rule:ops.tick", "rule", "core.echo")
    for _ in range(2):
        due = next_due(row)
        assert due is not None
        world.clock.now = due
        world.firing.fire_due(schedule_id)
        with world.store.snapshot() as uow:
            row = uow.schedule_by_id(schedule_id) or row
    first, second = world.matches("ops.tick")
    assert first.run_id is not None
    assert world.output(first.run_id) == {"result": {"message": "fired 2026-06-01T12:01:00Z #1"}}
    assert second.payload is not None
    assert second.payload["execution_count"] == 2
    with world.store.snapshot() as uow:
        run = uow.load_run(first.run_id)
    assert run.workflow == "rules.ops.tick"  # the single action, wrapped


def test_a_disabled_timer_rule_skips_its_fires_and_criteria_false_is_a_skipped_fire(
    world: World,
) -> None:
    world.sync(RULES.replace('message: "fired', 'message: "at').replace(
        "interval: 1}", "interval: 1}\ncriteria: \"trigger.execution_count > 1\""
    ))  # fmt: skip
    schedule_id = world.rule("ops.tick").schedule_id
    assert schedule_id is not None
    world.clock.now = T0 + timedelta(minutes=1)
    world.firing.fire_due(schedule_id)
    with world.store.unit_of_work() as uow:
        rules.set_enabled(uow, "ops.tick", False, workspace="default", now=world.clock.now)
    world.clock.now = T0 + timedelta(minutes=2)
    world.firing.fire_due(schedule_id)
    with world.store.snapshot() as uow:
        fires = uow.fires(schedule_id, newest_first=False)
    assert [f.status for f in fires] == ["skipped_criteria", "skipped_paused"]
    assert [m.outcome for m in world.matches("ops.tick")] == ["criteria_false"]


def test_a_reloaded_pack_replaces_changed_rules_and_removes_missing_ones(world: World) -> None:
    assert sorted(world.report.added) == ["ops.on_deploy", "ops.tick"]
    same = world.sync(RULES)
    assert (same.added, same.updated, same.removed) == ([], [], [])
    with world.store.unit_of_work() as uow:  # an operator's switch survives an unchanged pack
        rules.set_enabled(uow, "ops.tick", False, workspace="default", now=T0)
    assert world.rule("ops.tick").enabled is False
    old_schedule = world.rule("ops.tick").schedule_id
    changed = world.sync(RULES.replace("interval: 1}", "interval: 5}"))
    assert changed.updated == ["ops.tick"]
    tick = world.rule("ops.tick")
    assert (tick.enabled, tick.schedule_id) == (True, old_schedule)  # the pack says enabled
    with world.store.snapshot() as uow:
        assert tick.schedule_id is not None
        row = uow.schedule_by_id(tick.schedule_id)
    assert row is not None
    assert row.interval_seconds == 300
    only_events = RULES[: RULES.index("---\n# comments")]
    removed = world.sync(only_events)
    assert removed.removed == ["ops.tick"]
    with world.store.snapshot() as uow:
        assert uow.schedule_by_id(old_schedule or "") is None
        assert [r.ref for r in uow.list_rules("default")] == ["ops.on_deploy"]


def test_a_rules_schedule_cannot_be_deleted_as_a_schedule(world: World) -> None:
    with world.store.unit_of_work() as uow, pytest.raises(ConflictError, match="timer rule"):
        schedules.remove(uow, "rule:ops.tick", workspace="default")
