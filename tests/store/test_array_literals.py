"""A step's column arrays go to PostgreSQL as array literals (``array_literals``).

Every value must arrive as it was sent, whatever its text holds (quotes, backslashes,
braces, commas, ``NULL`` as a word, blanks, any Unicode): checked against a real
PostgreSQL with generated values, through the same ``prepared.execute`` a step uses, both
prepared and as text. Kinds whose text is not certain are left to psycopg2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, create_engine, event, text

from treadle.scheduler.store.array_literals import (
    array_literal,
    array_parameters,
    with_array_literals,
)
from treadle.scheduler.store.prepared import execute
from treadle.testing import throwaway_postgres_database

texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
int4 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
moments = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=zones
)
SLOW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def connection() -> Iterator[Connection]:
    with throwaway_postgres_database("array_literals") as url:
        engine = create_engine(url)
        try:
            with engine.connect() as opened:
                yield opened
        finally:
            engine.dispose()


def round_trip(connection: Connection, kind: str, values: list[Any], *, prepared: bool) -> Any:
    statement = text(f"SELECT CAST(:values AS {kind}[])")
    try:
        [row] = execute(connection, statement, {"values": values}, prepared=prepared).all()
    finally:
        connection.rollback()  # (a failed example must not leave the next an aborted one)
    return row[0]


@SLOW
@given(values=st.lists(st.one_of(st.none(), texts), max_size=12), prepared=st.booleans())
def test_any_text_arrives_as_sent(
    connection: Connection, values: list[str | None], prepared: bool
) -> None:
    assert round_trip(connection, "VARCHAR", values, prepared=prepared) == values


@SLOW
@given(values=st.lists(st.one_of(st.none(), int4), max_size=12))
def test_integers_arrive_as_sent(connection: Connection, values: list[int | None]) -> None:
    assert round_trip(connection, "INTEGER", values, prepared=True) == values


@SLOW
@given(values=st.lists(st.one_of(st.none(), moments), max_size=8))
def test_moments_arrive_as_the_same_instants(
    connection: Connection, values: list[datetime | None]
) -> None:
    assert round_trip(connection, "TIMESTAMP WITH TIME ZONE", values, prepared=True) == values


@SLOW
@given(
    values=st.lists(
        st.one_of(
            st.none(),
            st.recursive(
                st.none() | st.booleans() | int4 | texts,
                lambda inner: (
                    st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3)
                ),
                max_leaves=6,
            ).map(json.dumps),
        ),
        max_size=6,
    )
)
def test_json_documents_arrive_as_sent(connection: Connection, values: list[str | None]) -> None:
    arrived = round_trip(connection, "JSON", values, prepared=True)
    assert arrived == [None if v is None else json.loads(v) for v in values]


def test_the_other_kinds_written_as_literals_arrive_as_sent(connection: Connection) -> None:
    assert round_trip(connection, "BOOLEAN", [True, None, False], prepared=True) == [
        True,
        None,
        False,
    ]
    assert round_trip(connection, "DATE", [date(2026, 12, 4), None], prepared=True) == [
        date(2026, 12, 4),
        None,
    ]
    assert round_trip(connection, "NUMERIC", [Decimal("-1.50"), None], prepared=True) == [
        Decimal("-1.50"),
        None,
    ]
    ids = [UUID("12345678-1234-5678-1234-567812345678")]
    assert round_trip(connection, "UUID", ids, prepared=True) == ids
    assert round_trip(connection, "VARCHAR", [], prepared=True) == []


def test_a_kind_without_a_certain_text_is_left_to_the_driver(connection: Connection) -> None:
    assert array_literal([1.5, 2]) is None
    assert array_literal([b"x"]) is None
    assert array_literal([Decimal("NaN")]) is None
    assert round_trip(connection, "FLOAT", [1.5, float("inf"), None], prepared=True) == [
        1.5,
        float("inf"),
        None,
    ]


def test_only_lists_cast_to_an_array_type_become_literals() -> None:
    sql = "SELECT CAST(:a AS VARCHAR(32)[]), CAST(:b AS INTEGER), :c, CAST(:d AS JSON[])"
    assert array_parameters(sql) == {"a", "d"}
    sent = with_array_literals(sql, {"a": ["x", None], "b": 1, "c": ["y"], "d": ("{}",)})
    assert sent == {"a": '{"x",NULL}', "b": 1, "c": ["y"], "d": '{"{}"}'}


def test_a_step_sends_its_arrays_as_literals(connection: Connection) -> None:
    seen: list[Any] = []

    def record(_c: object, _cur: object, _sql: str, parameters: Any, *_rest: object) -> None:
        seen.append(parameters)

    event.listen(connection, "before_cursor_execute", record)
    try:
        statement = text("SELECT * FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:n AS INTEGER[]))")
        rows = execute(connection, statement, {"ids": ["a", "b"], "n": [1, 2]}, prepared=True)
        assert [tuple(r) for r in rows] == [("a", 1), ("b", 2)]
        connection.rollback()
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert {"ids": '{"a","b"}', "n": "{1,2}"} in seen


def test_backslashes_survive_a_server_without_standard_conforming_strings(
    connection: Connection,
) -> None:
    values = ["a\\b", 'c"d', "e'f", '\\"', "{x,y}", "NULL", None]
    connection.exec_driver_sql("SET standard_conforming_strings = off")
    connection.commit()  # (a rollback would undo the SET)
    try:
        for prepared in (True, False):
            show = connection.exec_driver_sql("SHOW standard_conforming_strings").scalar()
            assert show == "off"
            assert round_trip(connection, "VARCHAR", values, prepared=prepared) == values
    finally:
        connection.exec_driver_sql("RESET standard_conforming_strings")
        connection.commit()
