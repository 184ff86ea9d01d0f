"""Schedules declared in workflows: ``trigger:`` as a list, ``triggers:``, every field
checked with its file, line and field; workflows/v1 SCHEDULE triggers imported."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta

import pytest

from treadle.common.dialects import import_workflows_v1
from treadle.common.errors import DefinitionError
from treadle.common.loader import load_workflow_text
from treadle.common.spec import WorkflowSpec
from treadle.scheduler.service.definitions import canonical_spec

HEAD = """\
ref: demo.nightly
tasks:
  - name: a
    action: core.noop
"""


def load(triggers: str) -> WorkflowSpec:
    return load_workflow_text(HEAD + textwrap.dedent(triggers), "wf.yaml")


def errors(triggers: str) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load(triggers)
    return [str(issue) for issue in caught.value.issues]


def test_triggers_list_with_every_schedule_field() -> None:
    spec = load_workflow_text(
        HEAD
        + textwrap.dedent("""\
            triggers:
              - type: cron
                cron: "0 17 * * 1-5"
                timezone: America/New_York
                name: weekday-five
                start: 2026-01-01T00:00:00Z
                end: "2027-01-01T00:00:00+01:00"
                jitter: 30s
                overlap: buffer_one
                catchup_window: 2h
                missed: last
                pause_on_failure: true
                parameters: {who: team}
              - type: interval
                interval: 15m
              - type: event
                event_type: order.placed
            """),
        "wf.yaml",
    )
    cron, interval, event = spec.triggers
    assert (cron.type, cron.cron, cron.timezone, cron.name) == (
        "cron", "0 17 * * 1-5", "America/New_York", "weekday-five"
    )  # fmt: skip
    assert cron.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert (cron.jitter, cron.catchup_window) == (timedelta(seconds=30), timedelta(hours=2))
    assert (cron.overlap, cron.missed, cron.pause_on_failure) == ("buffer_one", "last", True)
    assert cron.parameters == {"who": "team"}
    assert (interval.type, interval.interval) == ("interval", timedelta(minutes=15))
    assert event.event_type == "order.placed"
    assert spec.trigger is None
    assert [t.type for t in spec.all_triggers] == ["cron", "interval", "event"]


def test_trigger_may_be_a_list_and_a_single_mapping_stays_as_before() -> None:
    listed = load("""\
        trigger:
          - type: cron
            cron: "@daily"
        """)
    assert [t.cron for t in listed.triggers] == ["@daily"]
    single = load("""\
        trigger:
          type: cron
          cron: "0 3 * * *"
        """)
    assert single.trigger is not None
    assert single.triggers == ()
    # definitions written before schedules hash as they did: no new keys when unset
    dumped = json.loads(canonical_spec(single))
    assert dumped["trigger"] == {
        "type": "cron", "event_type": None, "subject": None, "filter": None,
        "cron": "0 3 * * *", "parameters": {},
    }  # fmt: skip
    assert "triggers" not in dumped


def test_bad_schedules_are_reported_at_their_file_line_and_field() -> None:
    found = errors("""\
        triggers:
          - type: cron
            cron: "61 * * * *"
            timezone: Mars/Olympus
            overlap: sometimes
            start: "2026-01-01T00:00:00"
          - type: interval
          - type: cron
            cron: "@daily"
            interval: 5m
          - type: event
            event_type: a
            jitter: 5s
          - type: event
            event_type: b
          - type: sometimes
        """)
    assert found == [
        "wf.yaml:7:5: the trigger 'cron': cron expression '61 * * * *': the minute field: "
        "61 is outside 0-59",
        "wf.yaml:8:5: the trigger 'timezone': unknown time zone 'Mars/Olympus' (an IANA name "
        "such as 'Europe/Berlin' or 'UTC')",
        "wf.yaml:9:5: the trigger 'overlap' is 'sometimes'; use skip | buffer_one | buffer_all"
        " | cancel_other | allow_all",
        "wf.yaml:10:5: the trigger 'start' '2026-01-01T00:00:00' needs a UTC offset or 'Z' "
        "(2026-01-31T17:00:00+01:00)",
        "wf.yaml:11:5: an interval trigger needs an 'interval' (a duration: 15m)",
        "wf.yaml:14:5: a cron trigger takes no 'interval'",
        "wf.yaml:17:5: 'jitter' belongs to cron and interval triggers",
        "wf.yaml:18:5: a workflow may have one event or webhook trigger",
        "wf.yaml:20:11: the trigger 'type' must be one of event, cron, webhook, interval, not "
        "'sometimes'",
    ]


def test_trigger_and_triggers_together_and_duplicate_names_are_errors() -> None:
    found = "\n".join(
        errors("""\
            trigger: {type: cron, cron: "@daily"}
            triggers: []
            """)
    )
    assert "write either 'trigger' or 'triggers', not both" in found
    found = "\n".join(
        errors("""\
            triggers:
              - {type: cron, cron: "@daily", name: x}
              - {type: cron, cron: "@hourly", name: x}
            """)
    )
    assert "schedule name 'x' is used twice" in found


def v1_version(trigger: dict[str, object]) -> str:
    steps = [{"id": "a", "name": "A", "step_type": "STEP_TYPE_AGENT_ACTION",
              "action_type": "company.research"}]  # fmt: skip
    return json.dumps(
        {"definition_id": "wf_s", "version": 1, "steps": steps, "edges": [], "trigger": trigger}
    )


def test_a_workflows_v1_schedule_trigger_becomes_a_cron_trigger() -> None:
    spec = import_workflows_v1(
        v1_version(
            {
                "trigger_type": "TRIGGER_TYPE_SCHEDULE",
                "cron_expression": "0 9 * * 1",
                "timezone": "Europe/Berlin",
            }
        ),
        "wf.json",
    )
    assert spec.trigger is not None
    assert (spec.trigger.type, spec.trigger.cron, spec.trigger.timezone) == (
        "cron", "0 9 * * 1", "Europe/Berlin"
    )  # fmt: skip


def test_a_bad_workflows_v1_schedule_is_reported() -> None:
    with pytest.raises(DefinitionError) as caught:
        import_workflows_v1(
            v1_version({"trigger_type": "TRIGGER_TYPE_SCHEDULE", "cron_expression": "0 9 * *"}),
            "wf.json",
        )
    assert "4 field(s)" in str(caught.value)
    with pytest.raises(DefinitionError) as caught:
        import_workflows_v1(v1_version({"trigger_type": "TRIGGER_TYPE_SCHEDULE"}), "wf.json")
    assert "needs a 'cron_expression'" in str(caught.value)
