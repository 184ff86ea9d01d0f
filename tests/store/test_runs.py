"""Runs: saving and loading whole states, writing only what changed, versions and keys."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.exc import OperationalError

from treadle.common.errors import NotFound
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core import events as ev
from treadle.scheduler.core.state import RunContext, Units, initial_state
from treadle.scheduler.store import DuplicateRunError, Store, UnitOfWork
from treadle.scheduler.store.models import task_units


def test_a_realistic_state_survives_save_and_load(store: Store, build, save_one) -> None:
    state = build.realistic_state()
    with store.unit_of_work() as uow:
        uow.insert_run(state, definition_version=3)
    with store.unit_of_work() as uow:
        loaded = uow.load_run("run-1")
    state = replace(state, definition_version=3)  # insert_run(definition_version=) pins it
    assert loaded == state
    assert len(loaded.executions[2].units) == 100
    assert loaded.executions[2].units[0].finished_at.tzinfo is not None
    assert loaded.active == {0: 3, 4: 1}  # int keys restored
    assert loaded.failures[4][0].status is TaskStatus.FAILED

    later = build.change_units(state, 2, [2, 6])
    later = replace(later, status=RunStatus.SUCCEEDED, output={"done": True}, vars={"v": 1})
    with store.unit_of_work() as uow:
        version = save_one(uow, state, later, [], [])
    assert version == 2
    with store.unit_of_work() as uow:
        assert uow.load_run("run-1") == later


def test_only_changed_executions_and_units_are_written(
    store: Store, build, write_log, save_one
) -> None:
    state = build.realistic_state()
    with store.unit_of_work() as uow:
        uow.insert_run(state)
    # A sentinel only a rewrite of that row would erase: proves untouched rows stay untouched.
    with store.engine.begin() as connection:
        connection.execute(
            update(task_units)
            .where(task_units.c.execution_id == 2, task_units.c.position == 3)
            .values(timer="sentinel")
        )
    write_log.clear()

    new = build.change_units(state, 2, [10, 11, 12])
    with store.unit_of_work() as uow:
        save_one(uow, state, new, [], [])

    assert write_log.of("task_units") == {"update": 3}
    assert write_log.of("task_executions") == {"update": 1}
    assert write_log.of("runs") == {"update": 1}
    with store.engine.connect() as connection:
        sentinel = connection.execute(
            select(task_units.c.timer).where(
                task_units.c.execution_id == 2, task_units.c.position == 3
            )
        ).scalar_one()
    assert sentinel == "sentinel"

    write_log.clear()
    with store.unit_of_work() as uow:
        save_one(uow, new, replace(new, uuid_counter=99), [], [])
    assert "task_units" not in {table for _, table in write_log.rows}
    assert "task_executions" not in {table for _, table in write_log.rows}


def test_new_executions_and_appended_units_are_inserted(
    store: Store, build, write_log, save_one
) -> None:
    state = build.realistic_state(items=10)
    with store.unit_of_work() as uow:
        uow.insert_run(state)
    write_log.clear()
    grown = replace(
        state.executions[2],
        units=Units([*state.executions[2].units, *build.with_items_execution(2, "x", 4).units]),
    )
    added = build.with_items_execution(6, "second_fan_out", 7)
    new = replace(state, executions={**state.executions, 2: grown, 6: added}, next_execution=7)
    with store.unit_of_work() as uow:
        save_one(uow, state, new, [], [])
    assert write_log.of("task_units") == {"insert": 4 + 7}
    if store.engine.dialect.name == "postgresql":  # one statement inserts and updates
        assert write_log.of("task_executions") == {"upsert": 2}
    else:
        assert write_log.of("task_executions") == {"insert": 1, "update": 1}
    with store.unit_of_work() as uow:
        assert uow.load_run("run-1") == new


def test_a_5000_item_execution_with_50_changes_writes_50_unit_rows(
    store: Store, build, write_log, save_one
) -> None:
    state = build.realistic_state(items=5000)
    with store.unit_of_work() as uow:
        uow.insert_run(state)
    assert write_log.of("task_units") == {"insert": 5000 + 4}
    write_log.clear()
    new = build.change_units(state, 2, list(range(0, 5000, 100)))
    with store.unit_of_work() as uow:
        save_one(uow, state, new, [], [])
    assert write_log.of("task_units") == {"update": 50}
    assert write_log.of("task_executions") == {"update": 1}
    with store.unit_of_work() as uow:
        loaded = uow.load_run("run-1")
    assert loaded.executions[2].units[4900].result == {"changed": 4900}
    assert loaded == new


def test_saving_without_the_old_state_rewrites_all_executions(
    store: Store, build, save_one
) -> None:
    state = build.realistic_state(items=8)
    with store.unit_of_work() as uow:
        uow.insert_run(state)
    shrunk = replace(state, executions={1: state.executions[1]}, latest={"start": 1})
    with store.unit_of_work() as uow:
        save_one(uow, None, shrunk, [], [])
    with store.unit_of_work() as uow:
        assert uow.load_run("run-1") == shrunk


def test_events_are_appended_in_order_across_saves(store: Store, build, clock, save_one) -> None:
    state = build.realistic_state(items=2)
    t0 = build.t0
    with store.unit_of_work() as uow:
        uow.insert_run(state)
        save_one(
            uow,
            state,
            state,
            [(ev.RunRequested(context=RunContext(parameters={"a": 1})), t0)],
            [],
        )
    clock.advance(5)
    with store.unit_of_work() as uow:
        save_one(
            uow,
            state,
            state,
            [
                (ev.TaskSucceeded(attempt_id="run-1/1/0/1", result={"x": 1}), t0 + timedelta(1)),
                (ev.TimerFired(timer_id="run-1/2/2/2/retry"), t0 + timedelta(2)),
            ],
            [],
        )
    with store.unit_of_work() as uow:
        log = uow.list_events("run-1")
        tail = uow.list_events("run-1", after_seq=1)
    assert [entry.seq for entry in log] == [1, 2, 3]
    assert [entry.event.kind for entry in log] == ["run_requested", "task_succeeded", "timer_fired"]
    assert log[0].event == ev.RunRequested(context=RunContext(parameters={"a": 1}))
    assert log[2].at == t0 + timedelta(2)
    assert log[2].recorded_at == clock.now
    assert [entry.seq for entry in tail] == [2, 3]


def test_runs_held_by_a_transaction_are_read_together(store: Store, build, statements) -> None:
    # A scheduler's batch often names runs it has never seen: three statements for all of
    # them, not three per run, and each run exactly as load_run reads it.
    states = [build.realistic_state(f"run-{n}", items=3 + n) for n in range(3)]
    with store.unit_of_work() as uow:
        for state in states:
            uow.insert_run(state, definition_version=1)
    with store.unit_of_work() as uow:
        one_by_one = {s.run_id: uow.load_run(s.run_id) for s in states}
    with store.unit_of_work() as uow:
        uow.lock_runs([s.run_id for s in states])
        statements.clear()
        together = uow.load_runs(["run-2", "run-0", "run-1"])
        reads = list(statements)
    assert together == one_by_one
    assert list(together) == ["run-2", "run-0", "run-1"]
    assert len(reads) == 3, reads
    assert len(together["run-2"].executions[2].units) == 5


def test_runs_not_held_are_read_one_by_one_and_missing_ones_are_not_found(
    store: Store, build
) -> None:
    state = build.realistic_state("run-1", items=2)
    with store.unit_of_work() as uow:
        uow.insert_run(state, definition_version=1)
    with store.unit_of_work() as uow:
        assert uow.load_runs(["run-1"]) == {"run-1": uow.load_run("run-1")}  # not locked
        uow.lock_runs(["run-1"])
        with pytest.raises(NotFound, match="run nope not found"):
            uow.load_runs(["run-1", "nope"])


def test_unknown_runs_are_not_found(store: Store) -> None:
    with store.unit_of_work() as uow:
        with pytest.raises(NotFound, match="nope"):
            uow.load_run("nope")
        with pytest.raises(NotFound, match="nope"):
            uow.lock_run("nope")


def test_an_idempotency_key_starts_one_run_only(store: Store, build) -> None:
    with store.unit_of_work() as uow:
        uow.insert_run(initial_state("first", "wf", build.t0), idempotency_key="order-42")
    with pytest.raises(DuplicateRunError) as raised, store.unit_of_work() as uow:
        uow.insert_run(initial_state("second", "wf", build.t0), idempotency_key="order-42")
    assert raised.value.existing_run_id == "first"
    with store.unit_of_work() as uow:
        assert uow.find_run_by_idempotency_key("order-42") == "first"
        assert uow.find_run_by_idempotency_key("order-43") is None
        with pytest.raises(NotFound):
            uow.load_run("second")
        # the failed insert did not spoil the transaction it ran in
        uow.insert_run(initial_state("third", "wf", build.t0), idempotency_key="order-43")
        with pytest.raises(DuplicateRunError, match="already exists"):
            uow.insert_run(initial_state("third", "wf", build.t0))
        uow.insert_run(initial_state("fourth", "wf", build.t0), trigger_event_id="evt-1")
        with pytest.raises(DuplicateRunError, match="evt-1"):
            uow.insert_run(initial_state("fifth", "wf", build.t0), trigger_event_id="evt-1")
    with store.unit_of_work() as uow:
        assert {r.id for r in uow.list_runs()} == {"first", "third", "fourth"}


def test_runs_are_listed_newest_first_and_filtered(store: Store, build) -> None:
    t0 = build.t0
    with store.unit_of_work() as uow:
        for i, (workflow, status) in enumerate(
            [("a", RunStatus.SUCCEEDED), ("b", RunStatus.RUNNING), ("a", RunStatus.RUNNING)]
        ):
            state = replace(initial_state(f"r{i}", workflow, t0 + timedelta(i)), status=status)
            uow.insert_run(state)
        parent = build.realistic_state(run_id="child-1")
        uow.insert_run(replace(parent, created_at=t0 - timedelta(1)))
    with store.unit_of_work() as uow:
        assert [r.id for r in uow.list_runs()] == ["r2", "r1", "r0", "child-1"]
        assert [r.id for r in uow.list_runs(status=RunStatus.RUNNING)] == ["r2", "r1", "child-1"]
        assert [r.id for r in uow.list_runs(workflow="a")] == ["r2", "r0"]
        assert [r.id for r in uow.list_runs(limit=1)] == ["r2"]
        summary = uow.list_runs(workflow="examples.fan_out")[0]
        assert summary.parent_run_id == "parent-9"
        assert summary.status is RunStatus.RUNNING
        assert summary.created_at == t0 - timedelta(1)
        assert uow.child_runs("parent-9") == ["child-1"]
        assert uow.child_runs("r0") == []


def test_lock_run_holds_the_row_on_postgresql(pg_store: Store, build, clock) -> None:
    with pg_store.unit_of_work() as uow:
        uow.insert_run(build.realistic_state(items=1))
    with pg_store.unit_of_work() as holder:
        holder.lock_run("run-1")
        with pg_store.engine.connect() as other:
            other.execute(text("SET lock_timeout = '100ms'"))
            waiting = UnitOfWork(other, clock)
            with pytest.raises(OperationalError, match="lock timeout"):
                waiting.lock_run("run-1")
    with pg_store.unit_of_work() as uow:
        assert uow.lock_run("run-1") == 1


def test_a_run_read_while_a_writer_commits_is_one_version_not_a_torn_mix(
    pg_store: Store, build, save_one
) -> None:
    """Without a lock, a reader's statements see different commits; it must not mix them."""
    state = build.realistic_state(items=2)
    with pg_store.unit_of_work() as uow:
        uow.insert_run(state)
    ended = replace(
        build.change_units(state, 2, [0, 1]), status=RunStatus.SUCCEEDED, output={"done": 1}
    )
    commits: list[int] = []

    def commit_a_change_between_the_reads(conn, cursor, statement, *args) -> None:
        # The reader has read the run row; a scheduler now saves the run's last decision.
        if "FROM task_units" in statement and not commits:
            with pg_store.unit_of_work() as writer:
                commits.append(save_one(writer, state, ended, [], []))

    with pg_store.unit_of_work() as reader:
        event.listen(reader.connection, "before_cursor_execute", commit_a_change_between_the_reads)
        loaded = reader.load_run("run-1")
    assert commits == [2]
    assert loaded.status is RunStatus.SUCCEEDED
    assert loaded == ended
