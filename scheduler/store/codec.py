"""Pure conversions between the core's dataclasses and JSON-able dicts or table rows.

The core's state is frozen dataclasses holding enums, datetimes, tuples, a pydantic model
(``Limits``) and mappings keyed by ``int``; JSON has none of those. Every conversion the
store makes lives here (executions and units in :mod:`.execution_codec`, re-exported), as
pure functions with an exact inverse (``decode(encode(x)) == x``, tested), so the
repositories only move dicts around. Datetimes inside JSON are ISO-8601 UTC
strings; datetimes in row dicts stay ``datetime`` (the column type handles them).
"""

from __future__ import annotations

import dataclasses
import operator
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel

from treadle.common.budget import Budget
from treadle.common.limits import Limits
from treadle.common.sandbox_policy import SandboxPolicy
from treadle.common.statuses import TaskStatus
from treadle.scheduler.core.state import (
    STORAGE,
    Execution,
    Failure,
    RunContext,
    RunState,
    Storage,
    Timer,
    TimerKind,
)
from treadle.scheduler.store.errors import CodecError
from treadle.scheduler.store.execution_codec import (
    execution_from_row,
    execution_to_row,
    unit_from_row,
    unit_to_row,
)
from treadle.scheduler.store.typed_json import Decode, Encode, Records, json_codec

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
        "secret_tag": context.secret_tag,
        # only when set, so the contexts of other runs encode as before
        **({"schedule": encode_value(context.schedule)} if context.schedule else {}),
        **({"priority": context.priority} if context.priority is not None else {}),
        **({"sandbox": encode_policy(context.sandbox)} if context.sandbox is not None else {}),
        **({"budget": encode_budget(context.budget)} if context.budget is not None else {}),
        **(
            {"budget_ceiling": encode_budget(context.budget_ceiling)}
            if context.budget_ceiling is not None
            else {}
        ),
    }


def encode_budget(budget: Budget) -> JSONDict:
    """A budget's limits that are set (``wall_time`` as an ISO 8601 duration)."""
    return budget.model_dump(mode="json", exclude_none=True)


def encode_policy(policy: SandboxPolicy) -> JSONDict:
    """A run's sandbox policy: what differs from the defaults (``{}``: the default one)."""
    return policy.model_dump(mode="json", exclude_defaults=True, by_alias=True)


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
        secret_tag=str(data.get("secret_tag") or ""),
        schedule=dict(data["schedule"]) if data.get("schedule") else None,
        priority=data.get("priority"),
        sandbox=SandboxPolicy.model_validate(data["sandbox"]) if "sandbox" in data else None,
        budget=Budget.model_validate(data["budget"]) if data.get("budget") else None,
        budget_ceiling=(
            Budget.model_validate(data["budget_ceiling"]) if data.get("budget_ceiling") else None
        ),
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


# --- RunState as the ``runs`` row and its "core" column ------------------------------------
# Derived once, at import, from ``dataclasses.fields(RunState)``: each field's Storage and
# type say how it is written, read and diffed, so no field of RunState is named here.


#: The records of the ``core`` column with codecs of their own (others, such as
#: ``Deferred``, are written field by field).
_RECORDS: Records = {
    Failure: (encode_failure, decode_failure),
    Timer: (encode_timer, decode_timer),
}


@dataclasses.dataclass(frozen=True, slots=True)
class _CoreField:
    """A field kept as a key of the ``core`` column."""

    name: str
    encode: Encode
    decode: Decode
    default: Callable[[], Any]


@dataclasses.dataclass(frozen=True, slots=True)
class _Column:
    """A field kept in a column (or columns) of its own: how it is written and read."""

    name: str
    storage: Storage
    write: Callable[[Any, JSONDict], None]
    read: Callable[[Mapping[Any, Any]], Any]


def _default_of(f: dataclasses.Field[Any]) -> Callable[[], Any]:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory
    default = f.default
    return lambda: default


def _column(f: dataclasses.Field[Any], storage: Storage, hint: Any) -> _Column:
    """The writer and reader of a field kept in the run row's own columns."""
    name = f.name
    column = "id" if storage is Storage.KEY else name
    default = _default_of(f)

    def write_as_is(value: Any, row: JSONDict) -> None:
        row[column] = value

    def read_as_is(row: Mapping[Any, Any]) -> Any:
        return row[column]

    def write_enum(value: Enum, row: JSONDict) -> None:
        row[column] = value.value

    def read_enum(row: Mapping[Any, Any]) -> Any:
        return hint(row[column])

    def write_json(value: Any, row: JSONDict) -> None:
        row[column] = encode_value(value)

    def read_json(row: Mapping[Any, Any]) -> Any:
        value = row[column]
        return default() if value is None else value

    def write_context(context: RunContext, row: JSONDict) -> None:
        row[column] = encode_context(context)
        # Copied out of the JSON so runs can be found by them (child runs, depth limits).
        row["depth"] = context.depth
        row["parent_run_id"] = context.parent_run_id
        row["parent_attempt_id"] = context.parent_attempt_id

    def read_context(row: Mapping[Any, Any]) -> RunContext:
        return decode_context(row[column] or {})

    if storage is Storage.ENUM:
        if not (isinstance(hint, type) and issubclass(hint, Enum)):
            raise TypeError(f"RunState.{name} is stored as an enum but is a {hint!r}")
        return _Column(name, storage, write_enum, read_enum)
    if storage is Storage.JSON:
        return _Column(name, storage, write_json, read_json)
    if storage is Storage.CONTEXT:
        return _Column(name, storage, write_context, read_context)
    return _Column(name, storage, write_as_is, read_as_is)


def _run_state_tables() -> tuple[tuple[_Column, ...], tuple[_CoreField, ...]]:
    hints = typing.get_type_hints(RunState)
    columns: list[_Column] = []
    core: list[_CoreField] = []
    for f in dataclasses.fields(RunState):
        storage = f.metadata.get(STORAGE)
        if storage is None:
            raise TypeError(f"RunState.{f.name} does not say where it is stored (metadata)")
        if storage is Storage.CORE:
            encode, decode = json_codec(hints[f.name], _RECORDS)
            core.append(_CoreField(f.name, encode, decode, _default_of(f)))
        elif storage is Storage.ROWS:
            if f.name != "executions":
                raise TypeError(f"RunState.{f.name}: only the executions have rows of their own")
        else:
            columns.append(_column(f, storage, hints[f.name]))
    return tuple(columns), tuple(core)


_COLUMNS, _CORE = _run_state_tables()
#: The columns a save may write (the key never changes).
_WRITABLE = tuple(c for c in _COLUMNS if c.storage is not Storage.KEY)
_read_core = operator.attrgetter(*(c.name for c in _CORE))


def encode_core(state: RunState) -> JSONDict:
    """The ``runs.core`` column of ``state``: its fields stored as ``Storage.CORE``. A field
    that is ``None`` (an optional one, such as a run's budget) is left out: it reads back
    as its default, and runs without it keep the format they had."""
    core: JSONDict = {}
    for c in _CORE:
        value = getattr(state, c.name)
        if value is not None:
            core[c.name] = c.encode(value)
    return core


def decode_core(data: Mapping[str, Any]) -> dict[str, Any]:
    """The ``RunState`` fields a ``core`` column holds; a key missing (or null) reads as
    the field's default, so rows written before a field existed still load."""
    values: dict[str, Any] = {}
    for c in _CORE:
        value = data.get(c.name)
        values[c.name] = c.default() if value is None else c.decode(value)
    return values


def run_to_row(state: RunState) -> JSONDict:
    """The ``runs`` row of ``state`` without bookkeeping (version, updated_at, keys)."""
    row: JSONDict = {}
    for column in _COLUMNS:
        column.write(getattr(state, column.name), row)
    row["core"] = encode_core(state)
    return row


def changed_run_columns(old: RunState | None, new: RunState) -> JSONDict:
    """The run-row columns a save of ``new`` writes: those whose field is not the very
    object it was in ``old`` (every one when ``old`` is ``None``), and ``core`` when any
    of its fields changed. The key (``id``) is never written."""
    if old is None:
        row = run_to_row(new)
        del row["id"]
        return row
    row = {}
    for column in _WRITABLE:
        value = getattr(new, column.name)
        if value is not getattr(old, column.name):
            column.write(value, row)
    if any(a is not b for a, b in zip(_read_core(new), _read_core(old), strict=True)):
        row["core"] = encode_core(new)
    return row


def run_from_row(row: Mapping[Any, Any], executions: Mapping[int, Execution]) -> RunState:
    values = {column.name: column.read(row) for column in _COLUMNS}
    values.update(decode_core(row["core"] or {}))
    return RunState(executions=executions, **values)


__all__ = [
    "CodecError",
    "changed_run_columns",
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
