"""What an emergency stop does to schedules and to "why is it stuck".

Schedules through beat's firing service on a real store (SQLite, a fake clock, as in
``test_schedule_firing.py``): while a stop holds the schedule's workspace every fire is
recorded ``skipped_emergency_stop`` (no run), a buffered fire waits, and firing goes on
once it is lifted. ``why`` through the pure :func:`explain`, with the state the real core
made and the stop as the store gives it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from treadle.common.catalog import Catalog
from treadle.common.emergency_stop import EmergencyStop, StopScope, StopSource
from treadle.common.loader import load_packs
from treadle.common.statuses import AttemptStatus
from treadle.scheduler.core.events import AttemptLost, PauseRequested
from treadle.scheduler.core.schedule_plan import DueFire, FireStatus, Policies, plan_due
from treadle.scheduler.service.emergency_stop.changes import lift, set_stop
from treadle.scheduler.service.schedule_firing import FireKind
from treadle.scheduler.service.why import WaitReason

from .test_schedule_firing import GREETER, PACKS, T0, World
from .test_why import ONE, Run, attempt

STOP = EmergencyStop(
    id=1,
    scope=StopScope.GLOBAL,
    workspace="",
    reason="bad deploy",
    terminate=False,
    source=StopSource.COMMAND,
    set_by="cli:ana",
    since=datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC),
)


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


def _on(world: World, workspace: str | None = None) -> None:
    with world.store.unit_of_work() as uow:
        set_stop(uow, workspace, reason="bad deploy", terminate=False, by="cli:ana", now=T0)


def _off(world: World, workspace: str | None = None) -> None:
    with world.store.unit_of_work() as uow:
        lift(uow, workspace, by="cli:bo", now=world.clock())


# -- schedules --------------------------------------------------------------------------------


def test_the_plan_skips_every_due_fire_while_a_stop_holds() -> None:
    fires = [DueFire(T0, T0), DueFire(T0 + timedelta(minutes=1), T0 + timedelta(minutes=1))]
    planned = plan_due(fires, Policies(), now=T0 + timedelta(minutes=1), stopped="the stop")
    assert [(p.status, p.reason) for p in planned] == [
        (FireStatus.SKIPPED_EMERGENCY_STOP, "the stop"),
        (FireStatus.SKIPPED_EMERGENCY_STOP, "the stop"),
    ]
    assert FireStatus.SKIPPED_EMERGENCY_STOP.is_skip


def test_fires_are_skipped_while_a_stop_holds_and_start_again_once_lifted(world: World) -> None:
    world.create(interval=timedelta(minutes=1))
    _on(world)
    world.clock.advance(minutes=1, seconds=1)
    world.fire()
    [skipped] = world.fires()
    assert (skipped.status, skipped.run_id) == ("skipped_emergency_stop", None)
    assert skipped.reason is not None
    assert skipped.reason.startswith("emergency stop (global) since 2026-06-01T12:00:00Z")
    assert skipped.reason.endswith("by cli:ana: bad deploy")

    with world.store.unit_of_work() as uow:  # asked for now: skipped too
        manual = world.firing.fire_now(uow, world.row(), world.clock(), kind=FireKind.MANUAL)
    assert manual.status == "skipped_emergency_stop"

    _off(world)
    world.clock.advance(minutes=1)
    world.fire()
    assert world.statuses()[-1] == "started"  # the fires skipped meanwhile stay skipped


def test_a_workspace_stop_skips_that_workspaces_fires_only(world: World) -> None:
    world.create(interval=timedelta(minutes=1))
    _on(world, "team-a")
    world.clock.advance(minutes=1, seconds=1)
    world.fire()
    assert world.statuses() == ["started"]


def test_a_buffered_fire_waits_for_the_stop_to_be_lifted(world: World) -> None:
    world.create(interval=timedelta(minutes=1), overlap="buffer_one")
    for _ in range(2):
        world.clock.advance(minutes=1)
        world.fire()
    assert world.statuses() == ["started", "buffered"]
    first = world.fires()[0].run_id
    assert first is not None
    world.end_run(first, "succeeded")
    _on(world)
    world.firing.follow_up(world.row().id)
    assert world.statuses() == ["started", "buffered"]
    _off(world)
    world.firing.follow_up(world.row().id)
    assert world.statuses() == ["started", "started"]


# -- why ---------------------------------------------------------------------------------------


def test_why_names_the_stop_holding_a_queued_attempt_with_who_when_and_why() -> None:
    run = Run(ONE)
    [aid] = run.dispatched()
    queued = attempt(aid, status=AttemptStatus.QUEUED)
    [reason] = run.why(attempts={aid: queued}, emergency_stop=STOP)
    assert (reason.task, reason.reason) == ("work", WaitReason.EMERGENCY_STOP)
    assert reason.since == STOP.since
    assert reason.message == (
        "held by the emergency stop (global) since 2026-01-01T12:00:30Z by cli:ana: bad deploy"
    )
    assert reason.details == {
        "scope": "global",
        "reason": "bad deploy",
        "set_by": "cli:ana",
        "since": "2026-01-01T12:00:30Z",
    }


def test_why_keeps_a_running_attempt_and_an_operators_pause_as_they_are() -> None:
    run = Run(ONE)
    [aid] = run.dispatched()
    running = attempt(aid, status=AttemptStatus.RUNNING, worker="w1@host")
    [reason] = run.why(attempts={aid: running}, emergency_stop=STOP)
    assert reason.reason is WaitReason.RUNNING  # running attempts finish

    run.send(PauseRequested(reason="looking", by="cli:cy"))
    run.send(AttemptLost(attempt_id=aid, error={"type": "EmergencyStop"}))
    theirs = run.why(emergency_stop=STOP)  # paused by an operator: both must let go
    assert [r.reason for r in theirs] == [WaitReason.PAUSED, WaitReason.EMERGENCY_STOP]
    [ours] = run.why(emergency_stop=STOP, stopped_run=True)  # paused by the stop
    assert (ours.task, ours.reason) == ("work", WaitReason.EMERGENCY_STOP)
