"""The alert rules in deploy/prometheus/treadle-alerts.yml: promtool accepts them, every rule
fires on the series that should fire it and stays quiet on healthy ones
(tests/deploy/prometheus/treadle-alerts.test.yml), and each carries what an operator needs
when it fires.

promtool is Debian's ``prometheus`` package (.ci/run installs it); without it the promtool
tests skip and say so.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "treadle-alerts.yml"
RULE_TESTS = ROOT / "tests" / "deploy" / "prometheus" / "treadle-alerts.test.yml"

#: The AOS spec's groups and their alerts (its "Prometheus Alerts" section), and the group
#: of Treadle's that stands for each.
AOS_GROUPS = {
    "treadle_workflow_determinism": ("ReplayFailures", "GoldenMismatch", "SeedDrift"),
    "treadle_workflow_execution": ("FailureRateHigh", "BudgetExceeded", "TimeoutRate"),
    "treadle_workflow_checkpoint": ("SaveLatencyHigh", "SaveFailures", "StaleRunning"),
    "treadle_workflow_sandbox": ("RejectionRate", "ForbiddenSkillAttempts"),
    "treadle_workflow_performance": ("LatencyHigh", "StepLatencyHigh", "QueueBacklog"),
    "treadle_workflow_cost": ("CostSpike", "StepCostAnomaly"),
}
#: What else an operator of Treadle is told about (the issue's list).
TREADLE_ALERTS = {
    "TreadleTasksStuckQueued",
    "TreadleOutboxBacklog",
    "TreadleOutboxStale",
    "TreadleTimersOverdue",
    "TreadleAttemptsPastDeadline",
    "TreadleQueueWithoutConsumer",
    "TreadleWorkerDown",
    "TreadleNoWorkerUp",
    "TreadleScheduleFiresSkipped",
    "TreadleScheduleFiresFailed",
}


def _groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return groups


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _groups() for rule in group["rules"]]


def _promtool() -> str:
    found = shutil.which("promtool") or (
        "/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None
    )
    if found is None:
        pytest.skip(
            "promtool is not installed: install Debian's prometheus package "
            "(apt-get install -y prometheus; .ci/run does it on CI)"
        )
    return found


def _run_promtool(*argv: str) -> None:
    result = subprocess.run(
        [_promtool(), *argv], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"promtool {' '.join(argv)}:\n{result.stdout}{result.stderr}"


def test_promtool_accepts_the_rules() -> None:
    _run_promtool("check", "rules", str(RULES))


def test_every_rule_behaves_as_its_promtool_cases_say() -> None:
    _run_promtool("test", "rules", str(RULE_TESTS))


def test_every_rule_has_a_firing_case_and_a_quiet_case() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in _rules()}
    assert names - firing == set(), "rules no promtool case fires"
    assert names - quiet == set(), "rules no promtool case checks quiet on healthy series"
    assert (firing | quiet) - names == set(), "promtool cases of rules that do not exist"


def test_the_aos_groups_each_have_their_alerts() -> None:
    groups = {group["name"]: [rule["alert"] for rule in group["rules"]] for group in _groups()}
    for group, aos_alerts in AOS_GROUPS.items():
        assert groups.get(group) == [f"Treadle{name}" for name in aos_alerts], group


def test_treadles_own_alerts_are_there() -> None:
    assert TREADLE_ALERTS - {rule["alert"] for rule in _rules()} == set()


def test_every_rule_says_how_long_how_bad_what_and_where_to_read() -> None:
    problems = []
    for rule in _rules():
        name = rule["alert"]
        if "for" not in rule:
            problems.append(f"{name}: no for:")
        if rule.get("labels", {}).get("severity") not in ("warning", "critical"):
            problems.append(f"{name}: severity is not warning or critical")
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not str(annotations.get(key, "")).strip():
                problems.append(f"{name}: no {key} annotation")
        expected_url = f"docs/operations.md#{name.lower()}"
        if annotations.get("runbook_url") != expected_url:
            problems.append(f"{name}: runbook_url is not {expected_url}")
    assert problems == [], "\n".join(problems)


def test_alert_names_are_unique() -> None:
    names = [rule["alert"] for rule in _rules()]
    assert sorted(name for name in set(names) if names.count(name) > 1) == []
