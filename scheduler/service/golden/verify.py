"""Replaying a golden record: does the engine still make every decision it records?

The record carries its definition and its event log. Replaying the events through
``decide`` against that definition rebuilds the run, and from it the whole record
(:func:`~.record.golden_lines`): every line is compared with the file, field by field,
and every event's commands with the ones recorded. Because the core is pure (the clock
and the seed are inputs), an unchanged engine reproduces the record exactly; anything
else is named: the line, the field, what the record has and what the replay gives.

This is the second half of ``treadle golden verify``: the signature (``.signature``) is
checked first, so a record whose replay is compared is one nobody edited.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from treadle.common.errors import DefinitionError
from treadle.scheduler.core.state import initial_state
from treadle.scheduler.service.definitions import PinnedDefinition, pinned_from_documents
from treadle.scheduler.service.golden.document import GoldenFormatError, GoldenLine, GoldenRecord
from treadle.scheduler.service.golden.record import golden_lines
from treadle.scheduler.service.renderings.history import StoredRun
from treadle.scheduler.store import RecordedEvent
from treadle.scheduler.store.decision_codec import decode_event
from treadle.scheduler.store.errors import CodecError

#: Fields of an event line that are the record's input (the others are derived).
_EVENT_INPUTS = ("seq", "at", "event")


def replay_record(record: GoldenRecord) -> list[str]:
    """Every difference between ``record`` and its replay; empty when it replays exactly.

    :class:`GoldenFormatError` when the record cannot be replayed at all (its definition
    does not compile, an event does not decode).
    """
    run = stored_run_of(record)
    again = golden_lines(run)
    return _differences(record, again)


def stored_run_of(record: GoldenRecord) -> StoredRun:
    """The run ``record`` describes, rebuilt by replaying its events on its definition."""
    start_line = record.lines[0]
    pinned = definition_of(record)
    events = tuple(
        RecordedEvent(model.seq, _event(record, line), at, at)
        for line, model in record.events()
        for at in [record.time(line, "at") or _epoch()]
    )
    created = record.time(start_line, "created_at") or (events[0].at if events else _epoch())
    state = initial_state(record.start.run_id, pinned.ref, created, pinned.version)
    replayed = StoredRun(state, pinned, events)
    if replayed.decisions:
        state = replayed.decisions[-1].state
    return replace(replayed, state=state)


def definition_of(record: GoldenRecord) -> PinnedDefinition:
    """The definition ``record`` carries, compiled."""
    start = record.start
    where = f"{record.file}:{record.lines[0].number}: run_start field 'definition'"
    version = start.definition_version or 0
    try:
        return pinned_from_documents(
            str(start.definition.spec.get("ref", start.spec_id)),
            version,
            start.definition.spec,
            start.definition.routes,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise GoldenFormatError(f"{where}: spec.{field}: {first['msg']}") from None
    except (DefinitionError, ValueError, KeyError) as exc:
        raise GoldenFormatError(f"{where}: not a definition that compiles: {exc}") from None


def _event(record: GoldenRecord, line: GoldenLine) -> Any:
    try:
        return decode_event(line.data["event"])
    except (CodecError, TypeError, ValueError, KeyError) as exc:
        raise GoldenFormatError(
            f"{record.file}:{line.number}: event field 'event': not an event: {exc}"
        ) from None


def _differences(record: GoldenRecord, again: Sequence[Mapping[str, Any]]) -> list[str]:
    problems: list[str] = []
    given = list(record.lines)
    expected_steps = [line for line in again if line["type"] == "step"]
    given_steps = [line for line in given if line.kind == "step"]
    problems += _fields(record, given[0], again[0])
    for position in range(max(len(given_steps), len(expected_steps))):
        if position >= len(given_steps):
            step = expected_steps[position]
            problems.append(
                f"{record.file}: the replay has step {step['index']} ({step['step_id']}) "
                "that the record lacks"
            )
        elif position >= len(expected_steps):
            line = given_steps[position]
            problems.append(
                f"{record.file}:{line.number}: step {line.data.get('index')} "
                f"({line.data.get('step_id')}) is not in the replay"
            )
        else:
            problems += _fields(record, given_steps[position], expected_steps[position])
    replayed_events = [line for line in again if line["type"] == "event"]
    for (line, model), replayed in zip(record.events(), replayed_events, strict=True):
        produced = replayed["commands"]
        if _canonical(model.commands) != _canonical(produced):
            problems.append(
                f"{record.file}:{line.number}: event {model.seq} ({model.event.get('kind')}): "
                f"replay gave {_kinds(produced)}, the record has {_kinds(model.commands)}"
                + _first_difference(produced, model.commands)
            )
    problems += _fields(record, given[-1], again[-1])
    return problems


def _fields(record: GoldenRecord, line: GoldenLine, expected: Mapping[str, Any]) -> list[str]:
    """Each field of ``line`` that differs from the replay's ``expected`` line."""
    label = line.kind
    if line.kind == "step":
        label = f"step {line.data.get('index')} ({line.data.get('step_id')})"
    out = []
    for field in sorted(set(line.data) | set(expected)):
        if line.kind == "event" and field in _EVENT_INPUTS:
            continue
        if _canonical(line.data.get(field)) != _canonical(expected.get(field)):
            out.append(
                f"{record.file}:{line.number}: {label} field '{field}': the record has "
                f"{_short(line.data.get(field))}, the replay gives {_short(expected.get(field))}"
            )
    return out


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _short(value: Any, limit: int = 200) -> str:
    text = _canonical(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kinds(commands: Sequence[Mapping[str, Any]]) -> str:
    return "[" + ", ".join(str(c.get("kind")) for c in commands) + "]"


def _first_difference(
    produced: Sequence[Mapping[str, Any]], expected: Sequence[Mapping[str, Any]]
) -> str:
    for position, (mine, theirs) in enumerate(zip(produced, expected, strict=False)):
        if _canonical(mine) != _canonical(theirs):
            return f"; command {position + 1} differs: {_short(mine)} != {_short(theirs)}"
    return ""


def _epoch() -> datetime:
    return datetime.fromtimestamp(0, UTC)
