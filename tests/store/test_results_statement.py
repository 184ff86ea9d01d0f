"""A step's results are recorded, its runs locked and its last publish marked by one
statement on PostgreSQL (``results_statement``), keeping the lock order runs -> attempts.

Each statement is a round trip while the run's successor waits; these tests watch what a
settle sends on a real database and check that the lock order every transaction keeps
(runs in id order, then attempt rows) still holds inside the one statement.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from treadle.common.statuses import AttemptStatus
from treadle.scheduler.core import events as ev
from treadle.scheduler.core.endings import AttemptEnding
from treadle.scheduler.store import Store

from .conftest import T0

ATTEMPT = "run-1/2/0/1"


@pytest.fixture
def open_attempt(store: Store, build, save_one) -> str:  # type: ignore[no-untyped-def]
    """A stored run with one queued attempt; its id."""
    state = build.realistic_state(items=4)
    with store.unit_of_work() as uow:
        uow.insert_run(state)
    with store.unit_of_work() as uow:
        save_one(uow, state, state, [(ev.ResumeRequested(), T0)], [build.dispatch("run-1", 2, 0)])
    return ATTEMPT


def succeeded(attempt_id: str) -> AttemptEnding:
    return AttemptEnding(attempt_id, AttemptStatus.SUCCEEDED, worker="w1", finished_at=T0)


def test_recording_results_locks_their_runs_in_the_same_statement(
    store: Store, open_attempt: str, statements: list[str]
) -> None:
    statements.clear()
    with store.unit_of_work() as uow:
        fresh = uow.record_results([succeeded(open_attempt)], lock=["run-1"])
        versions = uow.lock_runs(["run-1"])  # held already: no statement
        sent = list(statements)

    assert fresh == {open_attempt}
    with store.unit_of_work() as uow:
        assert versions == uow.lock_runs(["run-1"])
    if store.engine.dialect.name == "postgresql":
        [statement] = sent
        assert statement.startswith("WITH locked AS MATERIALIZED (SELECT id, version")
        assert "FOR UPDATE" in statement
        assert "UPDATE attempts" in statement
    else:  # the run read first (SQLite's write lock serialises), then the attempts
        kinds = [s.split(" FROM ")[0] for s in sent if s.startswith(("SELECT runs", "UPDATE"))]
        assert kinds[0] == "SELECT runs.id, runs.version, runs.last_seq"
        assert [k.split(" SET ")[0] for k in kinds[1:]] == ["UPDATE attempts"]


def test_a_run_already_held_is_not_locked_again(
    store: Store, open_attempt: str, statements: list[str]
) -> None:
    with store.unit_of_work() as uow:
        uow.lock_runs(["run-1"])
        statements.clear()
        assert uow.record_results([succeeded(open_attempt)], lock=["run-1"]) == {open_attempt}
        assert not [s for s in statements if "FOR UPDATE" in s]


def test_the_statement_touches_no_attempt_before_it_holds_the_runs(
    store: Store, open_attempt: str
) -> None:
    """While another transaction holds the run, recording its attempt's result waits, and
    meanwhile the attempt's row is free: the other transaction, which (like every
    transaction) locks runs before attempts, can take it and finish. Had the statement
    locked the attempt first, the two would deadlock."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no row locks: one unit of work writes at a time")
    recorded: list[set[str]] = []
    with store.engine.connect() as other:
        transaction = other.begin()
        other.execute(text("SELECT id FROM runs WHERE id = 'run-1' FOR UPDATE"))

        def record() -> None:
            with store.unit_of_work() as uow:
                recorded.append(uow.record_results([succeeded(open_attempt)], lock=["run-1"]))

        waiting = threading.Thread(target=record)
        waiting.start()
        try:
            waiting.join(1.0)  # bounded: it must still be waiting on the run's lock
            assert waiting.is_alive()
            assert recorded == []
            row = other.execute(
                text("SELECT status FROM attempts WHERE attempt_id = :id FOR UPDATE NOWAIT"),
                {"id": open_attempt},
            ).one()
            assert row.status == "queued"
        finally:
            transaction.commit()
            waiting.join(30)
    assert recorded == [{open_attempt}]
