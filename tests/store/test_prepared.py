"""A step's statements run as server-side prepared statements on PostgreSQL (``prepared``).

Parsing and planning the step's two long statements cost the server more than running
them; prepared once per connection, each later step sends only ``EXECUTE``. These tests
watch what is sent on a real PostgreSQL, check that values of every kind the step sends
arrive intact, and that the setting turns it off (PgBouncer in transaction mode).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from treadle.common.statuses import AttemptStatus
from treadle.scheduler.core import events as ev
from treadle.scheduler.core.endings import AttemptEnding
from treadle.scheduler.store import Store
from treadle.scheduler.store.prepared import execute

from .conftest import T0
from .statement_log import sent_statements


@pytest.fixture
def postgres(pg_store: Store) -> Store:
    return pg_store


@pytest.fixture
def statements(pg_store: Store) -> Iterator[list[str]]:
    with sent_statements(pg_store.engine, as_prepared=True) as sent:
        yield sent


def step(store: Store, build, save_one, position: int) -> None:  # type: ignore[no-untyped-def]
    """One scheduler-like step: record a result, save a dispatch."""
    state = build.realistic_state(items=4)
    with store.unit_of_work() as uow:
        if position == 0:
            uow.insert_run(state)
        else:
            ending = AttemptEnding(
                f"run-1/2/{position - 1}/1", AttemptStatus.SUCCEEDED, finished_at=T0
            )
            assert uow.record_results([ending], lock=["run-1"]) == {ending.attempt_id}
        save_one(
            uow, state, state, [(ev.ResumeRequested(), T0)], [build.dispatch("run-1", 2, position)]
        )


def test_each_statement_is_prepared_once_per_connection_then_executed(
    postgres: Store, build, save_one, statements: list[str]
) -> None:
    for position in range(4):
        step(postgres, build, save_one, position)

    prepares = [s.split(" AS ")[0] for s in statements if s.startswith("PREPARE treadle_")]
    executes = [s.split("(")[0] for s in statements if s.startswith("EXECUTE treadle_")]
    assert len(prepares) == len(set(prepares))  # none twice on one connection
    assert {name.removeprefix("PREPARE ") for name in prepares} == {
        name.removeprefix("EXECUTE ") for name in executes
    }
    assert len(executes) > len(prepares)  # later steps only execute
    assert not [s for s in statements if s.startswith(("WITH w0 AS", "WITH locked AS"))]
    with postgres.unit_of_work() as uow:
        stored = uow.list_attempts("run-1")
    assert [(a.position, a.status) for a in stored] == [
        (0, AttemptStatus.SUCCEEDED),
        (1, AttemptStatus.SUCCEEDED),
        (2, AttemptStatus.SUCCEEDED),
        (3, AttemptStatus.QUEUED),
    ]


def test_a_new_connection_prepares_again(
    postgres: Store, build, save_one, statements: list[str]
) -> None:
    step(postgres, build, save_one, 0)
    postgres.engine.dispose()  # the pool's sessions are gone, and what they prepared
    statements.clear()
    step(postgres, build, save_one, 1)
    assert [s for s in statements if s.startswith("PREPARE treadle_")]
    with postgres.unit_of_work() as uow:
        assert [a.status for a in uow.list_attempts("run-1")][:1] == [AttemptStatus.SUCCEEDED]


def test_turned_off_the_statements_go_as_text(
    postgres: Store, build, save_one, statements: list[str]
) -> None:
    postgres.prepared_statements = False
    for position in range(2):
        step(postgres, build, save_one, position)
    assert not [s for s in statements if s.startswith(("PREPARE", "EXECUTE"))]
    assert [s for s in statements if s.startswith("WITH locked AS")]


def test_every_kind_of_value_arrives_as_sent(postgres: Store) -> None:
    statement = text(
        "SELECT CAST(:docs AS JSON[]), CAST(:names AS VARCHAR(32)[]), "
        "CAST(:none AS INTEGER[]), CAST(:empty AS VARCHAR[]), :plain"
    )
    params = {
        "docs": [json.dumps({"a": [1, "x"]}), None],
        "names": ["it's", "x,y"],
        "none": [None, None],
        "empty": [],
        "plain": "p",
    }
    with postgres.engine.begin() as connection:
        as_text = connection.execute(statement, params).one()
        first = execute(connection, statement, params, prepared=True).one()
        again = execute(connection, statement, params, prepared=True).one()
    assert first == again == as_text
    assert tuple(first) == ([{"a": [1, "x"]}, None], ["it's", "x,y"], [None, None], [], "p")
