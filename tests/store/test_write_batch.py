"""A save's writes reach PostgreSQL as one statement (``write_batch``).

Each statement is a round trip while the run's lock is held and its successor waits; a
chain's step saved five of them where one does. These tests watch the statements a save
sends on a real PostgreSQL and read back what it stored; SQLite keeps one per table.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from treadle.common.flow import ClaimKind, FlowClaim
from treadle.scheduler.core import events as ev
from treadle.scheduler.core.state import Units
from treadle.scheduler.service.commands import CommandHandlers
from treadle.scheduler.store import RunChange, Store
from treadle.scheduler.store.decision_codec import decode_command
from treadle.scheduler.store.models import (
    attempts,
    outbox,
    run_events,
    task_executions,
    task_units,
)

from .conftest import T0
from .statement_log import batch_parts


def inserted_run(store: Store, build):  # type: ignore[no-untyped-def]
    """A run mid-flight (a with_items execution of 10 units among others), inserted."""
    state = build.realistic_state(items=10)
    with store.unit_of_work() as uow:
        uow.insert_run(state)
    return state


def grown(build, state):  # type: ignore[no-untyped-def]
    """``state`` with its with_items execution grown by 4 units, 3 units changed and a new
    execution of 7 units: inserts and updates in both tables."""
    changed = build.change_units(state, 2, [1, 2, 3])
    more = Units([*changed.executions[2].units, *build.with_items_execution(2, "x", 4).units])
    added = build.with_items_execution(6, "second_fan_out", 7)
    executions = {**changed.executions, 2: replace(changed.executions[2], units=more), 6: added}
    return replace(changed, executions=executions, next_execution=7)


def test_a_save_sends_its_run_row_executions_units_and_events_as_one_statement(
    store: Store, build, save_one, statements: list[str]
) -> None:
    state = inserted_run(store, build)
    new = grown(build, state)
    logged = [(ev.ResumeRequested(), T0), (ev.PauseRequested(), T0 + timedelta(seconds=1))]
    statements.clear()
    with store.unit_of_work() as uow:
        save_one(uow, state, new, logged, [])

    writes = [s for s in statements if "task_units" in s or "UPDATE runs" in s]
    if store.engine.dialect.name == "postgresql":
        assert len(writes) == 1
        parts = batch_parts(writes[0])
        assert parts is not None
        assert [p.split(" (")[0].split(" AS ")[0] for p in parts] == [
            "UPDATE runs",
            "INSERT INTO task_executions",
            "INSERT INTO task_units",
            "INSERT INTO run_events",
        ]
        assert "pg_notify('treadle_run_changes'" in parts[0]  # the run's notice rides on it
        assert " ON CONFLICT " in parts[1]  # one execution inserted, one updated
        assert " ON CONFLICT " in parts[2]  # units appended and changed
    else:
        assert len(writes) > 1
    with store.unit_of_work() as uow:
        assert uow.load_run("run-1") == new
        assert [e.event for e in uow.list_events("run-1")] == [e for e, _ in logged]


def test_a_failing_part_fails_the_save_and_writes_none_of_it(store: Store, build, save_one) -> None:
    """An event whose number is taken (here: written behind the store's back) fails the
    whole statement; the executions and units of the same save are not written either."""
    state = inserted_run(store, build)
    with store.engine.begin() as connection:
        connection.execute(
            run_events.insert().values(
                run_id="run-1", seq=1, kind="pause_requested", payload=None, at=T0, recorded_at=T0
            )
        )
    new = grown(build, state)
    with pytest.raises(IntegrityError, match="run_events"), store.unit_of_work() as uow:
        save_one(uow, state, new, [(ev.ResumeRequested(), T0)], [])

    with store.engine.connect() as connection:
        executions = connection.execute(
            select(task_executions.c.execution_id).where(task_executions.c.run_id == "run-1")
        ).all()
        units = connection.execute(
            select(task_units.c.position).where(
                task_units.c.run_id == "run-1", task_units.c.execution_id == 6
            )
        ).all()
    assert 6 not in {row.execution_id for row in executions}
    assert units == []
    with store.unit_of_work() as uow:
        assert uow.load_run("run-1") == state


def test_a_dispatchs_attempt_row_goes_with_them(
    store: Store, build, save_one, statements: list[str]
) -> None:
    state = inserted_run(store, build)
    new = build.change_units(state, 2, [1])
    statements.clear()
    with store.unit_of_work() as uow:
        save_one(uow, state, new, [(ev.ResumeRequested(), T0)], [build.dispatch("run-1", 2, 0)])

    if store.engine.dialect.name == "postgresql":
        [batch] = [s for s in statements if s.startswith("WITH w0 AS (")]
        parts = batch_parts(batch)
        assert parts is not None
        assert parts[-2].startswith("INSERT INTO attempts")
        assert parts[-1].startswith("INSERT INTO outbox")
        assert not [
            s for s in statements if s.startswith(("INSERT INTO attempts", "INSERT INTO outbox"))
        ]
    with store.engine.connect() as connection:
        stored = connection.execute(
            select(attempts.c.status, attempts.c.queue).where(
                attempts.c.attempt_id == "run-1/2/0/1"
            )
        ).one()
    assert stored.status == "queued"


def test_each_held_dispatch_gets_the_id_of_its_own_outbox_row(
    store: Store, build, statements: list[str]
) -> None:
    """The outbox rows a scheduler publishes itself come back with their ids, which it
    marks sent after publishing: each id must be its own command's row, also when the
    insert rides last on the save's combined statement (PostgreSQL)."""
    state = inserted_run(store, build)
    commands = [build.dispatch("run-1", 2, position) for position in range(40)]
    statements.clear()
    with store.unit_of_work() as uow:
        versions = uow.lock_runs(["run-1"])
        change = RunChange(state, state, [(ev.ResumeRequested(), T0)], commands)
        saved = uow.save_runs(
            [change],
            versions,
            write_commands=CommandHandlers("treadle.tasks").write,
            hold_outgoing=timedelta(seconds=10),
        )

    assert [held.command for held in saved.held] == commands
    with store.engine.connect() as connection:
        rows = dict(connection.execute(select(outbox.c.id, outbox.c.payload)).all())
    for held in saved.held:
        stored = decode_command(json_payload(rows[held.outbox_id]))
        assert stored == held.command
    if store.engine.dialect.name == "postgresql":
        assert not [s for s in statements if s.startswith("INSERT INTO outbox")]
        [batch] = [s for s in statements if s.startswith("WITH w0 AS (")]
        parts = batch_parts(batch)
        assert parts is not None
        assert parts[-1].startswith("INSERT INTO outbox")


def json_payload(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else json.loads(str(value))  # type: ignore[return-value]


def test_with_a_flow_claim_the_attempts_are_written_before_the_gate_reads_them(
    store: Store, build, save_one, statements: list[str]
) -> None:
    """The gate counts the batch's own holders from the attempts table: they are written
    first, on their own, and the save's other writes before them."""
    state = inserted_run(store, build)
    slot = FlowClaim(kind=ClaimKind.CONCURRENCY, key="gpu", limit=1)
    first = replace(build.dispatch("run-1", 2, 0), claims=(slot,))
    second = replace(build.dispatch("run-1", 2, 1), claims=(slot,))
    statements.clear()
    with store.unit_of_work() as uow:
        save_one(uow, state, state, [(ev.ResumeRequested(), T0)], [first, second])

    inserts = [i for i, s in enumerate(statements) if s.startswith("INSERT INTO attempts")]
    assert len(inserts) == 1
    [events] = [i for i, s in enumerate(statements) if "INSERT INTO run_events" in s]
    assert events < inserts[0]
    with store.engine.connect() as connection:
        waiting = connection.execute(
            select(outbox.c.flow_holder).where(outbox.c.flow_key.is_not(None))
        ).scalars()
        assert list(waiting) == ["run-1/2/1/1"]
