"""Reading a golden record's JSON lines back, every problem named by line and field.

A record is ``run_start``, then ``step`` lines, then ``event`` lines, then ``run_end``,
nothing after it (``docs/determinism.md``). Each line is checked against the model of its
kind (no unknown fields, the right types); a file that is not such a record raises
:class:`GoldenFormatError` naming the file, the line and the field. Whether the values are
*true* is :mod:`.verify`'s question, and whether anyone changed them :mod:`.signature`'s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from treadle.common.errors import TreadleError
from treadle.scheduler.store.codec import decode_datetime

_ORDER = ("run_start", "step", "event", "run_end")


class GoldenFormatError(TreadleError):
    """The file is not a golden record (or not one this Treadle reads): where, and why."""


class _Line(BaseModel):
    """A line's model: its fields exactly (an unknown one is an error), read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DefinitionPart(_Line):
    """The definition a record replays against: canonical spec and action routes."""

    spec: dict[str, Any]
    routes: dict[str, dict[str, Any]]


class RunStart(_Line):
    """The first line: the run, its seed and parameters, the definition it replays on."""

    type: Literal["run_start"]
    schema_version: Literal["2.0"]
    run_id: str
    spec_id: str
    definition_version: int | None
    dialect: str
    seed: int
    replay: bool
    parameters: dict[str, Any]
    created_at: str | None
    started_at: str | None
    definition: DefinitionPart
    definition_digest: str


class StepLine(_Line):
    """One task execution, with the AOS step fields."""

    type: Literal["step"]
    index: int
    step_id: str
    action: str | None
    seed: int | None
    params: Any
    status: str
    ok: bool
    output: Any
    output_digest: str
    error: dict[str, Any] | None
    cost_cents: float
    retries: int
    started_at: str | None
    finished_at: str | None
    duration_ms: float | None


class EventLine(_Line):
    """One entry of the event log and the commands ``decide`` made of it."""

    type: Literal["event"]
    seq: int
    at: str
    event: dict[str, Any]
    commands: list[dict[str, Any]]


class RunEnd(_Line):
    """The last line: how the run ended, the counts, the digest of every decision."""

    type: Literal["run_end"]
    status: str
    completed_at: str | None
    output: Any
    error: dict[str, Any] | None
    steps: int
    events: int
    decisions_digest: str


_MODELS: dict[str, type[_Line]] = {
    "run_start": RunStart,
    "step": StepLine,
    "event": EventLine,
    "run_end": RunEnd,
}


@dataclass(frozen=True)
class GoldenLine:
    """One line of the file: its number (from 1), its data as written, and its model."""

    number: int
    data: Mapping[str, Any]
    model: _Line

    @property
    def kind(self) -> str:
        return str(self.data["type"])


@dataclass(frozen=True)
class GoldenRecord:
    """A golden record as read from ``file``, line by line."""

    file: str
    lines: tuple[GoldenLine, ...]

    @property
    def start(self) -> RunStart:
        model = self.lines[0].model
        assert isinstance(model, RunStart)
        return model

    @property
    def end(self) -> RunEnd:
        model = self.lines[-1].model
        assert isinstance(model, RunEnd)
        return model

    def of_kind(self, kind: str) -> Iterator[GoldenLine]:
        return (line for line in self.lines if line.kind == kind)

    def events(self) -> Iterator[tuple[GoldenLine, EventLine]]:
        for line in self.of_kind("event"):
            assert isinstance(line.model, EventLine)
            yield line, line.model

    def time(self, line: GoldenLine, field: str) -> datetime | None:
        """The timestamp ``field`` of ``line``, parsed; GoldenFormatError if it is not one."""
        value = line.data.get(field)
        if value is None:
            return None
        try:
            return decode_datetime(str(value))
        except ValueError:
            raise GoldenFormatError(
                f"{self.file}:{line.number}: {line.kind} field '{field}': "
                f"{value!r} is not an ISO-8601 time"
            ) from None


def read_golden(data: bytes, file: str) -> GoldenRecord:
    """Parse a record's bytes (the contents of ``file``); :class:`GoldenFormatError` if it
    is not one."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GoldenFormatError(
            f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    lines: list[GoldenLine] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        lines.append(_parse_line(file, number, raw))
    if not lines:
        raise GoldenFormatError(f"{file}: empty: a golden record starts with a run_start line")
    _check_order(file, lines)
    return GoldenRecord(file, tuple(lines))


def _parse_line(file: str, number: int, raw: str) -> GoldenLine:
    where = f"{file}:{number}"
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise GoldenFormatError(f"{where}: not a JSON object: {exc}") from None
    if not isinstance(data, dict):
        raise GoldenFormatError(f"{where}: not a JSON object")
    kind = data.get("type")
    model = _MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise GoldenFormatError(
            f"{where}: field 'type' is {kind!r}; a line is one of {', '.join(_ORDER)}"
        )
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "type"
        raise GoldenFormatError(f"{where}: {kind} field '{field}': {first['msg']}") from None
    return GoldenLine(number, data, parsed)


def _check_order(file: str, lines: list[GoldenLine]) -> None:
    if lines[0].kind != "run_start":
        raise GoldenFormatError(
            f"{file}:{lines[0].number}: the first line must be run_start, not {lines[0].kind}"
        )
    if lines[-1].kind != "run_end":
        raise GoldenFormatError(
            f"{file}:{lines[-1].number}: the last line must be run_end, not {lines[-1].kind} "
            "(the record is cut short)"
        )
    rank = 0
    for line in lines:
        position = _ORDER.index(line.kind)
        single = line.kind in ("run_start", "run_end")
        if position < rank or (single and position == rank and line is not lines[0]):
            raise GoldenFormatError(
                f"{file}:{line.number}: a {line.kind} line cannot come here: the lines are "
                "run_start, the steps, the events, then run_end"
            )
        rank = position
