"""The codec turns every core type into JSON and back without losing anything."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treadle.common.limits import Limits
from treadle.common.messages import TaskDispatch
from treadle.common.statuses import InquiryStatus, RunStatus, TaskStatus
from treadle.scheduler.core import commands as cmd
from treadle.scheduler.core import events as ev
from treadle.scheduler.core.state import (
    Execution,
    Failure,
    RunContext,
    RunState,
    Timer,
    TimerKind,
    Unit,
    Units,
)
from treadle.scheduler.store import codec, decision_codec
from treadle.scheduler.store.errors import CodecError

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
)
core_fields = st.builds(
    codec.CoreFields,
    latest=st.dictionaries(ids, st.integers(1, 1000), max_size=4),
    active=st.dictionaries(st.integers(0, 100), st.integers(0, 100), max_size=4),
    joins=st.dictionaries(ids, st.lists(st.integers(1, 100), max_size=4).map(tuple), max_size=3),
    failures=st.dictionaries(
        st.integers(0, 100), st.lists(failures, max_size=2).map(tuple), max_size=3
    ),
    timers=st.lists(timers, max_size=3).map(lambda ts: {t.id: t for t in ts}),
    next_execution=st.integers(1, 10_000),
    uuid_counter=st.integers(0, 10_000),
    context_bytes=st.integers(0, 10**8),
)


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


@given(core_fields)
def test_core_fields_round_trip_with_int_keys_restored(core: codec.CoreFields) -> None:
    encoded = through_json(codec.encode_core(core))
    assert all(isinstance(key, str) for key in encoded["active"])
    decoded = codec.decode_core(encoded)
    assert decoded == core
    assert all(isinstance(key, int) for key in decoded.active)
    assert all(isinstance(key, int) for key in decoded.failures)


@given(executions)
@settings(max_examples=60)
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
    stored = set(codec.run_to_row(RunState("r", "w"))) | set(
        codec.encode_core(codec.core_fields(RunState("r", "w")))
    )
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


# --- events and commands -------------------------------------------------------------------

EVENTS: list[ev.Event] = [
    ev.RunRequested(
        context=RunContext(parameters={"n": 1}, secrets=("x",), limits=Limits(max_depth=3))
    ),
    ev.TaskSucceeded(attempt_id="r/1/0/1", result={"a": [1, 2]}, result_bytes=12),
    ev.TaskSucceeded(attempt_id="r/1/0/2", result=None, result_bytes=None),
    ev.TaskFailed(attempt_id="r/1/0/1", error={"type": "E", "message": "m"}),
    ev.TaskTimedOut(attempt_id="r/1/0/1", error={"type": "Timeout", "message": "slow"}),
    ev.TimerFired(timer_id="r/1/retry"),
    ev.InquiryAnswered(inquiry_id="iq_1", response={"ok": True}, responder="ada"),
    ev.EventReceived(event_id="e1", type="push", subject="repo", data={"sha": "abc"}),
    ev.PauseRequested(),
    ev.ResumeRequested(),
    ev.CancelRequested(reason="operator"),
    ev.RetryRequested(),
    ev.CompensateRequested(),
    ev.ChildRunPaused(child_run_id="r.1.0.1"),
]


def test_every_event_kind_is_covered() -> None:
    assert {e.kind for e in EVENTS} == set(ev.EVENT_TYPES)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.kind)
def test_event_round_trips(event: ev.Event) -> None:
    encoded = through_json(decision_codec.encode_event(event))
    assert encoded["kind"] == event.kind
    assert decision_codec.decode_event(encoded) == event


COMMANDS: list[cmd.Command] = [
    cmd.DispatchTask(
        TaskDispatch(
            attempt_id="r/1/0/1",
            run_id="r",
            task="t",
            execution=1,
            attempt=1,
            action_ref="core.echo",
            input={"message": "hi"},
            timeout_seconds=2.5,
        ),
        queue="gpu",
    ),
    cmd.CancelTask(attempt_id="r/1/0/1"),
    cmd.StartChildRun("r.1.0.1", "examples.child", {"x": 1}, "r/1/0/1", 2),
    cmd.CancelChildRun("r.1.0.1"),
    cmd.ScheduleTimer("r/1/retry", T0, TimerKind.RETRY),
    cmd.CancelTimer("r/1/retry"),
    cmd.OpenInquiry("iq_1", "r/1/0/1", "approve", "Deploy?", {"type": "object"}, ["ops"], T0),
    cmd.CloseInquiry("iq_1", InquiryStatus.TIMED_OUT),
    cmd.EmitLifecycleEvent("t", 1, TaskStatus.RUNNING, T0),
    cmd.CompleteRun(RunStatus.SUCCEEDED, {"out": 1}, None, "p/1/0/1", {"k": "v"}),
]


def test_every_command_kind_is_covered() -> None:
    assert {c.kind for c in COMMANDS} == set(decision_codec.COMMAND_TYPES)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.kind)
def test_command_round_trips(command: cmd.Command) -> None:
    assert (
        decision_codec.decode_command(through_json(decision_codec.encode_command(command)))
        == command
    )


def test_unknown_kinds_are_refused_with_the_kind_named() -> None:
    with pytest.raises(CodecError, match="'task_exploded'"):
        decision_codec.decode_event({"kind": "task_exploded"})
    with pytest.raises(CodecError, match="'launch_rocket'"):
        decision_codec.decode_command({"kind": "launch_rocket"})
    with pytest.raises(CodecError, match="unknown fields"):
        decision_codec.decode_event({"kind": "timer_fired", "timer_id": "t", "colour": "red"})


def test_datetimes_are_utc_iso_strings_and_naive_ones_are_refused() -> None:
    local = datetime(2024, 5, 1, 17, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert codec.encode_datetime(local) == "2024-05-01T12:00:00+00:00"
    assert codec.decode_datetime("2024-05-01T12:00:00+00:00") == T0
    assert codec.decode_datetime("2024-05-01T12:00:00+00:00").tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        codec.encode_datetime(datetime(2024, 5, 1))
