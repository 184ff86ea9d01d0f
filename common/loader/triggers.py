"""A workflow's ``trigger:`` (one mapping, or a list) and ``triggers:`` (a list).

Split from :mod:`~treadle.common.loader.attune_workflow` because schedules brought many
fields: an ``event`` or ``webhook`` trigger starts runs from outside events; a ``cron`` or
``interval`` trigger is a schedule ``treadle beat`` fires (``docs/schedules.md``), checked
here with :mod:`treadle.common.schedules` so a bad cron expression, time zone or policy
is reported at its file, line and field. A single mapping stays ``WorkflowSpec.trigger``
(as before); a list becomes ``WorkflowSpec.triggers``, its items at ``triggers[i]``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import pydantic

from treadle.common.loader.reader import Reader
from treadle.common.schedules import MissedPolicy, OverlapPolicy, ScheduleError, ScheduleRule
from treadle.common.source import Path
from treadle.common.spec import TriggerSpec

__all__ = ["TRIGGER_FIELDS", "read_triggers"]

TRIGGER_TYPES: Final = ("event", "cron", "webhook", "interval")
EVENT_FIELDS: Final = ("event_type", "subject", "filter")
SCHEDULE_FIELDS: Final = (
    "cron", "interval", "name", "timezone", "start", "end", "jitter", "overlap",
    "catchup_window", "missed", "pause_on_failure", "enabled",
)  # fmt: skip
TRIGGER_FIELDS: Final = ("type", *EVENT_FIELDS, *SCHEDULE_FIELDS, "parameters")


def read_triggers(reader: Reader, data: dict[Any, Any]) -> dict[str, Any]:
    """The ``trigger`` / ``triggers`` fields of a :class:`WorkflowSpec` written in ``data``."""
    if "trigger" in data and "triggers" in data:
        reader.error(("triggers",), "write either 'trigger' or 'triggers', not both")
        return {}
    key = "triggers" if "triggers" in data else "trigger"
    if key not in data:
        return {}
    value = data[key]
    if not isinstance(value, list):
        if key == "triggers":
            reader.error((key,), "'triggers' must be a list of triggers")
            return {}
        return {"trigger": read_trigger(reader, value, (key,))}
    found: list[TriggerSpec] = []
    names: dict[str, Path] = {}
    events = 0
    for index, item in enumerate(value):
        path: Path = (key, index)
        spec = read_trigger(reader, item, path)
        if spec is None:
            continue
        reader.alias(("triggers", len(found)), path)
        if spec.is_schedule and spec.name is not None:
            if spec.name in names:
                reader.error((*path, "name"), f"schedule name {spec.name!r} is used twice")
            names[spec.name] = path
        if not spec.is_schedule:
            events += 1
            if events > 1:
                reader.error(path, "a workflow may have one event or webhook trigger")
        found.append(spec)
    return {"triggers": tuple(found)} if found else {}


def read_trigger(reader: Reader, value: Any, path: Path) -> TriggerSpec | None:
    """One trigger mapping at ``path``; ``None`` (with issues) when it is unusable."""
    trigger = reader.mapping(value, path, "'trigger'")
    if trigger is None:
        return None
    reader.check_fields(trigger, path, "the trigger", TRIGGER_FIELDS)
    kind = reader.choice(trigger.get("type"), (*path, "type"), "the trigger 'type'", TRIGGER_TYPES)
    if kind is None:
        if "type" not in trigger:
            reader.error(path, "the trigger needs a 'type' (event, cron, interval or webhook)")
        return None
    fields: dict[str, Any] = {
        key: reader.text(trigger.get(key), (*path, key), f"the trigger '{key}'")
        for key in (*EVENT_FIELDS, "cron", "name", "timezone", "overlap", "missed")
    }
    for key in ("interval", "jitter", "catchup_window"):
        fields[key] = reader.duration(trigger.get(key), (*path, key), f"the trigger '{key}'")
    for key in ("pause_on_failure", "enabled"):
        fields[key] = reader.boolean(trigger.get(key), (*path, key), f"the trigger '{key}'")
    for key in ("start", "end"):
        fields[key] = _instant(reader, trigger.get(key), (*path, key))
    if kind == "event" and not fields["event_type"]:
        reader.error(path, "an event trigger needs an 'event_type'")
    if kind in ("cron", "interval"):
        _check_schedule(reader, kind, fields, trigger, path)
    else:
        for key in SCHEDULE_FIELDS:
            if key in trigger and key != "cron":
                reader.error((*path, key), f"'{key}' belongs to cron and interval triggers")
    parameters = reader.mapping(
        trigger.get("parameters"), (*path, "parameters"), "the trigger 'parameters'"
    )
    given = {key: value for key, value in fields.items() if value is not None}
    try:
        return TriggerSpec.model_validate(
            {"type": kind, **given, "parameters": dict(parameters or {})}
        )
    except pydantic.ValidationError as exc:  # pragma: no cover - checked field by field above
        reader.error(path, f"invalid trigger: {exc.errors()[0]['msg']}")
        return None


def _check_schedule(
    reader: Reader, kind: str, fields: dict[str, Any], given: dict[Any, Any], path: Path
) -> None:
    """Report what makes a cron or interval trigger unusable, each at its field."""
    if kind == "cron" and not fields["cron"]:
        reader.error(path, "a cron trigger needs a 'cron' schedule")
        return
    if kind == "interval" and fields["interval"] is None:
        if "interval" not in given:
            reader.error(path, "an interval trigger needs an 'interval' (a duration: 15m)")
        return
    if kind == "interval" and fields["cron"]:
        reader.error((*path, "cron"), "an interval trigger takes no 'cron'")
    if kind == "cron" and "interval" in given:
        reader.error((*path, "interval"), "a cron trigger takes no 'interval'")
    for key, kinds in (("overlap", OverlapPolicy), ("missed", MissedPolicy)):
        if fields[key] is not None and fields[key] not in {k.value for k in kinds}:
            allowed = " | ".join(k.value for k in kinds)
            reader.error((*path, key), f"the trigger '{key}' is {fields[key]!r}; use {allowed}")
            fields[key] = None
    try:
        ScheduleRule.checked(
            cron=fields["cron"] if kind == "cron" else None,
            interval=fields["interval"] if kind == "interval" else None,
            timezone=fields["timezone"],
            start=fields["start"],
            end=fields["end"],
            jitter=fields["jitter"],
        )
    except ScheduleError as exc:
        for problem in exc.problems:
            field = _field_of(problem)
            reader.error((*path, field), f"the trigger '{field}': {problem}")


def _field_of(problem: str) -> str:
    """The field a schedule problem is about (cron when none is named)."""
    for key in ("time zone", "timezone"):
        if key in problem:
            return "timezone"
    for key in ("end", "start", "jitter", "interval"):
        if f"'{key}'" in problem:
            return key
    return "cron"


def _instant(reader: Reader, value: Any, path: Path) -> datetime | None:
    """An ISO 8601 instant with its offset (YAML may have read it as a datetime already)."""
    if value is None:
        return None
    what = f"the trigger '{path[-1]}'"
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            reader.error(path, f"{what} {value!r} is not an ISO 8601 time (2026-01-31T17:00:00Z)")
            return None
    else:
        reader.error(path, f"{what} {value!r} is not an ISO 8601 time (2026-01-31T17:00:00Z)")
        return None
    if parsed.tzinfo is None:
        reader.error(
            path, f"{what} {value!r} needs a UTC offset or 'Z' (2026-01-31T17:00:00+01:00)"
        )
        return None
    return parsed
