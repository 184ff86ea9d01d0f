"""Importing workflows/v1 versions: what each step, edge and field becomes, and every error."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from treadle.common.catalog import Catalog
from treadle.common.dialects import V1Options, import_workflows_v1, read_workflows_v1
from treadle.common.errors import DefinitionError
from treadle.common.graph import compile_graph
from treadle.common.spec import Backoff, TaskSpec, WorkflowSpec
from treadle.common.validate import validate_workflow

from .conftest import read_json

PUBLISHED = "publish_version_response.json"


def version(steps: list[dict[str, Any]], edges: list[dict[str, Any]], **more: Any) -> str:
    return json.dumps(
        {"definition_id": "wf_test", "version": 1, "steps": steps, "edges": edges, **more}
    )


def agent(step_id: str, action_type: str = "company.research", **more: Any) -> dict[str, Any]:
    return {"id": step_id, "name": step_id.title(), "step_type": "STEP_TYPE_AGENT_ACTION",
            "action_type": action_type, **more}  # fmt: skip


def edge(source: str, target: str, **more: Any) -> dict[str, Any]:
    return {"from_step_id": source, "to_step_id": target, **more}


def task(spec: WorkflowSpec, name: str) -> TaskSpec:
    return next(t for t in spec.tasks if t.name == name)


def errors_of(text: str, options: V1Options | None = None) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        import_workflows_v1(text, "wf.json", options)
    return [str(issue) for issue in caught.value.issues]


# -- the SDR pipeline ------------------------------------------------------------------------------


@pytest.fixture
def sdr(v1_dir: Path) -> WorkflowSpec:
    path = v1_dir / PUBLISHED
    return import_workflows_v1(path.read_text(encoding="utf-8"), str(path))


def test_the_sdr_version_imports_with_its_steps_edges_trigger_and_retry_policy(
    sdr: WorkflowSpec, v1_dir: Path
) -> None:
    original = read_json(v1_dir / PUBLISHED)["version"]
    kept = sdr.metadata["workflows_v1"]["version"]
    assert (len(kept["steps"]), len(kept["edges"])) == (9, 8)
    assert kept == original
    assert sdr.dialect == "workflows-v1"
    assert sdr.ref == "workflows_v1.wf_outbound_sdr"
    assert sdr.label == "Outbound SDR Pipeline"
    assert sdr.version == "2"
    assert sdr.timeout == timedelta(days=7)
    # every step of the flow is a task; the compensation-only step is not
    flow = [s["id"] for s in original["steps"] if s["id"] != "notify-outreach-failed"]
    assert [t.name for t in sdr.tasks if ":" not in t.name] == flow
    assert sdr.trigger is not None
    assert sdr.trigger.model_dump(exclude_defaults=True) == {
        "type": "event",
        "event_type": "hubspot.contact.created",
        "filter": "{{ event.data.snapshot.lifecycle_stage == 'lead' }}",
    }
    retry = task(sdr, "research-company").retry
    assert retry is not None
    assert (retry.count, retry.delay, retry.backoff) == (
        3,
        timedelta(seconds=30),
        Backoff.EXPONENTIAL,
    )
    assert [p.name for p in sdr.parameters] == [
        "provider",
        "entity_type",
        "entity_id",
        "action",
        "snapshot",
    ]


def test_the_sdr_version_passes_validation(sdr: WorkflowSpec, catalog: Catalog) -> None:
    assert [str(i) for i in validate_workflow(sdr, catalog)] == []
    graph = compile_graph(sdr, catalog.kind_of)
    assert set(graph.compensation_of) == {"send-outreach"}


def test_each_step_type_becomes_the_documented_task(sdr: WorkflowSpec) -> None:
    research = task(sdr, "research-company")
    assert research.action == "company.research"
    assert research.timeout == timedelta(seconds=300)
    assert research.input == {
        "payload": "{{ vars.payload }}",
        "action_type": "company.research",
        "prompt_name": "company-research",
        "skill_id": "skill_prospect_research",
        "required_capability": "company-research",
    }
    assert task(sdr, "qualify-lead").input["agent_id"] == "agent_sdr_outbound"
    governance = task(sdr, "check-governance")
    assert (governance.action, governance.input) == (
        "core.risk_policy",
        {"action_type": "email.send", "risk_level": "RISK_LEVEL_MEDIUM"},
    )
    assert [t.do for t in governance.next] == [("check-governance:approval",), ("route-by-value",)]
    branch = task(sdr, "route-by-value")
    assert branch.action == "core.branch"
    assert branch.input == {
        "branches": [
            {"label": "high-value", "holds": "{{ task['qualify-lead'].result.deal_value_usd >= 50000 }}"},  # noqa: E501
            {"label": "standard", "holds": "{{ task['qualify-lead'].result.deal_value_usd < 50000 }}"},  # noqa: E501
        ],
        "value_name": "deal_value_usd",
        "value": "{{ task['qualify-lead'].result.deal_value_usd }}",
    }  # fmt: skip
    assert [(t.when, t.do) for t in branch.next] == [
        ("{{ succeeded() and (result().selected_edge == 'high-value') }}", ("approve-high-value",)),
        ("{{ succeeded() and (result().selected_edge == 'standard') }}", ("send-outreach",)),
    ]
    approval = task(sdr, "approve-high-value")
    assert approval.action == "core.ask"
    assert approval.input["schema"]["required"] == ["approved"]
    assert [t.do for t in approval.next] == [("send-outreach",), ("approve-high-value:rejected",)]
    assert task(sdr, "approve-high-value:rejected").action == "core.fail"
    send = task(sdr, "send-outreach")
    assert send.join == "all"  # reached from the branch or after the approval
    assert send.compensate is not None
    assert send.compensate.action == "core.notify"
    assert send.compensate.input["message"] == "outreach-failed-compensation"
    notify = task(sdr, "notify-team")
    assert (notify.action, notify.input["channel"], notify.input["message"]) == (
        "core.notify",
        "log",
        "outreach-sent",
    )
    wait = task(sdr, "wait-for-reply")
    assert (wait.action, wait.input) == (
        "core.wait_for_event",
        {
            "type": "siphon.tap.gmail.message.received",
            "subject": "siphon.tap.gmail.message.received",
            "timeout": 259200,
        },
    )
    assert wait.retry is None
    assert notify.retry is None


def test_mapping_options_choose_actions_policies_and_webhooks(v1_dir: Path) -> None:
    path = v1_dir / PUBLISHED
    options = V1Options(
        ref="sales.sdr",
        actions={"skill_prospect_research": "sales.research", "lead.qualify": "sales.qualify"},
        policy="sales.policy",
        channels={"DELIVERY_CHANNEL_SLACK": {"channel": "webhook", "url": "https://hooks.test/x"}},
        parameters=["contact_id", "snapshot"],
    )
    spec = import_workflows_v1(path.read_text(encoding="utf-8"), str(path), options)
    assert spec.ref == "sales.sdr"
    assert task(spec, "research-company").action == "sales.research"  # by skill_id
    assert task(spec, "qualify-lead").action == "sales.qualify"  # by action_type
    assert task(spec, "send-outreach").action == "email.send"  # unmapped: the action type
    assert task(spec, "check-governance").action == "sales.policy"
    notify = task(spec, "notify-team").input
    assert (notify["channel"], notify["url"]) == ("webhook", "https://hooks.test/x")
    assert [p.name for p in spec.parameters][-1] == "contact_id"  # snapshot declared once


# -- smaller versions --------------------------------------------------------------------------


def test_parallel_steps_fan_out_and_join_where_they_meet() -> None:
    steps = [
        {"id": "fan", "step_type": "STEP_TYPE_PARALLEL"},
        agent("left"),
        agent("right"),
        agent("merge"),
    ]
    edges = [
        edge("fan", "left"),
        edge("fan", "right"),
        edge("left", "merge"),
        edge("right", "merge"),
    ]
    spec = import_workflows_v1(version(steps, edges), "wf.json")
    fan = task(spec, "fan")
    assert fan.action == "core.noop"
    assert [t.do for t in fan.next] == [("left", "right")]
    assert task(spec, "merge").join == "all"
    assert task(spec, "left").join is None


def test_human_tasks_ask_and_pass_the_answer_on() -> None:
    steps = [
        {"id": "review", "step_type": "STEP_TYPE_HUMAN_TASK", "timeout_seconds": 3600},
        agent("act"),
    ]
    spec = import_workflows_v1(version(steps, [edge("review", "act")]), "wf.json")
    review = task(spec, "review")
    assert review.action == "core.ask"
    assert review.input["timeout"] == 3600
    assert review.timeout is None
    [transition] = review.next
    assert [(p.name, p.value) for p in transition.publish] == [
        ("payload", "{{ result().response }}")
    ]


def test_conditions_on_plain_edges_are_independent_and_read_step_outputs() -> None:
    steps = [agent("score"), agent("high"), agent("any")]
    edges = [
        edge("score", "high", condition_expr="score.output.value > 10 && score.output.ok"),
        edge("score", "any"),
    ]
    spec = import_workflows_v1(version(steps, edges), "wf.json")
    assert [(t.when, t.do) for t in task(spec, "score").next] == [
        ("{{ succeeded() }}", ("any",)),
        (
            "{{ succeeded() and (task.score.result.value > 10 and task.score.result.ok) }}",
            ("high",),
        ),
    ]


def test_a_step_retry_policy_overrides_the_default() -> None:
    steps = [agent("a", retry_policy={"max_retries": 1, "backoff_seconds": 5}), agent("b")]
    text = version(steps, [edge("a", "b")], default_retry_policy={"max_retries": 2})
    spec = import_workflows_v1(text, "wf.json")
    a, b = task(spec, "a").retry, task(spec, "b").retry
    assert a is not None
    assert b is not None
    assert (a.count, a.delay, a.backoff) == (1, timedelta(seconds=5), Backoff.CONSTANT)
    assert (b.count, b.delay) == (2, timedelta(0))


def test_an_event_trigger_keeps_its_type_subject_and_filter() -> None:
    trigger = {
        "trigger_type": "TRIGGER_TYPE_EVENT",
        "event_type": "contact.created",
        "event_subject": "crm.contact",
        "filter_expr": "title != null",
    }
    spec = import_workflows_v1(version([agent("a")], [], trigger=trigger), "wf.json")
    assert spec.trigger is not None
    assert (spec.trigger.event_type, spec.trigger.subject, spec.trigger.filter) == (
        "contact.created",
        "crm.contact",
        "{{ event.data.title != none }}",
    )
    assert spec.parameters == ()


# -- errors ----------------------------------------------------------------------------------


def test_a_cycle_is_an_error_naming_its_steps() -> None:
    steps = [agent("a"), agent("b"), agent("c")]
    edges = [edge("a", "b"), edge("b", "c"), edge("c", "b")]
    [problem] = errors_of(version(steps, edges))
    assert problem.endswith(
        "edges: the steps form a cycle: b -> c -> b; workflows/v1 definitions must be acyclic"
    )


def test_unknown_fields_are_errors_with_their_json_path_and_line() -> None:
    text = (
        '{\n  "definition_id": "wf",\n  "owner": "me",\n  "steps": [\n'
        '    {"id": "a", "step_type": "STEP_TYPE_AGENT_ACTION", "action_type": "x.y", "agnet_id": "z"}\n'  # noqa: E501
        '  ],\n  "edges": [{"from_step_id": "a", "to_step_id": "a", "lable": "l"}]\n}\n'
    )
    problems = errors_of(text)
    assert "wf.json:3:3: owner: unknown field 'owner' in the workflow version" in problems
    assert (
        "wf.json:5:78: steps[0].agnet_id: unknown field 'agnet_id' in step 'a' "
        "(did you mean 'agent_id'?)"
    ) in problems
    assert (
        "wf.json:7:54: edges[0].lable: unknown field 'lable' in the edge (did you mean 'label'?)"
        in problems
    )
    assert (
        "wf.json:7:3: edges: the steps form a cycle: a -> a; workflows/v1 definitions must be acyclic"  # noqa: E501
        in problems
    )
    assert len(problems) == 4


def test_bad_references_and_types_are_each_reported() -> None:
    steps = [
        agent("a", compensation_step_id="nope"),
        {"id": "b", "step_type": "STEP_TYPE_TELEPORT"},
        {"id": "w", "step_type": "STEP_TYPE_WAIT_FOR_EVENT"},
        {"id": "g", "step_type": "STEP_TYPE_GOVERNANCE_CHECK"},
        {"id": "br", "step_type": "STEP_TYPE_BRANCH"},
        agent("plain", action_type="research"),
    ]
    edges = [
        edge("a", "missing"),
        edge("a", "w"),
        edge("w", "g"),
        edge("g", "br"),
        edge("br", "plain", condition_expr="size(x) > 1"),
    ]
    problems = errors_of(version(steps, edges))
    joined = "\n".join(problems)
    assert "steps[0].compensation_step_id: unknown compensation step 'nope'" in joined
    assert (
        "steps[1].step_type: step 'b' needs a 'step_type', one of STEP_TYPE_AGENT_ACTION" in joined
    )
    assert "edges[0].to_step_id: 'to_step_id' names no step: 'missing'" in joined
    assert "WAIT_FOR_EVENT step 'w' needs an 'event_type_pattern'" in joined
    assert "GOVERNANCE_CHECK step 'g' needs a 'risk_level'" in joined
    assert (
        "edges[4].condition_expr: cannot translate 'size(x) > 1': 'size(...)': function and method calls are not supported"  # noqa: E501
        in joined
    )
    assert "action_type 'research' of step 'plain' is not an action ref (pack.action)" in joined


def test_a_condition_naming_an_unknown_value_is_reported() -> None:
    steps = [
        agent("q"),
        {"id": "r", "step_type": "STEP_TYPE_BRANCH", "condition_expr": "q.output.v"},
        agent("x"),
    ]
    edges = [edge("q", "r"), edge("r", "x", condition_expr="deal > 3")]
    [problem] = errors_of(version(steps, edges))
    assert "edges[1].condition_expr: cannot translate 'deal > 3': unknown name 'deal'" in problem


def test_a_non_json_file_is_one_located_error() -> None:
    spec, issues = read_workflows_v1('{"steps": [}', "bad.json")
    assert spec is None
    assert [str(i) for i in issues] == ["bad.json:1:12: invalid JSON: Expecting value"]
