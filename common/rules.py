"""Attune rules: a trigger, optional criteria over its payload, and the action it starts.

A pack's ``rules/`` folder holds them (``docs/rules.md``), each YAML document one rule in
Attune's format: ``name``, ``ref``, ``description``, ``enabled``, ``trigger: {type,
parameters}``, ``action: {ref, parameters}`` and optional ``criteria``. This module is the
pure part: the model (:class:`RuleSpec`), what the three core timer triggers mean as a
schedule (:func:`timer_schedule`, reusing :mod:`treadle.common.schedules`) and the payload
a timer fire carries (:func:`timer_payload`, Attune's ``fired_at``, ``scheduled_at`` ...).
Reading files is :mod:`treadle.common.loader.rules`; storing rules and starting their
actions is the scheduler's.

A trigger type that is not one of the timers is an outside event type (a shell-style
pattern, as event triggers take), optionally narrowed by ``parameters.subject``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from treadle.common.cron import parse_cron
from treadle.common.errors import ParameterError
from treadle.common.schedules import (
    ScheduleError,
    ScheduleRule,
    checked_zone,
    instant_in_range,
    wall_to_instant,
)
from treadle.common.source import SourceMap

__all__ = [
    "EVENT_TRIGGER_FIELDS",
    "SENSOR_REF",
    "RuleAction",
    "RuleSpec",
    "RuleTrigger",
    "TimerKind",
    "TimerSchedule",
    "iso_z",
    "timer_payload",
    "timer_schedule",
]

#: ``sensor_ref`` in a timer payload: what generated the event (Attune names its sensor).
SENSOR_REF: Final = "treadle.beat"
#: The parameters an outside event trigger takes.
EVENT_TRIGGER_FIELDS: Final = ("subject",)
#: Attune's interval units, in seconds.
UNITS: Final = {"seconds": 1, "minutes": 60, "hours": 3600}
#: A one-shot is an interval schedule whose start and end are its instant: one fire.
_ONE_SHOT_STEP: Final = timedelta(seconds=1)


class TimerKind(StrEnum):
    """The core timer triggers Attune declares (``trigger-*.yaml``)."""

    CRON = "core.crontimer"
    INTERVAL = "core.intervaltimer"
    DATETIME = "core.datetimetimer"

    @property
    def payload_type(self) -> str:
        """The payload's ``type`` constant."""
        return {"core.crontimer": "cron", "core.intervaltimer": "interval"}.get(
            self.value, "one_shot"
        )

    @property
    def fields(self) -> tuple[str, ...]:
        """The parameters the trigger declares."""
        if self is TimerKind.CRON:
            return ("expression", "timezone", "description")
        if self is TimerKind.INTERVAL:
            return ("unit", "interval")
        return ("fire_at", "timezone", "description")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class RuleTrigger(_Frozen):
    """What a rule waits for: a core timer, or an outside event type (a pattern)."""

    type: str
    parameters: dict[str, Any] = Field(default_factory=dict)

    @property
    def timer(self) -> TimerKind | None:
        try:
            return TimerKind(self.type)
        except ValueError:
            return None


class RuleAction(_Frozen):
    """What a rule starts: a workflow or a single action, with templated parameters."""

    ref: str
    parameters: dict[str, Any] = Field(default_factory=dict)


class RuleSpec(_Frozen):
    """One rule as written (``pack`` is the pack whose ``rules/`` folder holds it)."""

    name: str
    ref: str
    pack: str
    description: str | None = None
    enabled: bool = True
    trigger: RuleTrigger
    action: RuleAction
    criteria: tuple[str, ...] = ()
    source: SourceMap = Field(default_factory=lambda: SourceMap("<memory>"))

    def digest(self) -> str:
        """SHA-256 of what the rule says (not where it was written): a changed rule in a
        reloaded pack has a new digest."""
        data = self.model_dump(mode="json", exclude={"source"})
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class TimerSchedule:
    """A timer trigger as a schedule: cron in a zone, an interval, or one instant."""

    kind: TimerKind
    timezone: str = "UTC"
    cron: str | None = None
    interval: timedelta | None = None
    fire_at: datetime | None = None

    @property
    def start(self) -> datetime | None:
        return self.fire_at

    @property
    def end(self) -> datetime | None:
        return self.fire_at

    @property
    def step(self) -> timedelta | None:
        """The schedule's interval (a one-shot's is a formality: start and end are equal)."""
        return _ONE_SHOT_STEP if self.fire_at is not None else self.interval

    def rule(self) -> ScheduleRule:
        """When it fires, as :mod:`treadle.common.schedules` computes it."""
        return ScheduleRule.checked(
            cron=self.cron,
            interval=self.step,
            timezone=self.timezone,
            start=self.start,
            end=self.end,
        )


def timer_schedule(trigger: RuleTrigger) -> TimerSchedule | None:
    """The schedule of a timer trigger (``None`` for an event trigger); ParameterError
    with every problem, each starting with the parameter it is about (``'expression':``)."""
    kind = trigger.timer
    if kind is None:
        return None
    given = trigger.parameters
    problems: list[str] = []
    zone = given.get("timezone", "UTC")
    if kind is not TimerKind.INTERVAL:
        if not isinstance(zone, str):
            problems.append(f"'timezone': {zone!r} is not text")
            zone = "UTC"
        else:
            try:
                checked_zone(zone)
            except ScheduleError as exc:
                problems.extend(f"'timezone': {p}" for p in exc.problems)
                zone = "UTC"
    schedule: TimerSchedule | None = None
    if kind is TimerKind.CRON:
        schedule = _cron(given.get("expression"), zone, problems)
    elif kind is TimerKind.INTERVAL:
        schedule = _interval(given.get("unit", "seconds"), given.get("interval", 60), problems)
    else:
        schedule = _one_shot(given.get("fire_at"), zone, problems)
    if problems or schedule is None:
        raise ParameterError(problems, subject=f"trigger {kind.value}")
    return schedule


def _cron(expression: Any, zone: str, problems: list[str]) -> TimerSchedule | None:
    if not isinstance(expression, str) or not expression.strip():
        problems.append("'expression': a 6-field cron expression is required")
        return None
    if len(expression.split()) != 6:
        problems.append(
            f"'expression': {expression!r} has {len(expression.split())} field(s); "
            "core.crontimer takes 6 (second minute hour day month weekday)"
        )
        return None
    try:
        parse_cron(expression)
    except ParameterError as exc:
        problems.extend(f"'expression': {p}" for p in exc.problems)
        return None
    return TimerSchedule(TimerKind.CRON, timezone=zone, cron=expression.strip())


def _interval(unit: Any, interval: Any, problems: list[str]) -> TimerSchedule | None:
    if unit not in UNITS:
        problems.append(f"'unit': {unit!r}; use {' | '.join(UNITS)}")
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        problems.append(f"'interval': {interval!r} is not a positive whole number")
    if problems:
        return None
    span = timedelta(seconds=UNITS[str(unit)] * int(interval))
    if span > timedelta(days=3650):
        problems.append("'interval': at most 10 years")
        return None
    return TimerSchedule(TimerKind.INTERVAL, interval=span)


def _one_shot(fire_at: Any, zone: str, problems: list[str]) -> TimerSchedule | None:
    if not isinstance(fire_at, str) or not fire_at.strip():
        problems.append("'fire_at': an ISO 8601 time is required (2024-12-31T23:59:59Z)")
        return None
    try:
        parsed = datetime.fromisoformat(fire_at.strip())
    except ValueError:
        problems.append(f"'fire_at': {fire_at!r} is not an ISO 8601 time (2024-12-31T23:59:59Z)")
        return None
    if parsed.tzinfo is None:  # no offset: a wall time in ``timezone``
        parsed = wall_to_instant(parsed, checked_zone(zone))
    if not instant_in_range(parsed):
        problems.append(f"'fire_at': {fire_at!r} must be between 1970 and 9000")
        return None
    return TimerSchedule(TimerKind.DATETIME, timezone=zone, fire_at=parsed.astimezone(UTC))


def iso_z(value: datetime) -> str:
    """An instant as ISO 8601 in UTC with ``Z`` (``2026-03-09T21:00:00Z``)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def timer_payload(
    schedule: TimerSchedule,
    *,
    scheduled: datetime,
    fired: datetime,
    next_fire: datetime | None,
    count: int,
) -> dict[str, Any]:
    """The payload of one timer fire: exactly the ``output`` fields of Attune's trigger
    declaration (``core.crontimer``: ``scheduled_at``, ``next_fire_at`` ...;
    ``core.datetimetimer``: ``fire_at``, ``delay_ms`` ...)."""
    base = {"type": schedule.kind.payload_type, "fired_at": iso_z(fired), "sensor_ref": SENSOR_REF}
    if schedule.kind is TimerKind.CRON:
        return {
            **base,
            "scheduled_at": iso_z(scheduled),
            "expression": schedule.cron,
            "timezone": schedule.timezone,
            "next_fire_at": iso_z(next_fire) if next_fire is not None else None,
            "execution_count": count,
        }
    if schedule.kind is TimerKind.INTERVAL:
        assert schedule.interval is not None
        seconds = int(schedule.interval.total_seconds())
        return {**base, "interval_seconds": seconds, "execution_count": count}
    delay = int((fired - scheduled).total_seconds() * 1000)
    return {**base, "fire_at": iso_z(scheduled), "timezone": schedule.timezone,
            "delay_ms": max(delay, 0)}  # fmt: skip
