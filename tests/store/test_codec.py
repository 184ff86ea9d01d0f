"""The codec turns every core type into JSON and back without losing anything."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treadle.common.budget import Budget, BudgetKind
from treadle.common.limits import Limits
from treadle.common.sandbox_policy import AOS_POLICY, PatternRule, SandboxPolicy
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core.budget_state import BudgetState, BudgetStop
from treadle.scheduler.core.state import (
    STORAGE,
    Deferred,
    DeferredKind,
    Execution,
    Failure,
    RunContext,
    RunState,
    Storage,
    Timer,
    TimerKind,
    Unit,
    Units,
)
from treadle.scheduler.store import codec

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def through_json(value: Any) -> Any:
    """What a JSON column gives back."""
    return json.loads(json.dumps(value))


# --- strategies ----------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=4)
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=7))]
)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=zones
)
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/._-", min_size=1, max_size=20)
task_statuses = st.sampled_from(list(TaskStatus))

units = st.builds(
    Unit,
    index=st.none() | st.integers(0, 10_000),
    item=json_values,
    status=task_statuses,
    attempt=st.integers(0, 50),
    result=json_values,
    error=st.none() | json_objects,
    started_at=st.none() | moments,
    finished_at=st.none() | moments,
    timer=st.none() | ids,
    inquiry_id=st.none() | ids,
    child_run_id=st.none() | ids,
    result_bytes=st.integers(0, 10**9),
)
executions = st.builds(
    Execution,
    id=st.integers(1, 10_000),
    task=ids,
    scope=st.integers(0, 100),
    status=task_statuses,
    started_at=moments,
    finished_at=st.none() | moments,
    units=st.lists(units, max_size=70).map(Units),
    with_items=st.booleans(),
    next_unit=st.integers(0, 100),
    in_flight=st.integers(0, 100),
    done=st.integers(0, 100),
    result=json_values,
    error=st.none() | json_objects,
    timer=st.none() | ids,
    inquiry_id=st.none() | ids,
    released_with=json_values,
)
timers = st.builds(
    Timer,
    id=ids,
    kind=st.sampled_from(list(TimerKind)),
    fire_at=moments,
    execution=st.integers(0, 1000),
    unit=st.none() | st.integers(0, 1000),
    attempt=st.integers(0, 20),
)
failures = st.builds(
    Failure,
    task=ids,
    execution=st.integers(1, 1000),
    status=task_statuses,
    error=st.none() | json_objects,
)
limits = st.builds(
    Limits,
    max_depth=st.integers(1, 50),
    max_task_executions=st.integers(1, 10_000),
    max_items=st.integers(1, 100_000),
    max_concurrency=st.integers(1, 5000),
    max_context_bytes=st.integers(1024, 10**9),
    max_payload_bytes=st.integers(1024, 10**9),
)
contexts = st.builds(
    RunContext,
    parameters=json_objects,
    config=json_objects,
    keystore=json_objects,
    identity=json_objects,
    secrets=st.lists(st.text(max_size=8), max_size=3).map(tuple),
    seed=st.integers(0, 2**63 - 1),
    limits=limits,
    depth=st.integers(0, 10),
    parent_run_id=st.none() | ids,
    parent_attempt_id=st.none() | ids,
    budget=st.sampled_from([None, Budget(cost_usd=5.5, wall_time=timedelta(minutes=3))]),
    budget_ceiling=st.sampled_from([None, Budget(attempts=10, soft_ratio=0.8)]),
    sandbox=st.sampled_from(
        [
            None,
            SandboxPolicy(),
            AOS_POLICY,
            SandboxPolicy(
                forbidden_actions=("core.shell",),
                patterns=(PatternRule.model_validate({"class": "sql", "pattern": "x"}),),
                literal_inputs=False,
            ),
        ]
    ),
)
deferred_items = st.builds(
    Deferred,
    kind=st.sampled_from(list(DeferredKind)),
    task=ids,
    scope=st.integers(0, 100),
    execution=st.integers(0, 1000),
    position=st.integers(0, 1000),
)
#: A random value for each field of RunState kept in the ``core`` column.
CORE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "latest": st.dictionaries(ids, st.integers(1, 1000), max_size=4),
    "active": st.dictionaries(st.integers(0, 100), st.integers(0, 100), max_size=4),
    "joins": st.dictionaries(ids, st.lists(st.integers(1, 100), max_size=4).map(tuple), max_size=3),
    "failures": st.dictionaries(
        st.integers(0, 100), st.lists(failures, max_size=2).map(tuple), max_size=3
    ),
    "held_failures": st.none()
    | st.dictionaries(st.integers(0, 100), st.lists(failures, max_size=2).map(tuple), max_size=2),
    "timers": st.lists(timers, max_size=3).map(lambda ts: {t.id: t for t in ts}),
    "next_execution": st.integers(1, 10_000),
    "uuid_counter": st.integers(0, 10_000),
    "context_bytes": st.integers(0, 10**8),
    "deferred": st.lists(deferred_items, max_size=3).map(tuple),
    "compensation": st.lists(st.integers(1, 1000), max_size=3).map(tuple),
    "paused_children": st.lists(ids, max_size=3).map(tuple),
    "budget": st.none()
    | st.builds(
        BudgetState,
        cost_usd=st.none() | st.floats(0, 1e6),
        wall_time_seconds=st.none() | st.floats(1, 1e6),
        attempts=st.none() | st.integers(1, 1000),
        spent_usd=st.floats(0, 1e6),
        attempts_made=st.integers(0, 1000),
        warned=st.lists(st.sampled_from(list(BudgetKind)), max_size=2).map(tuple),
        stop=st.none()
        | st.builds(
            BudgetStop,
            kind=st.sampled_from(list(BudgetKind)),
            soft=st.booleans(),
            message=st.text(max_size=20),
            inquiry_id=st.none() | ids,
        ),
        held=st.lists(st.integers(1, 100), max_size=2).map(tuple),
    ),
}
#: Runs whose fields kept in the ``core`` column are random (the others are defaults).
core_states = st.builds(RunState, run_id=st.just("r"), workflow=st.just("w"), **CORE_FIELDS)


# --- round trips ---------------------------------------------------------------------------


@given(contexts)
def test_run_context_round_trips(context: RunContext) -> None:
    assert codec.decode_context(through_json(codec.encode_context(context))) == context


@given(timers)
def test_timer_round_trips(timer: Timer) -> None:
    assert codec.decode_timer(through_json(codec.encode_timer(timer))) == timer


@given(failures)
def test_failure_round_trips(failure: Failure) -> None:
    assert codec.decode_failure(through_json(codec.encode_failure(failure))) == failure


@given(core_states)
def test_core_fields_round_trip_with_int_keys_restored(core: RunState) -> None:
    encoded = through_json(codec.encode_core(core))
    assert all(isinstance(key, str) for key in encoded["active"])
    decoded = RunState("r", "w", **codec.decode_core(encoded))
    assert decoded == core
    assert all(isinstance(key, int) for key in decoded.active)
    assert all(isinstance(key, int) for key in decoded.failures)


@given(executions)
# Drawing an execution with many units is slow on a busy machine; that is not under test.
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
def test_execution_and_units_round_trip_as_rows(execution: Execution) -> None:
    row = codec.execution_to_row("run-1", execution)
    assert row["unit_count"] == len(execution.units)
    unit_rows = [
        codec.unit_to_row("run-1", execution.id, position, unit)
        for position, unit in enumerate(execution.units)
    ]
    assert [r["position"] for r in unit_rows] == list(range(len(execution.units)))
    restored = codec.execution_from_row(row, [codec.unit_from_row(r) for r in unit_rows])
    assert restored == execution
    assert isinstance(restored.units, Units)


def test_rows_cover_every_field_of_execution_and_unit() -> None:
    """A field added to the core's dataclasses must get a column (or this test fails)."""
    execution_fields = {f.name for f in dataclasses.fields(Execution)} - {"id", "units"}
    row = codec.execution_to_row("r", Execution(1, "t", 0, TaskStatus.RUNNING, T0))
    assert execution_fields <= set(row)
    unit_fields = {f.name for f in dataclasses.fields(Unit)} - {"index"}
    assert unit_fields <= set(codec.unit_to_row("r", 1, 0, Unit(index=None)))
    state_fields = {f.name for f in dataclasses.fields(RunState)}
    # optional fields set: None is left out
    every = RunState("r", "w", budget=BudgetState(), held_failures={})
    stored = set(codec.run_to_row(every)) | set(codec.encode_core(every))
    assert state_fields - {"run_id", "executions"} <= stored


def test_run_row_round_trips() -> None:
    state = RunState(
        run_id="r",
        workflow="w",
        status=RunStatus.RUNNING,
        context=RunContext(parameters={"a": 1}, depth=2, parent_run_id="p"),
        created_at=T0,
        started_at=T0,
        vars={"x": [1, 2]},
        latest={"t": 1},
        active={0: 1},
        joins={"j": (1,)},
        failures={0: (Failure("t", 1, TaskStatus.FAILED, None),)},
        timers={"t1": Timer("t1", TimerKind.DELAY, T0, 1)},
        next_execution=2,
        uuid_counter=3,
        context_bytes=10,
        output={"o": 1},
        error={"type": "E", "message": "m"},
        paused_children=("r.1.0.1",),
    )
    row = codec.run_to_row(state)
    for key in ("context", "vars", "core", "output", "error"):
        row[key] = through_json(row[key])
    assert row["depth"] == 2
    assert row["parent_run_id"] == "p"
    assert codec.run_from_row(row, {}) == state


#: A random value for every field of RunState but ``executions`` (rows of their own).
RUN_STATE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "run_id": ids,
    "workflow": ids,
    "definition_version": st.none() | st.integers(1, 50),
    "workspace": ids,
    "status": st.sampled_from(list(RunStatus)),
    "context": contexts,
    "created_at": st.none() | moments,
    "started_at": st.none() | moments,
    "finished_at": st.none() | moments,
    "vars": json_objects,
    "output": json_values,
    "error": st.none() | json_objects,
    **CORE_FIELDS,
}
run_states = st.builds(RunState, **RUN_STATE_FIELDS)


def as_stored(row: dict[str, Any]) -> dict[str, Any]:
    """What reading the row back gives: its JSON columns through JSON."""
    return {
        key: through_json(value) if key in ("context", "vars", "core", "output", "error") else value
        for key, value in row.items()
    }


def test_the_run_state_strategy_sets_every_field() -> None:
    every = {f.name for f in dataclasses.fields(RunState)} - {"executions"}
    assert set(RUN_STATE_FIELDS) == every


@given(run_states)
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
def test_every_run_state_field_round_trips_through_the_row(state: RunState) -> None:
    """Whatever field RunState declares is written and read back: a field added without a
    way to store it (or stored lossily) fails here."""
    row = as_stored(codec.run_to_row(state))
    assert codec.run_from_row(row, {}) == state
    assert codec.changed_run_columns(None, state) == {k: v for k, v in row.items() if k != "id"}


def test_every_run_state_field_says_where_it_is_stored() -> None:
    for f in dataclasses.fields(RunState):
        assert isinstance(f.metadata.get(STORAGE), Storage), f.name


def test_the_core_column_keeps_the_format_existing_databases_hold() -> None:
    state = RunState(
        "r",
        "w",
        latest={"t": 1},
        active={0: 2, 5: 1},
        joins={"0:j": (1, 3)},
        failures={5: (Failure("t", 4, TaskStatus.TIMED_OUT, {"message": "m"}),)},
        timers={"x": Timer("x", TimerKind.RETRY, T0, 4, unit=2, attempt=1)},
        next_execution=6,
        uuid_counter=7,
        context_bytes=8,
        deferred=(Deferred(DeferredKind.FILL, execution=4),),
        compensation=(3, 1),
        paused_children=("r.1.0.1",),
    )
    assert json.dumps(codec.encode_core(state)) == (
        '{"latest": {"t": 1}, "active": {"0": 2, "5": 1}, "joins": {"0:j": [1, 3]}, '
        '"failures": {"5": [{"task": "t", "execution": 4, "status": "timed_out", '
        '"error": {"message": "m"}}]}, '
        '"timers": {"x": {"id": "x", "kind": "retry", "fire_at": "2024-05-01T12:00:00+00:00", '
        '"execution": 4, "unit": 2, "attempt": 1}}, '
        '"next_execution": 6, "uuid_counter": 7, "context_bytes": 8, '
        '"deferred": [{"kind": "fill", "task": "", "scope": 0, "execution": 4, "position": 0}], '
        '"compensation": [3, 1], "paused_children": ["r.1.0.1"]}'
    )


def test_a_core_column_written_before_newer_fields_existed_still_loads() -> None:
    old = {"latest": {"t": "1"}, "active": {"0": 1}, "joins": {}, "failures": {}, "timers": {}}
    decoded = codec.decode_core({**old, "next_execution": 2, "uuid_counter": 0})
    assert RunState("r", "w", **decoded) == RunState(
        "r", "w", latest={"t": 1}, active={0: 1}, next_execution=2
    )
    assert codec.decode_core({}) == codec.decode_core(codec.encode_core(RunState("r", "w")))


def test_a_save_writes_only_the_columns_whose_fields_changed() -> None:
    state = RunState("r", "w", status=RunStatus.RUNNING, created_at=T0, started_at=T0)
    assert "id" not in codec.changed_run_columns(None, state)
    assert codec.changed_run_columns(state, state) == {}
    assert set(codec.changed_run_columns(state, dataclasses.replace(state, vars={"a": 1}))) == {
        "vars"
    }
    moved = dataclasses.replace(state, context=RunContext(depth=1, parent_run_id="p"))
    assert codec.changed_run_columns(state, moved) == {
        "context": codec.encode_context(moved.context),
        "depth": 1,
        "parent_run_id": "p",
        "parent_attempt_id": None,
    }
    ended = dataclasses.replace(state, status=RunStatus.FAILED, finished_at=T0, uuid_counter=1)
    assert codec.changed_run_columns(state, ended) == {
        "status": "failed",
        "finished_at": T0,
        "core": codec.encode_core(ended),
    }


# --- events and commands -------------------------------------------------------------------


def test_datetimes_are_utc_iso_strings_and_naive_ones_are_refused() -> None:
    local = datetime(2024, 5, 1, 17, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert codec.encode_datetime(local) == "2024-05-01T12:00:00+00:00"
    assert codec.decode_datetime("2024-05-01T12:00:00+00:00") == T0
    assert codec.decode_datetime("2024-05-01T12:00:00+00:00").tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        codec.encode_datetime(datetime(2024, 5, 1))
