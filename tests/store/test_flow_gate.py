"""The flow gate in the store: slots counted from living holders, rate windows, release order.

Dispatches are saved the way the scheduler saves them (``save_runs`` with the command
handlers); the gate decides in that transaction. On PostgreSQL two transactions race for a
key's last slot: the key's row lock makes the second see the first's slot.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from treadle.common.flow import ClaimKind, ClaimScope, FlowClaim
from treadle.common.statuses import AttemptStatus
from treadle.scheduler.core import events as ev
from treadle.scheduler.core.commands import DispatchTask, ScheduleTimer
from treadle.scheduler.core.state import TimerKind
from treadle.scheduler.store import Store
from treadle.scheduler.store.models import attempts, outbox, timers

ONE_SLOT = FlowClaim(kind=ClaimKind.CONCURRENCY, key="gpu", limit=1)
ONE_PER_MINUTE = FlowClaim(kind=ClaimKind.RATE, key="vendor", limit=1, period_seconds=60)


def stored_run(store: Store, build: Any, run_id: str) -> Any:
    state = replace(build.realistic_state(run_id, items=6))
    with store.unit_of_work() as uow:
        uow.insert_run(state)
    return state


def save_dispatch(uow: Any, save_one: Any, state: Any, command: DispatchTask, at: datetime) -> None:
    save_one(uow, state, state, [(ev.TimerFired(timer_id="x"), at)], [command])


def claimed(build: Any, run_id: str, *claims: FlowClaim, priority: int = 5, **kw: Any) -> Any:
    return replace(build.dispatch(run_id, 2, 0, **kw), claims=claims, priority=priority)


def held(store: Store) -> dict[str, str]:
    with store.unit_of_work() as uow:
        rows = uow.connection.execute(
            select(outbox.c.flow_holder, outbox.c.flow_wait).where(outbox.c.flow_key.is_not(None))
        ).all()
    return {row.flow_holder: row.flow_wait for row in rows}


def test_a_slot_counts_while_its_attempt_lives_and_frees_when_it_ends(
    store: Store, build: Any, save_one: Any
) -> None:
    a, b = stored_run(store, build, "run-a"), stored_run(store, build, "run-b")
    with store.unit_of_work() as uow:
        save_dispatch(uow, save_one, a, claimed(build, "run-a", ONE_SLOT), build.t0)
        save_dispatch(uow, save_one, b, claimed(build, "run-b", ONE_SLOT), build.t0)
    assert held(store) == {"run-b/2/0/1": "waits for concurrency key 'gpu' (limit 1 tasks): 1 held"}
    later = build.t0 + timedelta(seconds=5)
    with store.unit_of_work() as uow:
        assert uow.release_held(later) == 0  # run-a's attempt still lives
        uow.connection.execute(
            update(attempts)
            .where(attempts.c.attempt_id == "run-a/2/0/1")
            .values(status=AttemptStatus.SUCCEEDED.value)
        )
        assert uow.release_held(later) == 1
    assert held(store) == {}
    with store.unit_of_work() as uow:
        row = uow.connection.execute(
            select(outbox.c.created_at, outbox.c.held_until).where(
                outbox.c.run_id == "run-b", outbox.c.kind == "dispatch_task"
            )
        ).one()
        assert (row.created_at, row.held_until) == (later, None)  # for the relay, now
        assert "run-b" in {entry.run_id for entry in uow.claim_outbox(10)}


def test_a_held_attempts_timeout_starts_when_it_is_released(
    store: Store, build: Any, save_one: Any
) -> None:
    a, b = stored_run(store, build, "run-a"), stored_run(store, build, "run-b")
    with store.unit_of_work() as uow:
        save_dispatch(uow, save_one, a, claimed(build, "run-a", ONE_SLOT), build.t0)
    command = claimed(build, "run-b", ONE_SLOT, timeout=30.0)
    timer_id = "run-b/2/0/1/timeout"
    with store.unit_of_work() as uow:
        save_one(
            uow,
            b,
            b,
            [(ev.TimerFired(timer_id="x"), build.t0)],
            [
                command,
                ScheduleTimer(timer_id, build.t0 + timedelta(seconds=30), TimerKind.TIMEOUT),
            ],
        )
        stopped = uow.connection.execute(
            select(timers.c.fire_at).where(timers.c.id == timer_id)
        ).scalar_one()
        deadline = uow.connection.execute(
            select(attempts.c.deadline).where(attempts.c.attempt_id == "run-b/2/0/1")
        ).scalar_one()
    assert stopped.year == 9999  # the timeout does not run while the attempt waits
    assert deadline is None
    released_at = build.t0 + timedelta(minutes=10)
    with store.unit_of_work() as uow:
        uow.connection.execute(
            update(attempts)
            .where(attempts.c.attempt_id == "run-a/2/0/1")
            .values(status=AttemptStatus.CANCELED.value)
        )
        assert uow.release_held(released_at) == 1
        fire_at = uow.connection.execute(
            select(timers.c.fire_at).where(timers.c.id == timer_id)
        ).scalar_one()
        deadline = uow.connection.execute(
            select(attempts.c.deadline).where(attempts.c.attempt_id == "run-b/2/0/1")
        ).scalar_one()
    assert fire_at == deadline == released_at + timedelta(seconds=30)


def test_a_rate_window_holds_work_until_it_moves_on(
    store: Store, build: Any, save_one: Any
) -> None:
    a, b = stored_run(store, build, "run-a"), stored_run(store, build, "run-b")
    with store.unit_of_work() as uow:
        save_dispatch(uow, save_one, a, claimed(build, "run-a", ONE_PER_MINUTE), build.t0)
        save_dispatch(uow, save_one, b, claimed(build, "run-b", ONE_PER_MINUTE), build.t0)
    until = build.t0 + timedelta(minutes=1)
    assert held(store) == {
        "run-b/2/0/1": f"waits for rate limit 'vendor' (1 per 60 s) until {until.isoformat()}"
    }
    with store.unit_of_work() as uow:
        assert uow.release_held(build.t0 + timedelta(seconds=59)) == 0
        assert uow.release_held(until) == 1


def test_released_work_goes_by_priority_then_age(store: Store, build: Any, save_one: Any) -> None:
    runs = {name: stored_run(store, build, name) for name in ("holder", "old", "new", "urgent")}
    with store.unit_of_work() as uow:
        for name, priority in (("holder", 5), ("old", 5), ("new", 5), ("urgent", 9)):
            command = claimed(build, name, ONE_SLOT, priority=priority)
            save_dispatch(uow, save_one, runs[name], command, build.t0)
    order = []
    for step in range(3):
        before = set(held(store))
        with store.unit_of_work() as uow:  # the attempt holding the slot ends
            uow.connection.execute(
                update(attempts)
                .where(attempts.c.status == AttemptStatus.QUEUED.value)
                .where(attempts.c.attempt_id.not_in(list(before)))
                .values(status=AttemptStatus.SUCCEEDED.value)
            )
        with store.unit_of_work() as uow:
            assert uow.release_held(build.t0 + timedelta(seconds=step + 1)) == 1
        [released] = before - set(held(store))
        order.append(released.split("/")[0])
    assert order == ["urgent", "old", "new"]


def test_a_runs_key_is_held_once_by_the_run_for_all_its_tasks(
    store: Store, build: Any, save_one: Any
) -> None:
    per_run = FlowClaim(kind=ClaimKind.CONCURRENCY, key="account", limit=1, scope=ClaimScope.RUN)
    a, b = stored_run(store, build, "run-a"), stored_run(store, build, "run-b")
    with store.unit_of_work() as uow:
        save_dispatch(uow, save_one, a, claimed(build, "run-a", per_run), build.t0)
        second_task = replace(build.dispatch("run-a", 3, 0), claims=(per_run,))
        save_one(uow, a, a, [(ev.TimerFired(timer_id="y"), build.t0)], [second_task])
        save_dispatch(uow, save_one, b, claimed(build, "run-b", per_run), build.t0)
    assert list(held(store)) == ["run-b/2/0/1"]  # run-a's two tasks share its one slot


def test_two_transactions_racing_for_the_last_slot_give_it_out_once(
    pg_store: Store, build: Any, save_one: Any
) -> None:
    a, b = stored_run(pg_store, build, "run-a"), stored_run(pg_store, build, "run-b")
    first = pg_store.unit_of_work()
    uow = first.__enter__()
    save_dispatch(uow, save_one, a, claimed(build, "run-a", ONE_SLOT), build.t0)

    def second() -> None:
        with pg_store.unit_of_work() as other:
            save_dispatch(other, save_one, b, claimed(build, "run-b", ONE_SLOT), build.t0)

    racer = threading.Thread(target=second)
    racer.start()
    racer.join(0.5)
    assert racer.is_alive()  # waiting for the key, which the first transaction locked
    first.__exit__(None, None, None)  # commit: run-a holds the slot
    racer.join(10)
    assert not racer.is_alive()
    assert list(held(pg_store)) == ["run-b/2/0/1"]
