"""The workflow-level fields of a workflows/v1 version that start runs: its trigger.

Split from :mod:`~treadle.common.dialects.workflows_v1` because a trigger is a concern of
its own: a webhook (tap) or event trigger becomes a Treadle event :class:`TriggerSpec`
with its ``filter_expr`` translated, and a tap-triggered workflow declares the run input a
tap webhook delivers as its parameters. A schedule trigger (``TRIGGER_TYPE_SCHEDULE``; the
plan names no fields for it, so Treadle reads ``cron_expression`` and ``timezone``)
becomes a cron trigger, a schedule ``treadle beat`` fires.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from treadle.common.dialects.json_reader import JsonReader
from treadle.common.dialects.v1_document import V1Options
from treadle.common.dialects.v1_expressions import (
    ExpressionProblem,
    event_data_resolver,
    translate,
)
from treadle.common.schedules import ScheduleError, ScheduleRule
from treadle.common.source import Path
from treadle.common.spec import ParameterSpec, TriggerSpec

TRIGGER_FIELDS: Final = (
    "trigger_type", "tap_provider", "tap_entity_type", "tap_action", "filter_expr",
    "event_type", "event_subject", "cron_expression", "timezone",
)  # fmt: skip
#: The run input a tap webhook delivers; declared as the parameters of tap-triggered workflows.
TAP_PARAMETERS: Final = (
    ParameterSpec(name="provider", schema_={"type": "string"}),
    ParameterSpec(name="entity_type", schema_={"type": "string"}),
    ParameterSpec(name="entity_id", schema_={"type": "string"}),
    ParameterSpec(name="action", schema_={"type": "string"}),
    ParameterSpec(name="snapshot", schema_={"type": "object"}),
)


def read_trigger(reader: JsonReader, value: Any, path: Path) -> TriggerSpec | None:
    """The trigger as a :class:`TriggerSpec`; ``None`` for a manual trigger or an error."""
    trigger = reader.mapping(value, path, "'trigger'")
    if trigger is None:
        return None
    reader.check_fields(trigger, path, "the trigger", TRIGGER_FIELDS)
    kind = trigger.get("trigger_type")
    filter_template = None
    if trigger.get("filter_expr") is not None:
        try:
            filter_template = "{{ " + translate(trigger["filter_expr"], event_data_resolver) + " }}"
        except ExpressionProblem as exc:
            reader.error((*path, "filter_expr"), f"cannot translate the filter: {exc}")
    if kind in ("TRIGGER_TYPE_MANUAL", "TRIGGER_TYPE_UNSPECIFIED", None):
        return None
    if kind == "TRIGGER_TYPE_WEBHOOK":
        given = [trigger.get(key) for key in ("tap_provider", "tap_entity_type", "tap_action")]
        parts = [part for part in given if isinstance(part, str) and part]
        if len(parts) != len(given):
            reader.error(
                path,
                "a webhook trigger needs 'tap_provider', 'tap_entity_type' and 'tap_action' "
                "(its events have the type '<provider>.<entity_type>.<action>')",
            )
            return None
        return TriggerSpec(type="event", event_type=".".join(parts), filter=filter_template)
    if kind == "TRIGGER_TYPE_EVENT":
        event_type = trigger.get("event_type")
        if not isinstance(event_type, str) or not event_type:
            reader.error(path, "an event trigger needs an 'event_type'")
            return None
        subject = trigger.get("event_subject")
        return TriggerSpec(
            type="event",
            event_type=event_type,
            subject=subject if isinstance(subject, str) and subject else None,
            filter=filter_template,
        )
    if kind == "TRIGGER_TYPE_SCHEDULE":
        return _schedule_trigger(reader, trigger, path)
    reader.error(
        (*path, "trigger_type"),
        f"trigger type {kind!r} is not supported; use TRIGGER_TYPE_WEBHOOK, TRIGGER_TYPE_EVENT, "
        "TRIGGER_TYPE_SCHEDULE or TRIGGER_TYPE_MANUAL",
    )
    return None


def _schedule_trigger(
    reader: JsonReader, trigger: Mapping[str, Any], path: Path
) -> TriggerSpec | None:
    """A schedule trigger: ``cron_expression`` (5 or 6 fields) in ``timezone`` (IANA,
    default UTC) becomes a Treadle cron trigger that ``treadle beat`` fires."""
    cron = trigger.get("cron_expression")
    zone = trigger.get("timezone") or "UTC"
    if not isinstance(cron, str) or not cron.strip():
        reader.error(path, "a schedule trigger needs a 'cron_expression'")
        return None
    if not isinstance(zone, str):
        reader.error((*path, "timezone"), "'timezone' must be an IANA time zone name")
        return None
    try:
        ScheduleRule.checked(cron=cron, timezone=zone)
    except ScheduleError as exc:
        for problem in exc.problems:
            field = "timezone" if "time zone" in problem else "cron_expression"
            reader.error((*path, field), problem)
        return None
    return TriggerSpec(type="cron", cron=cron.strip(), timezone=zone)


def run_parameters(version: Mapping[str, Any], options: V1Options) -> tuple[ParameterSpec, ...]:
    """The run inputs: a tap webhook's fields, then ``options.parameters`` by name."""
    declared: list[ParameterSpec] = []
    trigger = version.get("trigger")
    if isinstance(trigger, dict) and trigger.get("trigger_type") == "TRIGGER_TYPE_WEBHOOK":
        declared.extend(TAP_PARAMETERS)
    names = {p.name for p in declared}
    for name in options.parameters:
        if name not in names:
            declared.append(ParameterSpec(name=name))
            names.add(name)
    return tuple(declared)
