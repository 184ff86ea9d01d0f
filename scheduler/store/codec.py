"""Pure conversions between the core's dataclasses and JSON-able dicts or table rows.

The core's state is frozen dataclasses holding enums, datetimes, tuples, a pydantic model
(``Limits``) and mappings keyed by ``int``; JSON has none of those. Every conversion the
store makes lives here, as pure functions with an exact inverse (``decode(encode(x)) == x``,
tested), so the repositories only move dicts around. Datetimes inside JSON are ISO-8601 UTC
strings; datetimes in row dicts stay ``datetime`` (the column type handles them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel

from treadle.common.limits import Limits
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core.state import (
    Deferred,
    DeferredKind,
    Execution,
    Failure,
    RunContext,
    RunState,
    Timer,
    TimerKind,
    Unit,
    Units,
)
from treadle.scheduler.store.errors import CodecError

JSONDict = dict[str, Any]

#: Every command class, by ``kind`` (the core has no registry of its own for commands).
# --- scalars -------------------------------------------------------------------------------


def encode_datetime(value: datetime) -> str:
    """ISO-8601 in UTC (``2024-05-01T12:00:00+00:00``); naive values are refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: the store keeps aware UTC times")
    return value.astimezone(UTC).isoformat()


def decode_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _opt_dict(value: Mapping[str, Any] | None) -> JSONDict | None:
    return None if value is None else dict(value)


def encode_value(value: Any) -> Any:
    """A JSON-able copy of ``value``: datetimes, enums, tuples, models and contexts converted."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return encode_datetime(value)
    if isinstance(value, RunContext):
        return encode_context(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(key): encode_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode_value(item) for item in value]
    return value


# --- run context ---------------------------------------------------------------------------


def encode_context(context: RunContext) -> JSONDict:
    return {
        "parameters": encode_value(context.parameters),
        "config": encode_value(context.config),
        "keystore": encode_value(context.keystore),
        "identity": encode_value(context.identity),
        "secrets": list(context.secrets),
        "seed": context.seed,
        "limits": context.limits.model_dump(mode="json"),
        "depth": context.depth,
        "parent_run_id": context.parent_run_id,
        "parent_attempt_id": context.parent_attempt_id,
    }


def decode_context(data: Mapping[str, Any]) -> RunContext:
    return RunContext(
        parameters=dict(data.get("parameters") or {}),
        config=dict(data.get("config") or {}),
        keystore=dict(data.get("keystore") or {}),
        identity=dict(data.get("identity") or {}),
        secrets=tuple(data.get("secrets") or ()),
        seed=int(data.get("seed", 0)),
        limits=Limits.model_validate(data.get("limits") or {}),
        depth=int(data.get("depth", 0)),
        parent_run_id=data.get("parent_run_id"),
        parent_attempt_id=data.get("parent_attempt_id"),
    )


# --- timers and failures -------------------------------------------------------------------


def encode_timer(timer: Timer) -> JSONDict:
    return {
        "id": timer.id,
        "kind": timer.kind.value,
        "fire_at": encode_datetime(timer.fire_at),
        "execution": timer.execution,
        "unit": timer.unit,
        "attempt": timer.attempt,
    }


def decode_timer(data: Mapping[str, Any]) -> Timer:
    return Timer(
        id=data["id"],
        kind=TimerKind(data["kind"]),
        fire_at=decode_datetime(data["fire_at"]),
        execution=int(data["execution"]),
        unit=data.get("unit"),
        attempt=int(data.get("attempt", 0)),
    )


def encode_failure(failure: Failure) -> JSONDict:
    return {
        "task": failure.task,
        "execution": failure.execution,
        "status": failure.status.value,
        "error": _opt_dict(failure.error),
    }


def decode_failure(data: Mapping[str, Any]) -> Failure:
    return Failure(
        task=data["task"],
        execution=int(data["execution"]),
        status=TaskStatus(data["status"]),
        error=_opt_dict(data.get("error")),
    )


# --- the scalar and mapping fields of RunState ("core" column) ------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class CoreFields:
    """The part of ``RunState`` stored in the ``runs.core`` column (all bookkeeping)."""

    latest: Mapping[str, int]
    active: Mapping[int, int]
    joins: Mapping[str, tuple[int, ...]]
    failures: Mapping[int, tuple[Failure, ...]]
    timers: Mapping[str, Timer]
    next_execution: int
    uuid_counter: int
    context_bytes: int
    deferred: tuple[Deferred, ...] = ()
    compensation: tuple[int, ...] = ()
    paused_children: tuple[str, ...] = ()


def encode_core(core: CoreFields) -> JSONDict:
    """JSON object keys are strings: int keys (``active``, ``failures``) are written as text."""
    return {
        "latest": dict(core.latest),
        "active": {str(scope): count for scope, count in core.active.items()},
        "joins": {task: list(ids) for task, ids in core.joins.items()},
        "failures": {
            str(scope): [encode_failure(f) for f in fs] for scope, fs in core.failures.items()
        },
        "timers": {timer_id: encode_timer(t) for timer_id, t in core.timers.items()},
        "next_execution": core.next_execution,
        "uuid_counter": core.uuid_counter,
        "context_bytes": core.context_bytes,
        "deferred": [
            {
                "kind": d.kind.value,
                "task": d.task,
                "scope": d.scope,
                "execution": d.execution,
                "position": d.position,
            }
            for d in core.deferred
        ],
        "compensation": list(core.compensation),
        "paused_children": list(core.paused_children),
    }


def decode_core(data: Mapping[str, Any]) -> CoreFields:
    return CoreFields(
        latest={task: int(eid) for task, eid in (data.get("latest") or {}).items()},
        active={int(scope): int(n) for scope, n in (data.get("active") or {}).items()},
        joins={task: tuple(int(i) for i in ids) for task, ids in (data.get("joins") or {}).items()},
        failures={
            int(scope): tuple(decode_failure(f) for f in fs)
            for scope, fs in (data.get("failures") or {}).items()
        },
        timers={tid: decode_timer(t) for tid, t in (data.get("timers") or {}).items()},
        next_execution=int(data.get("next_execution", 1)),
        uuid_counter=int(data.get("uuid_counter", 0)),
        context_bytes=int(data.get("context_bytes", 0)),
        deferred=tuple(
            Deferred(
                DeferredKind(d["kind"]),
                task=d.get("task", ""),
                scope=int(d.get("scope", 0)),
                execution=int(d.get("execution", 0)),
                position=int(d.get("position", 0)),
            )
            for d in data.get("deferred") or ()
        ),
        compensation=tuple(int(i) for i in data.get("compensation") or ()),
        paused_children=tuple(str(i) for i in data.get("paused_children") or ()),
    )


def core_fields(state: RunState) -> CoreFields:
    return CoreFields(
        latest=state.latest,
        active=state.active,
        joins=state.joins,
        failures=state.failures,
        timers=state.timers,
        next_execution=state.next_execution,
        uuid_counter=state.uuid_counter,
        context_bytes=state.context_bytes,
        deferred=state.deferred,
        compensation=state.compensation,
        paused_children=state.paused_children,
    )


# --- the run row ---------------------------------------------------------------------------


def run_to_row(state: RunState) -> JSONDict:
    """The ``runs`` row of ``state`` without bookkeeping (version, updated_at, keys)."""
    return {
        "id": state.run_id,
        "workflow": state.workflow,
        "definition_version": state.definition_version,
        "status": state.status.value,
        "depth": state.context.depth,
        "parent_run_id": state.context.parent_run_id,
        "parent_attempt_id": state.context.parent_attempt_id,
        "context": encode_context(state.context),
        "vars": encode_value(state.vars),
        "core": encode_core(core_fields(state)),
        "output": encode_value(state.output),
        "error": encode_value(state.error),
        "created_at": state.created_at,
        "started_at": state.started_at,
        "finished_at": state.finished_at,
    }


def run_from_row(row: Mapping[Any, Any], executions: Mapping[int, Execution]) -> RunState:
    core = decode_core(row["core"] or {})
    return RunState(
        run_id=row["id"],
        workflow=row["workflow"],
        definition_version=row["definition_version"],
        status=RunStatus(row["status"]),
        context=decode_context(row["context"] or {}),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        vars=dict(row["vars"] or {}),
        executions=executions,
        latest=core.latest,
        active=core.active,
        joins=core.joins,
        failures=core.failures,
        timers=core.timers,
        next_execution=core.next_execution,
        uuid_counter=core.uuid_counter,
        context_bytes=core.context_bytes,
        output=row["output"],
        error=row["error"],
        deferred=core.deferred,
        compensation=core.compensation,
        paused_children=core.paused_children,
    )


# --- executions and units as table rows ----------------------------------------------------


def execution_to_row(run_id: str, execution: Execution) -> JSONDict:
    """The ``task_executions`` row of ``execution`` (its units are rows of their own)."""
    return {
        "run_id": run_id,
        "execution_id": execution.id,
        "task": execution.task,
        "scope": execution.scope,
        "status": execution.status.value,
        "started_at": execution.started_at,
        "finished_at": execution.finished_at,
        "with_items": execution.with_items,
        "next_unit": execution.next_unit,
        "in_flight": execution.in_flight,
        "done": execution.done,
        "unit_count": len(execution.units),
        "result": execution.result,
        "error": _opt_dict(execution.error),
        "timer": execution.timer,
        "inquiry_id": execution.inquiry_id,
        "released_with": execution.released_with,
        "waits_for": _opt_dict(execution.waits_for),
        "compensates": execution.compensates,
    }


def unit_to_row(run_id: str, execution_id: int, position: int, unit: Unit) -> JSONDict:
    """The ``task_units`` row of the unit at ``position`` in its execution's ``units``."""
    return {
        "run_id": run_id,
        "execution_id": execution_id,
        "position": position,
        "item_index": unit.index,
        "item": unit.item,
        "status": unit.status.value,
        "attempt": unit.attempt,
        "result": unit.result,
        "error": _opt_dict(unit.error),
        "started_at": unit.started_at,
        "finished_at": unit.finished_at,
        "timer": unit.timer,
        "inquiry_id": unit.inquiry_id,
        "child_run_id": unit.child_run_id,
        "result_bytes": unit.result_bytes,
        "waits_for": _opt_dict(unit.waits_for),
        "retry_base": unit.retry_base,
    }


def unit_from_row(row: Mapping[Any, Any]) -> Unit:
    return Unit(
        index=row["item_index"],
        item=row["item"],
        status=TaskStatus(row["status"]),
        attempt=row["attempt"],
        result=row["result"],
        error=row["error"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        timer=row["timer"],
        inquiry_id=row["inquiry_id"],
        child_run_id=row["child_run_id"],
        result_bytes=row["result_bytes"],
        waits_for=row["waits_for"],
        retry_base=row["retry_base"],
    )


def execution_from_row(row: Mapping[Any, Any], units: Iterable[Unit]) -> Execution:
    return Execution(
        id=row["execution_id"],
        task=row["task"],
        scope=row["scope"],
        status=TaskStatus(row["status"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        units=Units(units),
        with_items=row["with_items"],
        next_unit=row["next_unit"],
        in_flight=row["in_flight"],
        done=row["done"],
        result=row["result"],
        error=row["error"],
        timer=row["timer"],
        inquiry_id=row["inquiry_id"],
        released_with=row["released_with"],
        waits_for=row["waits_for"],
        compensates=row["compensates"],
    )


__all__ = [
    "CodecError",
    "CoreFields",
    "core_fields",
    "decode_context",
    "decode_core",
    "decode_datetime",
    "decode_failure",
    "decode_timer",
    "encode_context",
    "encode_core",
    "encode_datetime",
    "encode_failure",
    "encode_timer",
    "encode_value",
    "execution_from_row",
    "execution_to_row",
    "run_from_row",
    "run_to_row",
    "unit_from_row",
    "unit_to_row",
]
