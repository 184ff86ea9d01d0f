"""The store's codec for what the core hears and says: events (the run log) and commands.

Events are kept in ``run_events``; commands travel in ``outbox`` rows and in golden
records. Both are frozen dataclasses encoded as ``{"kind": <name>, <fields>}``, decoded by
the class each ``kind`` names and each field's type hint, with an exact inverse (tested).
The ``kind`` is the wire tag only: code never branches on it, it branches on the types.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any

from pydantic import BaseModel

from treadle.scheduler.core import commands as cmd
from treadle.scheduler.core.events import EVENT_TYPES, Event
from treadle.scheduler.core.state import RunContext
from treadle.scheduler.store.codec import (
    JSONDict,
    decode_context,
    decode_datetime,
    encode_value,
)
from treadle.scheduler.store.errors import CodecError

#: Every command class, by its ``kind`` (the tag its encoding carries). A test checks that
#: every subclass of ``Command`` is here and round-trips.
COMMAND_TYPES: Mapping[str, type[cmd.Command]] = {
    cls.kind: cls
    for cls in (
        cmd.DispatchTask,
        cmd.CancelTask,
        cmd.StartChildRun,
        cmd.CancelChildRun,
        cmd.PauseChildRun,
        cmd.ResumeChildRun,
        cmd.ReportPausedToParent,
        cmd.ReportEndToParent,
        cmd.ScheduleTimer,
        cmd.CancelTimer,
        cmd.OpenInquiry,
        cmd.CloseInquiry,
        cmd.AwaitEvent,
        cmd.StopAwaitingEvent,
        cmd.EmitLifecycleEvent,
        cmd.RunStatusChanged,
        cmd.CompleteRun,
    )
}


def _decode_as(hint: Any, value: Any) -> Any:
    """Turn the JSON ``value`` back into the type ``hint`` names (the inverse of encode_value)."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _decode_as(options[0], value) if len(options) == 1 else value
    if origin is tuple:
        args = typing.get_args(hint)
        inner = args[0] if args else Any
        return tuple(_decode_as(inner, item) for item in value)
    if hint is datetime:
        return decode_datetime(value)
    if hint is RunContext:
        return decode_context(value)
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return hint.model_validate(value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    return value


@cache
def _field_hints(cls: Any) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _encode_fields(obj: Any) -> JSONDict:
    return {f.name: encode_value(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def _decode_fields(cls: Any, data: Mapping[str, Any]) -> Any:
    hints = _field_hints(cls)
    unknown = set(data) - set(hints) - {"kind"}
    if unknown:
        raise CodecError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
    return cls(**{name: _decode_as(hints[name], data[name]) for name in hints if name in data})


# --- events and commands -------------------------------------------------------------------


def encode_event(event: Event) -> JSONDict:
    """``{"kind": ..., <fields>}``; the inverse is :func:`decode_event`."""
    return {"kind": event.kind, **_encode_fields(event)}


def decode_event(data: Mapping[str, Any]) -> Event:
    cls = EVENT_TYPES.get(data.get("kind", ""))
    if cls is None:
        raise CodecError(f"unknown event kind {data.get('kind')!r}")
    event: Event = _decode_fields(cls, data)
    return event


def encode_command(command: cmd.Command) -> JSONDict:
    """``{"kind": ..., <fields>}``; the inverse is :func:`decode_command`."""
    return {"kind": command.kind, **_encode_fields(command)}


def decode_command(data: Mapping[str, Any]) -> cmd.Command:
    cls = COMMAND_TYPES.get(data.get("kind", ""))
    if cls is None:
        raise CodecError(f"unknown command kind {data.get('kind')!r}")
    command: cmd.Command = _decode_fields(cls, data)
    return command
