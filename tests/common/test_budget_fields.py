"""Budgets and escalation as users write them: the fields, how limits combine, what a result
cost, and every mistake named with its file, line and field.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from treadle.common.budget import (
    Budget,
    ceilings_from_setting,
    effective_budget,
    parse_budget,
    result_cost_usd,
)
from treadle.common.dialects.aos import read_aos
from treadle.common.errors import ConfigurationError, ParameterError
from treadle.common.loader import load_packs, read_workflow_text
from treadle.common.validate import checked_workflow

PACKS = Path(__file__).resolve().parents[2] / "packs"

WRITTEN = """\
ref: t.guarded
budget: {cost_usd: 50, wall_time: 2h, attempts: 20, items: 100, soft_ratio: 0.8, step_cost_usd: 2}
tasks:
  - name: summarize
    action: core.echo
    input: {message: hi}
    cost_estimate_usd: 0.4
    cost_ceiling_usd: 1
    escalate:
      notify: {channel: log, message: "{{ parameters.who }} failed"}
      ask: {prompt: "retry?", assigned_to: ops, timeout: 4h}
"""


def test_the_fields_are_read_as_written() -> None:
    spec, issues = read_workflow_text(WRITTEN, "wf.yaml")
    assert issues == []
    assert spec is not None
    assert spec.budget == Budget(
        cost_usd=50,
        wall_time=timedelta(hours=2),
        attempts=20,
        items=100,
        soft_ratio=0.8,
        step_cost_usd=2,
    )
    task = spec.tasks[0]
    assert (task.cost_estimate_usd, task.cost_ceiling_usd) == (0.4, 1.0)
    assert task.escalate is not None
    assert task.escalate.ask is not None
    assert task.escalate.notify == {"channel": "log", "message": "{{ parameters.who }} failed"}
    assert (task.escalate.ask.assigned_to, task.escalate.ask.timeout) == ("ops", timedelta(hours=4))


WRONG = """\
ref: t.wrong
budget: {cost: 5, soft_ratio: 1.5, wall_time: soon, attempts: 0}
tasks:
  - name: a
    action: core.echo
    input: {message: hi}
    cost_estimate_usd: -1
    escalate: {ask: {prompt: x, after: 1h}}
  - name: b
    action: core.echo
    input: {message: hi}
    escalate: {}
"""


def test_each_mistake_is_named_with_its_line_and_field() -> None:
    _spec, issues = read_workflow_text(WRONG, "wf.yaml")
    assert [str(issue) for issue in issues] == [
        "wf.yaml:2:10: unknown field 'cost' in the budget of the workflow "
        "(did you mean 'cost_usd'?)",
        "wf.yaml:2:31: 'budget.soft_ratio' of the workflow must be a number between 0 and 1 "
        "(0.8: ask at 80%), not 1.5",
        "wf.yaml:2:47: 'budget.wall_time' of the workflow: expected a duration: a number of "
        "seconds or text like '500ms', '30s', '5m', '2h' or '1d' (got 'soon')",
        "wf.yaml:2:63: 'budget.attempts' of the workflow must be a positive integer, not 0",
        "wf.yaml:7:24: 'cost_estimate_usd' of task 'a' must be an amount of US dollars (>= 0), "
        "not -1",
        "wf.yaml:8:33: unknown field 'after' in the escalation question of task 'a'",
        "wf.yaml:12:5: 'escalate' of task 'b' needs 'notify', 'ask' or both",
    ]


def test_validation_checks_notify_inputs_and_estimates_against_ceilings() -> None:
    text = """\
ref: t.check
tasks:
  - name: a
    action: core.echo
    input: {message: hi}
    cost_estimate_usd: 3
    cost_ceiling_usd: 2
    escalate: {notify: {chanel: log}}
"""
    spec, issues = read_workflow_text(text, "wf.yaml")
    assert spec is not None
    assert issues == []
    found, _graph = checked_workflow(spec, load_packs([PACKS]))
    assert [str(issue) for issue in found] == [
        "wf.yaml:6:5: task 'a' is estimated at 3.00 USD, above its own 'cost_ceiling_usd' of "
        "2.00 USD: it would never be dispatched",
        "wf.yaml:8:25: 'escalate.notify' of task 'a' gives 'chanel', which 'core.notify' does "
        "not declare (it takes channel, headers, message, payload, run_id, secret, task, "
        "timeout, url)",
    ]


def test_a_template_in_an_escalation_is_checked() -> None:
    text = """\
ref: t.template
tasks:
  - name: a
    action: core.echo
    input: {message: hi}
    escalate: {ask: {prompt: "{{ paramters.x }}"}}
"""
    spec, _issues = read_workflow_text(text, "wf.yaml")
    assert spec is not None
    problems = [str(issue) for issue in checked_workflow(spec)[0]]
    assert any("paramters" in problem and "wf.yaml:6" in problem for problem in problems)


def test_the_start_wins_per_limit_and_the_ceiling_caps_each() -> None:
    declared = Budget(cost_usd=10, attempts=5)
    given = Budget(cost_usd=30, soft_ratio=0.9)
    ceiling = Budget(cost_usd=20, wall_time=timedelta(hours=1), soft_ratio=0.5)
    assert effective_budget(declared, given, ceiling) == Budget(
        cost_usd=20, attempts=5, wall_time=timedelta(hours=1), soft_ratio=0.9
    )
    assert effective_budget(None, None, None) is None
    assert given.above(ceiling) == [
        "cost_usd=30.00 USD is above this workspace's limit of 20.00 USD (TREADLE_BUDGET_LIMITS)"
    ]


def test_budget_options_are_parsed_and_every_bad_one_is_named() -> None:
    assert parse_budget(["cost_usd=50", "wall_time=2h", "attempts=9"]) == Budget(
        cost_usd=50, wall_time=timedelta(hours=2), attempts=9
    )
    with pytest.raises(ParameterError) as refused:
        parse_budget(["cost=5", "soft_ratio=2", "items", "attempts=1.5"])
    assert list(refused.value.problems) == [
        "'cost' is not a budget limit; use one of cost_usd, wall_time, attempts, items, "
        "soft_ratio, step_cost_usd",
        "'items': write NAME=VALUE, NAME one of cost_usd, wall_time, attempts, items, "
        "soft_ratio, step_cost_usd",
        "attempts: Input should be a valid integer",
        "soft_ratio: Input should be less than 1",
    ]


def test_the_ceilings_setting_is_read_per_workspace() -> None:
    ceilings = ceilings_from_setting(
        json.dumps({"all": {"cost_usd": 10, "attempts": 50}, "workspaces": {"a": {"cost_usd": 2}}})
    )
    assert ceilings.for_workspace("a") == Budget(cost_usd=2, attempts=50)
    assert ceilings.for_workspace("b") == Budget(cost_usd=10, attempts=50)
    assert ceilings_from_setting(None).for_workspace("a") is None
    with pytest.raises(ConfigurationError, match=r"TREADLE_BUDGET_LIMITS: all\.costs: not a"):
        ceilings_from_setting('{"all": {"costs": 1}}')


@pytest.mark.parametrize(
    ("result", "usd"),
    [
        ({"cost_usd": 0.25}, 0.25),
        ({"cost_cents": 12.5}, 0.125),
        ({"cost_usd": 1, "cost_cents": 900}, 1.0),
        ({"cost_usd": -1}, 0.0),
        ({"cost_usd": True}, 0.0),
        ({"cost_usd": "3"}, 0.0),
        ("text", 0.0),
        (None, 0.0),
    ],
)
def test_what_a_result_cost(result: object, usd: float) -> None:
    assert result_cost_usd(result) == usd


def test_an_aos_plan_s_cents_become_dollars() -> None:
    plan = {
        "plan": {
            "workflow_ceiling_cents": 500,
            "step_ceiling_cents": 50,
            "steps": [
                {"step_id": "s1", "skill": "skill.http_call", "estimated_cost_cents": 12},
                {"step_id": "s2", "skill": "x", "depends_on": ["s1"], "step_ceiling_cents": -3},
            ],
        }
    }
    _spec, issues = read_aos(json.dumps(plan, indent=1), "plan.json")
    assert [issue.message for issue in issues] == [
        "plan.steps[1].step_ceiling_cents: 'step_ceiling_cents' must be an amount of cents "
        "(>= 0), not -3"
    ]
    del plan["plan"]["steps"][1]["step_ceiling_cents"]  # type: ignore[index]
    spec, issues = read_aos(json.dumps(plan), "plan.json")
    assert spec is not None
    assert issues == []
    assert spec.budget == Budget(cost_usd=5, step_cost_usd=0.5)
    assert spec.tasks[0].cost_estimate_usd == 0.12
