"""Beat's transactions on a real store: a fire is recorded once and starts its run with it.

An embedded runner (SQLite, the shipped packs) carries the runs; the firing service is
the one ``treadle beat`` uses, driven by a fake clock, so no test sleeps. Covered: the run
and ``system.schedule``, each overlap policy's rows, a refused start, pause after a
failed run, trigger-now and backfill, the schedules workflows declare (replaced by a new
version, removed with the trigger), and beat's scheduler reading all of it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from treadle.common.catalog import Catalog
from treadle.common.errors import ConflictError, LimitExceeded
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.schedules import OverlapPolicy
from treadle.common.settings import Settings
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.service import schedules
from treadle.scheduler.service.beat import BeatServices, beat_service, next_due
from treadle.scheduler.service.renderings import load_stored_run, v1_run
from treadle.scheduler.service.run_document import stored_run_document
from treadle.scheduler.service.schedule_firing import FireKind, ScheduleFiring
from treadle.scheduler.store.models import runs
from treadle.scheduler.store.schedule_repo import FireRow, ScheduleRow

PACKS = Path(__file__).resolve().parents[2] / "packs"
T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
MINUTE = timedelta(minutes=1)

GREETER = """
ref: sched.greet
parameters:
  who:
    type: string
    default: world
tasks:
  - name: hello
    action: core.echo
    input:
      message: "{{ parameters.who }} {{ system.schedule.name }} {{ system.schedule.fire_time }}"
output_map:
  said: "{{ task.hello.result.message }}"
"""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class World:
    """An embedded runner, a fake clock, and beat's firing service on the runner's store."""

    def __init__(self, url: str, catalog: Catalog) -> None:
        self.clock = Clock()
        self.settings = Settings(database_url=url)
        self.runner = EmbeddedRunner(self.settings, catalog)
        self.store = self.runner.store
        self.firing = ScheduleFiring(self.runner.starter, clock=self.clock)

    def publish(self, text: str) -> int:
        spec = load_workflow_text(textwrap.dedent(text), "wf.yaml")
        return self.runner.definitions.publish(spec, at=self.clock()).version

    def create(self, name: str = "greet", **fields: Any) -> ScheduleRow:
        given = schedules.ScheduleInput(name=name, workflow="sched.greet", **fields)
        with self.store.unit_of_work() as uow:
            return schedules.create(uow, given, workspace="default", created_by="t", now=T0)

    def row(self, name: str = "greet") -> ScheduleRow:
        with self.store.snapshot() as uow:
            return schedules.find(uow, name, workspace="default")

    def fires(self, name: str = "greet") -> list[FireRow]:
        with self.store.snapshot() as uow:
            return uow.fires(self.row(name).id, newest_first=False, limit=1000)

    def statuses(self, name: str = "greet") -> list[str]:
        return [f.status for f in self.fires(name)]

    def fire(self, name: str = "greet") -> None:
        self.firing.fire_due(self.row(name).id)

    def end_run(self, run_id: str, status: str) -> None:
        with self.store.unit_of_work() as uow:
            uow.connection.execute(update(runs).where(runs.c.id == run_id).values(status=status))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_packs([PACKS])


@pytest.fixture
def world(tmp_path: Path, catalog: Catalog) -> Iterator[World]:
    made = World(f"sqlite:///{tmp_path / 'beat.db'}", catalog)
    made.publish(GREETER)
    try:
        yield made
    finally:
        made.runner.close()


def test_a_due_fire_starts_a_run_that_sees_system_schedule(world: World) -> None:
    world.create(interval=timedelta(minutes=5), parameters={"who": "ops"})
    world.clock.advance(minutes=4)
    world.fire()
    assert world.fires() == []  # not due yet

    world.clock.advance(minutes=1, seconds=2)
    world.fire()
    [fire] = world.fires()
    assert (fire.status, fire.kind, fire.nominal_at) == (
        "started",
        "scheduled",
        T0 + timedelta(minutes=5),
    )
    assert fire.run_id is not None
    done = world.runner.follow(fire.run_id)
    assert done.state.status.value == "succeeded"
    with world.store.snapshot() as uow:
        document = stored_run_document(uow, fire.run_id)
    assert document["output"] == {"said": "ops greet 2026-06-01T12:05:00Z"}
    assert document["parameters"] == {"who": "ops"}
    assert world.row().cursor == fire.nominal_at

    world.fire()  # nothing new is due: nothing recorded twice
    assert len(world.fires()) == 1
    rendered = v1_run(load_stored_run(world.store, fire.run_id))["run"]
    assert rendered["trigger_type"] == "TRIGGER_TYPE_SCHEDULE"


def test_overlap_skip_while_the_run_goes_on_then_start_again(world: World) -> None:
    world.create(interval=timedelta(minutes=1))
    world.clock.advance(minutes=1, seconds=1)
    world.fire()
    world.clock.advance(minutes=1)
    world.fire()
    assert world.statuses() == ["started", "skipped_overlap"]
    first = world.fires()[0].run_id
    assert first is not None
    world.end_run(first, "succeeded")
    world.clock.advance(minutes=1)
    world.fire()
    assert world.statuses() == ["started", "skipped_overlap", "started"]
    assert world.fires()[0].run_status == "succeeded"  # noted as the schedule fired


def test_buffer_one_starts_the_buffered_fire_when_the_run_ends(world: World) -> None:
    world.create(interval=timedelta(minutes=1), overlap="buffer_one")
    for _ in range(3):
        world.clock.advance(minutes=1)
        world.fire()
    assert world.statuses() == ["started", "buffered", "skipped_overlap"]
    world.firing.follow_up(world.row().id)
    assert world.statuses()[1] == "buffered"  # the first run still goes on
    first = world.fires()[0].run_id
    assert first is not None
    world.end_run(first, "succeeded")
    world.firing.follow_up(world.row().id)
    second = world.fires()[1]
    assert (second.status, second.run_id is not None) == ("started", True)


def test_cancel_other_cancels_the_running_run(world: World) -> None:
    world.create(interval=timedelta(minutes=1), overlap="cancel_other")
    world.clock.advance(minutes=1)
    world.fire()
    world.clock.advance(minutes=1)
    world.fire()
    first, second = world.fires()
    assert (first.status, second.status) == ("started", "started")
    assert first.run_id is not None
    with world.store.snapshot() as uow:
        assert uow.load_run(first.run_id).status.value == "canceled"


def test_catch_up_window_and_missed_policy_after_beat_was_down(world: World) -> None:
    world.create(
        interval=timedelta(minutes=10),
        overlap="allow_all",
        catchup_window=timedelta(minutes=30),
        missed="last",
    )
    world.clock.advance(minutes=65)  # fires at 10..60 minutes; beat looks only now
    world.fire()
    assert world.statuses() == ["skipped_catchup_window"] * 3 + ["skipped_missed"] * 2 + ["started"]
    reasons = [f.reason or "" for f in world.fires()]
    assert "catch-up window" in reasons[0]
    assert "missed policy last" in reasons[3]


def test_a_refused_start_is_recorded_with_why(world: World) -> None:
    world.create(interval=timedelta(minutes=1), parameters={"who": 5})
    world.clock.advance(minutes=1)
    world.fire()
    [fire] = world.fires()
    assert (fire.status, fire.run_id) == ("failed_to_start", None)
    assert "who" in (fire.reason or "")
    with world.store.snapshot() as uow:
        assert uow.list_runs(workflow="sched.greet") == []


def test_a_missing_workflow_is_recorded_as_could_not_start(world: World) -> None:
    given = schedules.ScheduleInput(name="ghost", workflow="sched.nothing", cron="* * * * *")
    with world.store.unit_of_work() as uow:
        schedules.create(uow, given, workspace="default", created_by="t", now=T0)
    world.clock.advance(minutes=1)
    world.fire("ghost")
    [fire] = world.fires("ghost")
    assert fire.status == "failed_to_start"
    assert "sched.nothing" in (fire.reason or "")


def test_pause_on_failure_pauses_and_a_paused_schedule_skips(world: World) -> None:
    world.create(interval=timedelta(minutes=1), pause_on_failure=True)
    world.clock.advance(minutes=1)
    world.fire()
    run_id = world.fires()[0].run_id
    assert run_id is not None
    world.end_run(run_id, "failed")
    world.clock.advance(minutes=1)
    world.fire()
    row = world.row()
    assert not row.enabled
    assert f"run {run_id} ended failed" in (row.paused_reason or "")
    assert world.statuses() == ["started", "skipped_paused"]
    with world.store.unit_of_work() as uow:
        schedules.resume(uow, "greet", workspace="default", now=world.clock())
    world.clock.advance(minutes=1)
    world.fire()
    assert world.statuses() == ["started", "skipped_paused", "started"]


def test_trigger_now_and_backfill_record_their_fires_once(world: World) -> None:
    world.create(cron="0 * * * *", overlap="skip")
    with world.store.unit_of_work() as uow:
        manual = world.firing.fire_now(uow, world.row(), world.clock(), kind=FireKind.MANUAL)
    assert (manual.kind, manual.status) == ("manual", "started")
    start, end = T0 - timedelta(hours=3), T0 - timedelta(hours=1)
    with world.store.unit_of_work() as uow:
        filled = world.firing.backfill(uow, world.row(), start, end)
    assert [(f.kind, f.status) for f in filled] == [("backfill", "started")] * 3
    with world.store.unit_of_work() as uow:  # the same range again: recorded already
        again = world.firing.backfill(uow, world.row(), start, end)
    assert [f.run_id for f in again] == [f.run_id for f in filled]
    assert len(world.fires()) == 4
    with world.store.unit_of_work() as uow, pytest.raises(LimitExceeded):
        world.firing.backfill(uow, world.row(), T0 - timedelta(days=60), T0)
    with world.store.unit_of_work() as uow:
        buffered = world.firing.backfill(
            uow, world.row(), T0 - timedelta(hours=6), T0 - timedelta(hours=5),
            overlap=OverlapPolicy.BUFFER_ALL,
        )  # fmt: skip
    assert [f.status for f in buffered] == ["buffered", "buffered"]


def test_schedules_a_workflow_declares_follow_its_latest_version(world: World) -> None:
    declared = GREETER + textwrap.dedent("""
        triggers:
          - type: cron
            cron: "0 17 * * 1-5"
            timezone: America/New_York
            name: weekday-five
            parameters: {who: team}
          - type: interval
            interval: 15m
        """)
    services = BeatServices(world.store, world.settings, clock=world.clock)
    world.publish(declared)
    services.load()
    with world.store.snapshot() as uow:
        rows = {r.name: r for r in uow.list_schedules()}
    assert set(rows) == {"weekday-five", "sched.greet-2"}
    five = rows["weekday-five"]
    assert (five.source, five.timezone, dict(five.parameters)) == (
        "workflow", "America/New_York", {"who": "team"}
    )  # fmt: skip
    with world.store.unit_of_work() as uow, pytest.raises(ConflictError):
        schedules.remove(uow, "weekday-five", workspace="default")

    world.publish(
        declared.replace("0 17 * * 1-5", "30 16 * * 1-5").replace(
            "  - type: interval\n    interval: 15m\n", ""
        )
    )
    services.load()
    with world.store.snapshot() as uow:
        rows = {r.name: r for r in uow.list_schedules()}
    assert set(rows) == {"weekday-five"}
    assert rows["weekday-five"].cron == "30 16 * * 1-5"
    assert rows["weekday-five"].id == five.id  # replaced in place: its fires stay

    world.publish(GREETER)  # no trigger any more
    services.load()
    with world.store.snapshot() as uow:
        assert uow.list_schedules() == []


def test_beat_entries_are_due_when_the_schedules_next_fire_is(world: World) -> None:
    row = world.create(interval=timedelta(minutes=5), jitter=timedelta(seconds=30))
    due = next_due(row)
    assert due is not None
    assert T0 + timedelta(minutes=5) <= due < T0 + timedelta(minutes=5, seconds=30)
    paused = world.create("other", cron="@daily", enabled=False)
    assert not paused.enabled
    assert next_due(paused) is not None  # beat still visits it, to record skips


def test_old_settled_fires_are_pruned_to_the_number_kept(world: World) -> None:
    world.create(interval=timedelta(minutes=1), overlap="skip")
    world.clock.advance(minutes=30, seconds=1)
    world.fire()  # the first starts, 29 skipped while it runs
    with world.store.unit_of_work() as uow:
        assert uow.prune_fires(world.row().id, 10) == 19  # the started one is still in play
    kept = world.fires()
    assert len(kept) == 11
    assert kept[0].status == "started"
    services = BeatServices(
        world.store, Settings(database_url=world.settings.database_url, schedule_fires_kept=10),
        clock=world.clock,
    )  # fmt: skip
    run_id = kept[0].run_id
    assert run_id is not None
    world.end_run(run_id, "succeeded")
    world.firing.follow_up(world.row().id)
    services.load()
    assert len(world.fires()) == 10


def test_beat_fires_the_longest_overdue_schedule_first(world: World) -> None:
    given = schedules.ScheduleInput(name="z-starved", workflow="sched.greet", interval=MINUTE)
    with world.store.unit_of_work() as uow:
        schedules.create(uow, given, workspace="default", created_by="t", now=T0)
    world.clock.advance(seconds=61)  # z-starved due since T0 + 60 s
    busy = [f"a-busy-{n}" for n in range(6)]
    with world.store.unit_of_work() as uow:
        for name in busy:
            given = schedules.ScheduleInput(
                name=name, workflow="sched.greet", interval=timedelta(seconds=1)
            )
            schedules.create(uow, given, workspace="default", created_by="t", now=world.clock())
    world.clock.advance(seconds=2)  # the busy ones are due too, but later
    services = BeatServices(world.store, world.settings, clock=world.clock)
    scheduler = beat_service(services, reload_every=1).scheduler
    scheduler.tick()
    assert [f.status for f in world.fires("z-starved")] == ["started"]
    assert all(world.fires(name) == [] for name in busy)
    scheduler.tick()
    assert sum(len(world.fires(name)) for name in busy) == 2
