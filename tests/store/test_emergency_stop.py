"""The emergency stop's rules, one by one, on a real store (SQLite and PostgreSQL).

A scheduler's services (relay, its own dispatches, the run service) behind the stop's gate,
with a fake clock and an in-memory publisher standing for the broker: what reaches the
broker, what is revoked, what the runs and their attempts become, and what is recorded.
The same rules with real ``treadle scheduler`` and ``treadle worker`` processes are in
``tests/distributed/faults/test_emergency_stop.py``.
"""

from __future__ import annotations

import select
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

import treadle
from treadle.common.emergency_stop import SETTING_ACTOR, StopScope, StopSource
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.messages import TaskResult
from treadle.common.metrics import Metrics
from treadle.common.metrics_catalog import MetricSource
from treadle.common.settings import Settings
from treadle.common.statuses import AttemptStatus, RunStatus
from treadle.scheduler.core.commands import Command, DispatchTask
from treadle.scheduler.core.endings import AttemptEnding
from treadle.scheduler.core.events import PauseRequested, ResumeRequested
from treadle.scheduler.core.ids import parse_attempt_id
from treadle.scheduler.service.commands import CommandHandlers
from treadle.scheduler.service.controls import Control, apply_control
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.direct_publish import DirectPublish
from treadle.scheduler.service.emergency_stop.changes import (
    NoEmergencyStop,
    StopPinned,
    lift,
    set_stop,
)
from treadle.scheduler.service.emergency_stop.guard import EmergencyStopGuard
from treadle.scheduler.service.relay import Relay
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.service.starting import RunOptions, RunStarter
from treadle.scheduler.service.wakeups import Wakeups
from treadle.scheduler.store import Store

from .conftest import FakeClock

CHAIN = load_workflow_text(
    """
ref: tests.stop_chain
tasks:
  - name: first
    action: core.noop
    on_success: second
  - name: second
    action: core.noop
""",
    "stop_chain.yaml",
)


@dataclass
class Broker:
    """Stands for the broker: what was published, what was revoked."""

    published: list[Command] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)

    def publish(self, commands: Sequence[Command]) -> None:
        self.published.extend(commands)

    def revoke(self, attempt_ids: Iterable[str]) -> None:
        self.revoked.extend(attempt_ids)

    def attempts(self) -> list[str]:
        return [c.dispatch.attempt_id for c in self.published if isinstance(c, DispatchTask)]


@dataclass
class Scheduler:
    """One scheduler's services behind the gate, and a client starting runs."""

    store: Store
    clock: FakeClock
    broker: Broker
    runs: RunService
    relay: Relay
    direct: DirectPublish
    guard: EmergencyStopGuard
    client: RunStarter
    metrics: Metrics

    def step(self) -> None:
        """What a scheduler step does about stops, then publishing (as in process.py)."""
        self.guard.step(self.runs, self.broker)
        self.direct.flush()
        self.relay.drain()
        self.direct.flush()
        self.direct.mark_sent()

    def start(self, workspace: str = "default") -> str:
        run_id = self.client.start(CHAIN, {}, RunOptions(workspace=workspace))
        self.relay.drain()
        return run_id

    def status(self, run_id: str) -> RunStatus:
        with self.store.snapshot() as uow:
            return uow.load_run(run_id).status

    def attempts(self, run_id: str) -> list[tuple[str, AttemptStatus, str | None]]:
        with self.store.snapshot() as uow:
            return [(a.attempt_id, a.status, a.reason) for a in uow.list_attempts(run_id)]

    def start_attempt(self, attempt_id: str) -> None:
        with self.store.unit_of_work() as uow:
            uow.mark_attempt_started(attempt_id, "w1@host", self.clock())

    def finish(self, attempt_id: str) -> None:
        result = TaskResult(
            attempt_id=attempt_id, outcome=AttemptStatus.SUCCEEDED, finished_at=self.clock()
        )
        with self.store.unit_of_work() as uow:
            self.runs.settle(uow, [AttemptEnding.reported(result)])

    def on(self, workspace: str | None = None, *, terminate: bool = False) -> None:
        with self.store.unit_of_work() as uow:
            set_stop(
                uow, workspace, reason="bad deploy", terminate=terminate, by="cli:ana",
                now=self.clock(),
            )  # fmt: skip
        self.clock.advance(1)

    def off(self, workspace: str | None = None) -> None:
        with self.store.unit_of_work() as uow:
            lift(uow, workspace, by="cli:bo", now=self.clock(), reason="fixed")
        self.clock.advance(1)

    def gauge(self, scope: str) -> float | None:
        return self.metrics.registry.get_sample_value(
            "treadle_emergency_stop_active", {"scope": scope}
        )


def make_scheduler(store: Store, clock: FakeClock, settings: Settings | None = None) -> Scheduler:
    catalog = load_packs([Path(treadle.__file__).parent / "packs"])
    catalog.workflows[CHAIN.ref] = CHAIN
    handlers = CommandHandlers("treadle.tasks")
    definitions = Definitions(store, catalog)
    runs = RunService(store, definitions, clock=clock, write_commands=handlers.write)
    starter = RunStarter(runs)
    broker = Broker()
    metrics = Metrics([MetricSource.SCHEDULER])
    # recheck 0: each step reads the stops (the real guard also reads on a NOTIFY)
    guard = EmergencyStopGuard(settings or Settings(), clock, None, metrics, recheck_seconds=0)
    guard.attach(runs, broker)
    direct = DirectPublish(store, guard.gated, hold_for=timedelta(seconds=10), clock=clock)
    runs.outgoing = direct
    relay = Relay(starter, guard.gated, handlers, clock=clock)
    client_runs = RunService(store, definitions, clock=clock, write_commands=handlers.write)
    return Scheduler(
        store, clock, broker, runs, relay, direct, guard, RunStarter(client_runs), metrics
    )


@pytest.fixture
def scheduler(store: Store, clock: FakeClock) -> Scheduler:
    return make_scheduler(store, clock)


def _attempt_number(attempt_id: str) -> int:
    ref = parse_attempt_id(attempt_id)
    assert ref is not None
    return ref.attempt


def _events(store: Store, run_id: str) -> list[object]:
    with store.snapshot() as uow:
        return [recorded.event for recorded in uow.list_events(run_id)]


# -- on: runs pause, what waits on the broker is taken back -------------------------------------


def test_a_stop_pauses_the_runs_takes_back_their_queued_attempts_and_off_resumes_them(
    scheduler: Scheduler,
) -> None:
    one, two = scheduler.start(), scheduler.start()
    [first_one, first_two] = scheduler.broker.attempts()

    scheduler.on()
    scheduler.step()

    assert scheduler.status(one) is RunStatus.PAUSED
    assert scheduler.status(two) is RunStatus.PAUSED
    assert sorted(scheduler.broker.revoked) == sorted([first_one, first_two])
    [(attempt_id, status, reason)] = scheduler.attempts(one)
    assert (attempt_id, status) == (first_one, AttemptStatus.LOST)
    assert reason == "emergency_stop: taken back from the broker (global)"
    pause = next(e for e in _events(scheduler.store, one) if isinstance(e, PauseRequested))
    assert (pause.reason, pause.by) == ("emergency_stop: bad deploy", "cli:ana")
    assert scheduler.gauge("global") == 1

    scheduler.step()  # holding still: nothing is done twice
    assert len(scheduler.broker.revoked) == 2
    assert len(scheduler.broker.attempts()) == 2

    scheduler.off()
    scheduler.step()

    assert scheduler.status(one) is RunStatus.RUNNING
    resume = next(e for e in _events(scheduler.store, one) if isinstance(e, ResumeRequested))
    assert (resume.reason, resume.by) == ("emergency_stop lifted: fixed", "cli:bo")
    again = scheduler.broker.attempts()[2:]
    assert len(again) == 2  # dispatched again, as new attempts
    assert [_attempt_number(a) for a in again] == [2, 2]
    assert scheduler.gauge("global") == 0
    for attempt_id in again:
        scheduler.finish(attempt_id)
    scheduler.step()
    for attempt_id in scheduler.broker.attempts()[4:]:
        scheduler.finish(attempt_id)
    assert scheduler.status(one) is RunStatus.SUCCEEDED
    assert scheduler.status(two) is RunStatus.SUCCEEDED


def test_new_dispatches_are_withheld_while_a_stop_holds_and_sent_after_it(
    scheduler: Scheduler,
) -> None:
    scheduler.on()
    scheduler.step()  # the scheduler reads the stop
    run_id = scheduler.start()  # a client starts a run during the stop

    assert scheduler.broker.attempts() == []  # nothing reached the broker
    scheduler.step()
    assert scheduler.status(run_id) is RunStatus.PAUSED
    assert scheduler.broker.attempts() == []

    scheduler.off()
    scheduler.step()
    [attempt_id] = scheduler.broker.attempts()
    scheduler.finish(attempt_id)
    scheduler.step()
    [_, second] = scheduler.broker.attempts()
    scheduler.finish(second)
    assert scheduler.status(run_id) is RunStatus.SUCCEEDED


def test_running_attempts_finish_and_the_run_pauses_after_them(scheduler: Scheduler) -> None:
    run_id = scheduler.start()
    [first] = scheduler.broker.attempts()
    scheduler.start_attempt(first)

    scheduler.on()
    scheduler.step()
    assert scheduler.status(run_id) is RunStatus.PAUSING
    assert scheduler.broker.revoked == []

    scheduler.finish(first)  # its result is applied; the next task waits for the resume
    scheduler.step()
    assert scheduler.status(run_id) is RunStatus.PAUSED
    assert scheduler.broker.attempts() == [first]
    assert scheduler.attempts(run_id)[0][1] is AttemptStatus.SUCCEEDED


def test_a_terminating_stop_ends_running_attempts_too_and_they_run_again_uncharged(
    scheduler: Scheduler,
) -> None:
    run_id = scheduler.start()
    [first] = scheduler.broker.attempts()
    scheduler.start_attempt(first)

    scheduler.on(terminate=True)
    scheduler.step()

    assert scheduler.broker.revoked == [first]
    assert scheduler.status(run_id) is RunStatus.PAUSED
    assert scheduler.attempts(run_id) == [
        (first, AttemptStatus.LOST, "emergency_stop: terminated (global)")
    ]
    with scheduler.store.snapshot() as uow:  # not the worker's fault: no delivery is counted
        entry = uow.list_attempts(run_id)[0]
        assert uow.lost_attempt_counts([entry]) == {}

    scheduler.off()
    scheduler.step()
    [_, again] = scheduler.broker.attempts()
    assert _attempt_number(again) == 2
    with scheduler.store.snapshot() as uow:
        state = uow.load_run(run_id)
    [execution] = state.executions.values()
    assert execution.units[0].retry_base == 1  # the retry policy was not charged


def test_runs_an_operator_paused_stay_paused_when_the_stop_is_lifted(scheduler: Scheduler) -> None:
    theirs, ours = scheduler.start(), scheduler.start()
    apply_control(scheduler.runs, theirs, Control.PAUSE, reason="looking into it", by="cli:cy")

    scheduler.on()
    scheduler.step()
    scheduler.off()
    scheduler.step()

    assert scheduler.status(theirs) is RunStatus.PAUSED
    assert scheduler.status(ours) is RunStatus.RUNNING


def test_a_workspace_stop_holds_that_workspace_only_and_outlives_a_global_one(
    scheduler: Scheduler,
) -> None:
    held, free = scheduler.start("team-a"), scheduler.start("team-b")
    scheduler.on("team-a")
    scheduler.step()
    assert scheduler.status(held) is RunStatus.PAUSED
    assert scheduler.status(free) is RunStatus.RUNNING
    assert scheduler.gauge("workspace:team-a") == 1

    scheduler.on()  # global too: team-b pauses
    scheduler.step()
    assert scheduler.status(free) is RunStatus.PAUSED

    scheduler.off()  # global lifted: team-b resumes, team-a is still held by its own stop
    scheduler.step()
    assert scheduler.status(free) is RunStatus.RUNNING
    assert scheduler.status(held) is RunStatus.PAUSED

    scheduler.off("team-a")
    scheduler.step()
    assert scheduler.status(held) is RunStatus.RUNNING
    assert scheduler.gauge("workspace:team-a") == 0


def test_a_run_paused_by_a_global_stop_is_handed_on_to_its_workspace_stop(
    scheduler: Scheduler,
) -> None:
    run_id = scheduler.start("team-a")
    scheduler.on()
    scheduler.step()
    scheduler.on("team-a")
    scheduler.off()
    scheduler.step()
    assert scheduler.status(run_id) is RunStatus.PAUSED  # team-a's stop holds it now
    scheduler.off("team-a")
    scheduler.step()
    assert scheduler.status(run_id) is RunStatus.RUNNING


# -- the commands' rules ------------------------------------------------------------------------


def test_on_twice_keeps_the_first_stop_and_off_without_a_stop_is_refused(
    scheduler: Scheduler,
) -> None:
    scheduler.on()
    with scheduler.store.unit_of_work() as uow:
        stop, new = set_stop(
            uow, None, reason="again", terminate=True, by="cli:bo", now=scheduler.clock()
        )
    assert not new
    assert (stop.reason, stop.set_by, stop.terminate) == ("bad deploy", "cli:ana", True)

    scheduler.off()
    with scheduler.store.unit_of_work() as uow, pytest.raises(NoEmergencyStop) as refused:
        lift(uow, None, by="cli:bo", now=scheduler.clock())
    assert str(refused.value) == "no emergency stop holds globally"
    scheduler.on()
    with scheduler.store.unit_of_work() as uow, pytest.raises(NoEmergencyStop) as refused:
        lift(uow, "team-a", by="cli:bo", now=scheduler.clock())
    assert str(refused.value) == (
        "no emergency stop holds workspace team-a; the global one holds it: lift that one "
        "(without --workspace)"
    )
    with scheduler.store.snapshot() as uow:
        history = uow.emergency_stops(lifted=True)
    assert [(s.reason, s.lifted_by, s.lift_reason) for s in history] == [
        ("bad deploy", None, None),
        ("bad deploy", "cli:bo", "fixed"),
    ]


def test_the_setting_holds_a_global_stop_that_off_cannot_lift_where_it_is_set(
    store: Store, clock: FakeClock
) -> None:
    scheduler = make_scheduler(store, clock, Settings(emergency_stop="frozen for the audit"))
    run_id = scheduler.start()
    scheduler.step()

    assert scheduler.status(run_id) is RunStatus.PAUSED
    with store.snapshot() as uow:
        [stop] = uow.emergency_stops()
        [entry] = uow.list_audit(workspace=None, action="emergency_stop.on")
    assert (stop.scope, stop.source, stop.set_by) == (
        StopScope.GLOBAL,
        StopSource.SETTING,
        SETTING_ACTOR,
    )
    assert stop.reason == "frozen for the audit"
    assert (entry.actor, entry.target) == (SETTING_ACTOR, "global")

    with store.unit_of_work() as uow, pytest.raises(StopPinned):
        lift(uow, None, by="cli:bo", now=clock(), setting="frozen for the audit")

    scheduler.off()  # lifted where the setting is not set: the scheduler sets it again
    scheduler.step()
    assert scheduler.status(run_id) is RunStatus.PAUSED
    with store.snapshot() as uow:
        assert len(uow.emergency_stops()) == 1


def test_an_emergency_stop_loss_is_not_counted_against_the_delivery_limit(
    scheduler: Scheduler,
) -> None:
    run_id = scheduler.start()
    for _ in range(3):
        scheduler.on()
        scheduler.step()
        scheduler.off()
        scheduler.step()
    statuses = [status for _, status, _ in scheduler.attempts(run_id)]
    assert statuses == [AttemptStatus.LOST] * 3 + [AttemptStatus.QUEUED]
    with scheduler.store.snapshot() as uow:
        assert uow.lost_attempt_counts(uow.list_attempts(run_id)) == {}


def test_setting_and_lifting_a_stop_wake_listening_schedulers_at_once(
    migrated_database_url: Callable[[str], str], clock: FakeClock
) -> None:
    """PostgreSQL ``NOTIFY``: a waiting scheduler step wakes and reads the stops again."""
    store = Store.open(migrated_database_url("postgresql"), clock=clock)
    wakeups = Wakeups()
    try:
        wakeups.listen(store.engine)
        for change in (set_stop, lift):
            with store.unit_of_work() as uow:
                if change is set_stop:
                    set_stop(uow, None, reason="r", terminate=False, by="cli:ana", now=clock())
                else:
                    lift(uow, None, by="cli:ana", now=clock())
            ready, _, _ = select.select(wakeups.waitables(), [], [], 10)
            assert ready, "no notice within 10 s"
            assert wakeups.clear()
            assert wakeups.take_stop_notice()
            assert not wakeups.take_stop_notice()  # taken once
    finally:
        wakeups.stop_listening()
        wakeups.close()
        store.close()
