"""Reading a pack's ``rules/``: several documents per file, Attune's defaults, and every
problem reported at its file, line and field (a bad document leaves the others loaded)."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from treadle.common.errors import ParameterError
from treadle.common.loader import load_packs
from treadle.common.loader.rules import read_rule_file
from treadle.common.rules import RuleTrigger, TimerKind, timer_schedule

GOOD = """\
name: first
trigger:
  type: core.intervaltimer
  parameters: {}
action:
  ref: ops.greet
---
# only a comment
---
name: second
ref: other.second
enabled: false
trigger: {type: crm.*, parameters: {subject: "acct/*"}}
criteria: "trigger.amount > 10"
action: {ref: ops.greet, parameters: {who: "{{ trigger.name }}"}}
"""

BAD = """\
name: broken
trigger:
  type: core.crontimer
  parameters:
    expression: "0 17 * * 1-5"
    timezone: Mars/Olympus
action:
  ref: ops.greet
---
name: unknown_field
colour: blue
trigger: {type: core.intervaltimer, parameters: {unit: days, interval: 0}}
action: {ref: ops.greet}
---
name: bad_one_shot
trigger: {type: core.datetimetimer, parameters: {fire_at: "next tuesday"}}
action: {ref: ops.greet, parameters: {who: "{{ trigger.x "}}
criteria: ["trigger.a ==="]
---
name: no_action
trigger: {type: core.crontimer, parameters: {expression: "0 0 0 * * *"}}
---
name: survivor
trigger: {type: ops.event}
action: {ref: ops.greet}
"""


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_every_document_is_a_rule_with_attunes_defaults(tmp_path: Path) -> None:
    rules, issues = read_rule_file(_write(tmp_path, GOOD), "ops")
    assert issues == []
    first, second = rules
    assert (first.ref, first.enabled, first.criteria) == ("ops.first", True, ())
    timer = timer_schedule(first.trigger)
    assert timer is not None
    assert timer.interval is not None
    assert timer.interval.total_seconds() == 60  # unit seconds, interval 60: Attune's defaults
    assert (second.ref, second.enabled, second.criteria) == (
        "other.second", False, ("trigger.amount > 10",)
    )  # fmt: skip
    assert timer_schedule(second.trigger) is None  # an outside event type
    assert second.trigger.parameters == {"subject": "acct/*"}


def test_bad_rules_are_reported_at_file_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, BAD)
    rules, issues = read_rule_file(path, "ops")
    assert [rule.name for rule in rules] == ["survivor"]
    text = [str(issue).removeprefix(path + ":") for issue in issues]
    expected = [
        "5:18: the core.crontimer parameter 'expression': '0 17 * * 1-5' has 5 field(s); "
        "core.crontimer takes 6 (second minute hour day month weekday)",
        "6:15: the core.crontimer parameter 'timezone': unknown time zone 'Mars/Olympus'",
        "11:1: unknown field 'colour' in the rule",
        "12:56: the core.intervaltimer parameter 'unit': 'days'; use seconds | minutes | hours",
        "12:72: the core.intervaltimer parameter 'interval': 0 is not a positive whole number",
        "16:60: the core.datetimetimer parameter 'fire_at': 'next tuesday' is not an ISO 8601",
        "17:45: the action parameter:",
        "18:13: the criterion:",
        "20:1: a rule needs an 'action' ({ref, parameters})",
    ]
    assert len(text) == len(expected), text
    for found, wanted in zip(sorted(text), sorted(expected), strict=True):
        assert found.startswith(wanted), (found, wanted)


def test_rule_files_load_from_a_packs_rules_folder_and_refs_are_unique(tmp_path: Path) -> None:
    for name in ("a", "b"):
        pack = tmp_path / name
        (pack / "rules").mkdir(parents=True)
        (pack / "pack.yaml").write_text(f"ref: {name}\n")
        (pack / "rules" / "r.yaml").write_text(GOOD.replace("other.second", "shared.second"))
    catalog = load_packs([tmp_path])
    assert sorted(catalog.rules) == ["a.first", "b.first", "shared.second"]
    [clash] = catalog.issues
    assert "'rule shared.second' is defined twice" in clash.message
    assert clash.loc.file.endswith("b/rules/r.yaml")


def test_fire_at_without_an_offset_is_read_in_its_zone_and_an_offset_wins() -> None:
    def instant(parameters: dict[str, str]) -> datetime | None:
        trigger = RuleTrigger(type=TimerKind.DATETIME.value, parameters=parameters)
        timer = timer_schedule(trigger)
        assert timer is not None
        return timer.fire_at

    new_york = "America/New_York"
    assert instant({"fire_at": "2024-06-15T15:00:00", "timezone": new_york}) == datetime(
        2024, 6, 15, 19, tzinfo=UTC
    )
    assert instant({"fire_at": "2024-06-15T15:00:00-05:00", "timezone": new_york}) == datetime(
        2024, 6, 15, 20, tzinfo=UTC
    )
    with pytest.raises(ParameterError, match="'fire_at'"):
        instant({"fire_at": "soon"})
