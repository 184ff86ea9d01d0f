"""The questions every layer asks about a run, answered by the core once."""

from __future__ import annotations

from datetime import UTC, datetime

from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core.queries import current_unit, is_current, only_waits
from treadle.scheduler.core.state import (
    Execution,
    RunState,
    Timer,
    TimerKind,
    Unit,
    Units,
    evolve,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run(
    *units: Unit, status: RunStatus = RunStatus.RUNNING, timers: dict[str, Timer] | None = None
) -> RunState:
    execution = Execution(
        id=1, task="t", scope=0, status=TaskStatus.RUNNING, started_at=T0, units=Units(units)
    )
    return RunState(
        run_id="r", workflow="w", status=status, executions={1: execution}, timers=timers or {}
    )


def test_the_latest_attempt_of_a_running_or_waiting_unit_is_current() -> None:
    state = run(Unit(index=None, status=TaskStatus.RUNNING, attempt=2))
    found = current_unit(state, "r/1/0/2")
    assert found is not None
    assert found[1] == 0
    assert is_current(state, "r/1/0/2")
    assert is_current(run(Unit(index=None, status=TaskStatus.WAITING, attempt=1)), "r/1/0/1")


def test_other_attempts_runs_and_ended_units_are_not_current() -> None:
    state = run(Unit(index=None, status=TaskStatus.RUNNING, attempt=2))
    assert not is_current(state, "r/1/0/1")  # an earlier attempt
    assert not is_current(state, "other/1/0/2")  # another run's
    assert not is_current(state, "r/2/0/2")  # no such execution
    assert not is_current(state, "r/1/5/2")  # no such unit
    assert not is_current(state, "not an attempt id")
    assert not is_current(evolve(state, status=RunStatus.CANCELED), "r/1/0/2")
    done = run(Unit(index=None, status=TaskStatus.SUCCEEDED, attempt=2))
    assert not is_current(done, "r/1/0/2")
    scheduled = run(Unit(index=None, status=TaskStatus.SCHEDULED, attempt=2))
    assert not is_current(scheduled, "r/1/0/2")


def test_an_attempt_that_failed_with_a_retry_pending_is_not_current() -> None:
    retry = Timer(id="r/1/0/2/retry", kind=TimerKind.RETRY, fire_at=T0, execution=1, unit=0)
    unit = Unit(index=None, status=TaskStatus.RUNNING, attempt=2, timer=retry.id)
    assert not is_current(run(unit, timers={retry.id: retry}), "r/1/0/2")
    timeout = evolve(retry, id="r/1/0/2/timeout", kind=TimerKind.TIMEOUT)
    running = evolve(unit, timer=timeout.id)
    assert is_current(run(running, timers={timeout.id: timeout}), "r/1/0/2")


def no_children(_run_id: str) -> RunState | None:
    return None


def test_a_run_only_waits_when_something_waits_and_nothing_is_in_flight() -> None:
    assert only_waits(run(Unit(index=None, status=TaskStatus.WAITING, attempt=1)), no_children)
    busy = run(
        Unit(index=0, status=TaskStatus.WAITING, attempt=1),
        Unit(index=1, status=TaskStatus.RUNNING, attempt=1),
    )
    assert not only_waits(busy, no_children)  # an attempt is in flight
    assert not only_waits(run(), no_children)  # nothing waits
    ended = run(Unit(index=None, status=TaskStatus.WAITING, attempt=1), status=RunStatus.FAILED)
    assert not only_waits(ended, no_children)


def test_deadlines_do_not_count_as_work_but_retries_and_delays_do() -> None:
    waiting = Unit(index=None, status=TaskStatus.WAITING, attempt=1)
    deadline = Timer(id="d", kind=TimerKind.DEADLINE, fire_at=T0, execution=1, unit=0)
    assert only_waits(run(waiting, timers={"d": deadline}), no_children)
    delay = Timer(id="x", kind=TimerKind.DELAY, fire_at=T0, execution=2)
    assert not only_waits(run(waiting, timers={"x": delay}), no_children)


def test_a_running_child_run_counts_only_when_it_only_waits_itself() -> None:
    parent = run(Unit(index=None, status=TaskStatus.RUNNING, attempt=1, child_run_id="c"))
    child_waits = evolve(run(Unit(index=None, status=TaskStatus.WAITING, attempt=1)), run_id="c")
    child_works = evolve(run(Unit(index=None, status=TaskStatus.RUNNING, attempt=1)), run_id="c")
    assert only_waits(parent, {"c": child_waits}.get)
    assert not only_waits(parent, {"c": child_works}.get)
    assert not only_waits(parent, no_children)  # the child's start is still in flight
