"""Attune's timer rules (``attune/rules/``): every document loads as a rule, becomes a
schedule beat fires at the right instants in its time zone, and a fire starts the rule's
action with its parameters and the trigger's payload.

Beat's firing service runs on a fake clock (moved to each due instant as beat would be
woken, ``next_due``), so the arithmetic is exact and nothing sleeps; the runs themselves go
through a real embedded runner on SQLite with a stub for every action Treadle does not
ship (``stubs/rule_actions.py``). The fixtures are read in place, never copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from treadle.common.catalog import Catalog
from treadle.common.loader import load_packs
from treadle.common.loader.rules import read_rule_file
from treadle.common.rules import RuleSpec, TimerKind, timer_payload, timer_schedule
from treadle.common.settings import Settings
from treadle.common.spec import ActionSpec, ParameterSpec, RunnerType
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.service.beat import next_due
from treadle.scheduler.service.rule_sync import RuleSyncReport, sync_rules
from treadle.scheduler.service.run_document import stored_run_document
from treadle.scheduler.service.schedule_firing import ScheduleFiring
from treadle.scheduler.store.rule_repo import MatchRow
from treadle.scheduler.store.schedule_repo import FireRow, ScheduleRow

from .conftest import SHIPPED_PACKS, STUBS

RULE_FILE = "timer-types-example.yaml"
PACK = "attune_rules"


def _rules(attune: Path) -> dict[str, RuleSpec]:
    rules, issues = read_rule_file(str(attune / "rules" / RULE_FILE), PACK)
    assert [str(i) for i in issues] == []
    return {rule.name: rule for rule in rules}


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class World:
    """The rules synced into a fresh store at ``start``; beat's firing on a fake clock."""

    def __init__(self, url: str, rules: dict[str, RuleSpec], start: datetime) -> None:
        self.clock = Clock(start)
        catalog = load_packs([SHIPPED_PACKS])
        taken: dict[str, set[str]] = {}
        for rule in rules.values():  # stub every action Treadle does not ship
            if not catalog.knows(rule.action.ref) or rule.action.ref in taken:
                taken.setdefault(rule.action.ref, set()).update(rule.action.parameters)
        for ref, names in taken.items():
            catalog.actions[ref] = ActionSpec(
                ref=ref,
                runner_type=RunnerType.PYTHON,
                entry_point="rule_actions.py:received",
                parameters=tuple(ParameterSpec(name=name) for name in sorted(names)),
                base_dir=str(STUBS),
            )
        self.runner = EmbeddedRunner(Settings(database_url=url), catalog)
        self.store = self.runner.store
        self.firing = ScheduleFiring(self.runner.starter, clock=self.clock)
        by_ref = {rule.ref: rule for rule in rules.values()}
        with self.store.unit_of_work() as uow:
            uow.register_catalog(catalog, start)
            self.report: RuleSyncReport = sync_rules(uow, by_ref, {PACK}, now=start)

    def schedule(self, ref: str) -> ScheduleRow:
        with self.store.snapshot() as uow:
            [rule] = uow.find_rule("default", ref)
            assert rule.schedule_id is not None
            row = uow.schedule_by_id(rule.schedule_id)
        assert row is not None
        return row

    def beat_until(self, ref: str, until: datetime) -> None:
        """Wake at each due instant of the rule's schedule up to ``until`` and fire it."""
        while True:
            due = next_due(self.schedule(ref))
            if due is None or due > until:
                break
            self.clock.now = due
            self.firing.fire_due(self.schedule(ref).id)
        self.clock.now = until
        self.firing.fire_due(self.schedule(ref).id)

    def fires(self, ref: str) -> list[FireRow]:
        with self.store.snapshot() as uow:
            return uow.fires(self.schedule(ref).id, newest_first=False, limit=1000)

    def matches(self, ref: str) -> list[MatchRow]:
        with self.store.snapshot() as uow:
            [rule] = uow.find_rule("default", ref)
            return list(reversed(uow.rule_matches(rule.id, limit=1000)))

    def document(self, run_id: str) -> dict[str, Any]:
        self.runner.follow(run_id)
        with self.store.snapshot() as uow:
            return stored_run_document(uow, run_id)


@pytest.fixture
def make_world(tmp_path: Path, attune: Path) -> Iterator[Any]:
    made: list[World] = []

    def make(start: datetime) -> World:
        world = World(f"sqlite:///{tmp_path / f'rules-{len(made)}.db'}", _rules(attune), start)
        made.append(world)
        return world

    yield make
    for world in made:
        world.runner.close()


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_every_document_loads_as_a_rule_on_its_declared_trigger(attune: Path) -> None:
    rules = _rules(attune)
    assert sorted(rules) == sorted(
        [
            "health_check_rule", "database_backup_rule", "daily_report_rule",
            "log_cleanup_rule", "data_processing_rule", "production_deployment_rule",
            "meeting_reminder_rule", "license_renewal_reminder", "monitoring_with_review",
        ]
    )  # fmt: skip
    report = rules["daily_report_rule"]
    assert (report.ref, report.enabled, report.trigger.type) == (
        "reports.daily", True, "core.crontimer"
    )  # fmt: skip
    assert report.action.parameters["recipients"] == ["ops@example.com", "management@example.com"]
    for rule in rules.values():
        assert timer_schedule(rule.trigger) is not None  # each is a timer: a schedule
    # Attune's own trigger declarations: the parameters we read are the ones declared, and
    # a payload holds every required output and nothing undeclared.
    for kind in TimerKind:
        stem = kind.value.split(".")[1].removesuffix("timer")
        declared = yaml.safe_load((attune / "rules" / f"trigger-{stem}timer.yaml").read_text())
        assert declared["ref"] == kind.value
        assert set(kind.fields) == set(declared["parameters"])
        example = next(r for r in rules.values() if r.trigger.type == kind.value)
        timer = timer_schedule(example.trigger)
        assert timer is not None
        at = _utc(2026, 1, 5, 17)
        payload = timer_payload(timer, scheduled=at, fired=at, next_fire=at, count=1)
        outputs = declared["output"]
        required = {name for name, spec in outputs.items() if spec.get("required")}
        assert required <= set(payload) <= set(outputs), kind
        assert payload["type"] == outputs["type"]["const"]


def test_weekday_five_pm_new_york_across_the_dst_change(make_world: Any) -> None:
    # US clocks go forward on Sunday 2026-03-08: 17:00 is 22:00 UTC before, 21:00 after.
    world = make_world(_utc(2026, 3, 5, 12))
    world.beat_until("reports.daily", _utc(2026, 3, 11, 12))
    fires = world.fires("reports.daily")
    assert [f.nominal_at for f in fires] == [
        _utc(2026, 3, 5, 22),  # Thursday, EST
        _utc(2026, 3, 6, 22),  # Friday, EST (no fire on the weekend)
        _utc(2026, 3, 9, 21),  # Monday, EDT
        _utc(2026, 3, 10, 21),  # Tuesday, EDT
    ]
    assert {f.status for f in fires} == {"started"}
    payloads = [m.payload for m in world.matches("reports.daily")]
    assert payloads[2] is not None
    assert payloads[2]["scheduled_at"] == "2026-03-09T21:00:00Z"
    assert payloads[2]["next_fire_at"] == "2026-03-10T21:00:00Z"
    assert [p["execution_count"] for p in payloads if p] == [1, 2, 3, 4]


def test_the_22_0_2_4_oclock_rule(make_world: Any) -> None:
    world = make_world(_utc(2026, 6, 1, 12))
    world.beat_until("processing.intensive", _utc(2026, 6, 2, 23))
    assert [f.nominal_at for f in world.fires("processing.intensive")] == [
        _utc(2026, 6, 1, 22), _utc(2026, 6, 2, 0), _utc(2026, 6, 2, 2), _utc(2026, 6, 2, 4),
        _utc(2026, 6, 2, 22),
    ]  # fmt: skip


def test_the_five_minute_interval(make_world: Any) -> None:
    world = make_world(_utc(2026, 6, 1, 12, 1))
    world.beat_until("monitoring.combined", _utc(2026, 6, 1, 12, 16))
    fires = world.fires("monitoring.combined")
    assert [f.nominal_at for f in fires] == [
        _utc(2026, 6, 1, 12, 5), _utc(2026, 6, 1, 12, 10), _utc(2026, 6, 1, 12, 15)
    ]  # fmt: skip
    [payload, *_] = [m.payload for m in world.matches("monitoring.combined")]
    assert payload == {
        "type": "interval", "interval_seconds": 300, "fired_at": "2026-06-01T12:05:00Z",
        "execution_count": 1, "sensor_ref": "treadle.beat",
    }  # fmt: skip


def test_a_one_shot_fires_once_and_never_again(make_world: Any) -> None:
    world = make_world(_utc(2024, 6, 14))
    world.beat_until("deployment.production", _utc(2024, 6, 15, 1, 59))
    assert world.fires("deployment.production") == []
    world.beat_until("deployment.production", _utc(2025, 6, 15))  # a year on
    [fire] = world.fires("deployment.production")
    assert (fire.nominal_at, fire.status) == (_utc(2024, 6, 15, 2), "started")
    assert next_due(world.schedule("deployment.production")) is None
    [match] = world.matches("deployment.production")
    assert match.payload is not None
    assert (match.payload["type"], match.payload["fire_at"], match.payload["delay_ms"]) == (
        "one_shot", "2024-06-15T02:00:00Z", 0
    )  # fmt: skip


def test_a_one_shot_in_the_past_is_reported_not_fired(make_world: Any) -> None:
    world = make_world(_utc(2024, 6, 14))  # the board meeting reminder was for 2024-03-20
    [problem] = [p for p in world.report.problems if p.rule.ref == "notifications.reminder"]
    assert "2024-03-20T13:45:00Z was already past" in problem.message
    assert str(problem.rule.source.loc(problem.path)).endswith(f"{RULE_FILE}:130:5")
    with world.store.snapshot() as uow:
        [rule] = uow.find_rule("default", "notifications.reminder")
    assert rule.note is not None
    assert "not fired" in rule.note
    world.beat_until("notifications.reminder", _utc(2026, 1, 1))
    assert world.fires("notifications.reminder") == []
    assert world.matches("notifications.reminder") == []


def test_a_fire_starts_the_action_with_its_parameters_and_the_trigger_payload(
    make_world: Any,
) -> None:
    world = make_world(_utc(2026, 3, 5, 12))
    world.beat_until("reports.daily", _utc(2026, 3, 5, 22))
    [fire] = world.fires("reports.daily")
    assert fire.run_id is not None
    document = world.document(fire.run_id)
    assert document["status"] == "succeeded"
    assert document["output"]["result"] == {
        "received": {
            "report_type": "daily_summary",
            "recipients": ["ops@example.com", "management@example.com"],
        }
    }
    assert document["parameters"]["report_type"] == "daily_summary"
    with world.store.snapshot() as uow:
        run = uow.load_run(fire.run_id)
    schedule = run.context.schedule
    assert schedule is not None
    assert schedule["rule"] == "reports.daily"
    assert schedule["trigger"]["fired_at"] == "2026-03-05T22:00:00Z"
    assert schedule["trigger"]["scheduled_at"] == "2026-03-05T22:00:00Z"
    assert schedule["trigger"]["expression"] == "0 0 17 * * 1-5"
    [match] = world.matches("reports.daily")
    assert (match.outcome, match.run_id, match.payload) == (
        "started",
        fire.run_id,
        schedule["trigger"],
    )


def test_catalog_rules_are_loaded_from_a_packs_rules_folder(tmp_path: Path, attune: Path) -> None:
    pack = tmp_path / "attune_rules"
    (pack / "rules").mkdir(parents=True)
    (pack / "pack.yaml").write_text("ref: attune_rules\n")
    (pack / "rules" / RULE_FILE).symlink_to(attune / "rules" / RULE_FILE)
    catalog: Catalog = load_packs([pack])
    assert catalog.issues == []
    assert len(catalog.rules) == 9
    assert catalog.rules["reports.daily"].pack == "attune_rules"
