"""AOS plans: import (``depends_on``, numeric ``dependencies``, references, seeds) and runs.

Conformance: ``workflow_multi_skill.json`` runs its three steps in dependency order with
stub skills and ends ``ok``; ``m4_execution_plan.json``'s numeric dependencies are edges.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from treadle.common.catalog import Catalog
from treadle.common.dialects import AosOptions, import_aos, read_aos, step_seed
from treadle.common.errors import DefinitionError
from treadle.common.graph import compile_graph
from treadle.common.spec import WorkflowSpec
from treadle.common.validate import validate_workflow
from treadle.scheduler.service.renderings import aos_run

from .conftest import Driver, read_json


def plan(*steps: dict[str, Any]) -> str:
    return json.dumps({"plan": {"steps": list(steps)}})


def run_plan(driver: Driver, text: str) -> dict[str, Any]:
    spec = import_aos(text, "plan.json")
    run_id = driver.start(spec)
    result: dict[str, Any] = aos_run(driver.stored(run_id))
    return result


def by_step(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["step_id"]: step for step in result["steps"]}


@pytest.fixture
def multi_skill(aos_dir: Path) -> WorkflowSpec:
    path = aos_dir / "workflow_multi_skill.json"
    return import_aos(path.read_text(encoding="utf-8"), str(path))


def test_the_multi_skill_plan_imports_with_its_references_rewritten(
    multi_skill: WorkflowSpec, catalog: Catalog
) -> None:
    assert multi_skill.dialect == "aos"
    assert [(t.name, t.action) for t in multi_skill.tasks] == [
        ("s1", "skill.http_call"),
        ("s2", "skill.json_transform"),
        ("s3", "skill.llm_invoke"),
    ]
    s1, s2, s3 = multi_skill.tasks
    assert s1.retry is not None
    assert s1.retry.count == 3
    assert s2.input["data"] == "{{ task.s1.result.body }}"
    assert s3.input["prompt"] == "Summarize this email: {{ task.s2.result.output }}"
    assert s2.when == "{{ task.s1.status == 'succeeded' }}"
    assert [str(i) for i in validate_workflow(multi_skill, catalog)] == []


def test_the_multi_skill_plan_runs_in_dependency_order_to_ok(
    driver: Driver, multi_skill: WorkflowSpec, aos_dir: Path
) -> None:
    expected = read_json(aos_dir / "workflow_multi_skill.json")["expected_output"]
    run_id = driver.start(multi_skill)
    stored = driver.stored(run_id)
    order = [stored.state.executions[i].task for i in sorted(stored.state.executions)]
    assert order == ["s1", "s2", "s3"]
    result = aos_run(stored)
    assert result["status"] == expected["status"] == "ok"
    assert [(s["step_id"], s["skill"], s["ok"]) for s in result["steps"]] == [
        (s["step_id"], s["skill"], s["ok"]) for s in expected["steps"]
    ]
    steps = by_step(result)
    assert steps["s2"]["output"]["output"] == "jane.doe@example.com"  # s1's body, extracted
    assert (
        steps["s3"]["output"]["output"] == "[stub-model] Summarize this email: jane.doe@example.com"
    )
    assert all(len(s["output_hash"]) == 64 for s in result["steps"])
    assert len(result["workflow_hash"]) == 64


def test_each_step_gets_a_seed_derived_from_the_run_seed_and_the_step(
    driver: Driver, multi_skill: WorkflowSpec
) -> None:
    run_id = driver.start(multi_skill)
    stored = driver.stored(run_id)
    seed = stored.state.context.seed
    seeds = {
        command.dispatch.task: command.dispatch.input["seed"]
        for command in stored.dispatches.values()
    }
    assert seeds == {name: step_seed(seed, name) for name in ("s1", "s2", "s3")}
    assert len(set(seeds.values())) == 3
    assert by_step(aos_run(stored))["s3"]["output"]["seed"] == seeds["s3"]
    assert step_seed(seed, "s1") == step_seed(seed, "s1") != step_seed(seed + 1, "s1")


def test_numeric_dependencies_import_as_edges(aos_dir: Path, driver: Driver) -> None:
    path = aos_dir / "m4_execution_plan.json"
    spec = import_aos(path.read_text(encoding="utf-8"), str(path))
    assert spec.ref == "aos.golden_test_m4_001"
    graph = compile_graph(spec)
    assert [(e.source, e.target) for e in graph.edges] == [("1", "2"), ("2", "3")]
    assert graph.entries == ("1",)
    assert [t.action for t in spec.tasks] == ["aos.fetch_data", "aos.transform", "aos.store_result"]
    run_id = driver.start(spec)
    assert aos_run(driver.stored(run_id))["status"] == "ok"


def test_on_error_abort_fails_the_run_and_runs_no_dependant(driver: Driver) -> None:
    result = run_plan(
        driver,
        plan(
            {"step_id": "a", "skill": "skill.broken"},
            {"step_id": "b", "skill": "aos.fetch_data", "depends_on": ["a"]},
        ),
    )
    assert result["status"] == "error"
    steps = by_step(result)
    assert (steps["a"]["ok"], steps["a"]["error"]["type"]) == (False, "SkillFailed")
    assert steps["b"]["status"] == "skipped"
    assert "task 'a' failed" in result["error"]["message"]


def test_on_error_continue_runs_dependants_after_a_failure(driver: Driver) -> None:
    result = run_plan(
        driver,
        plan(
            {"step_id": "a", "skill": "skill.broken", "on_error": "continue"},
            {"step_id": "b", "skill": "aos.fetch_data", "depends_on": ["a"]},
        ),
    )
    assert result["status"] == "ok"
    assert [(s["step_id"], s["ok"]) for s in result["steps"]] == [("a", False), ("b", True)]


def test_on_error_skip_skips_dependants_and_theirs_but_not_the_rest(driver: Driver) -> None:
    result = run_plan(
        driver,
        plan(
            {"step_id": "a", "skill": "skill.broken", "on_error": "skip"},
            {"step_id": "b", "skill": "aos.fetch_data", "depends_on": ["a"]},
            {"step_id": "c", "skill": "aos.transform", "depends_on": ["b"]},
            {"step_id": "d", "skill": "aos.store_result"},
            {"step_id": "e", "skill": "aos.store_result", "depends_on": ["a", "d"]},
        ),
    )
    assert result["status"] == "ok"
    assert {s["step_id"]: s["status"] for s in result["steps"]} == {
        "a": "failed", "b": "skipped", "c": "skipped", "d": "succeeded", "e": "skipped",
    }  # fmt: skip


def test_retry_count_retries_a_failing_skill(driver: Driver) -> None:
    result = run_plan(
        driver,
        plan(
            {
                "step_id": "f",
                "skill": "skill.flaky",
                "retry_count": 2,
                "params": {"key": "retry-test", "fail_times": 2},
            }
        ),
    )
    [step] = result["steps"]
    assert (step["ok"], step["retries"], step["output"]) == (True, 2, {"attempts": 3})


def test_skill_mapping_and_default_pack() -> None:
    spec = import_aos(
        plan(
            {"step_id": "x", "skill": "fetch"},
            {"step_id": "y", "skill": "llm", "depends_on": ["x"]},
        ),
        "plan.json",
        AosOptions(skills={"llm": "skill.llm_invoke"}, default_pack="tools", seed=False),
    )
    assert [t.action for t in spec.tasks] == ["tools.fetch", "skill.llm_invoke"]
    assert all("seed" not in t.input for t in spec.tasks)


def test_plan_errors_are_reported_with_their_json_paths() -> None:
    text = plan(
        {"step_id": "a", "skill": "aos.fetch_data", "depends_on": ["b"], "retries": 2},
        {"step_id": "b", "skill": "aos.fetch_data", "depends_on": ["a"], "on_error": "explode"},
        {"step_id": "c", "skill": "aos.transform", "depends_on": ["zz"],
         "params": {"x": "{{ s9.out }}"}},
    )  # fmt: skip
    spec, issues = read_aos(text, "plan.json")
    assert spec is None
    messages = [issue.message for issue in issues]
    assert "plan.steps[0].retries: unknown field 'retries' in the step" in messages
    assert any(
        m.startswith("plan.steps[1].on_error: 'on_error' must be one of abort, continue, skip")
        for m in messages
    )
    assert "plan.steps[2]: step 'c' depends on unknown step 'zz'" in messages
    assert any("the steps depend on each other in a cycle: a -> b -> a" in m for m in messages)
    with pytest.raises(DefinitionError):
        import_aos(text, "plan.json")


def test_an_unknown_step_reference_in_params_is_an_error() -> None:
    spec, issues = read_aos(
        plan({"step_id": "a", "skill": "x.y", "params": {"v": "{{ s9.out }}"}}), "p.json"
    )
    assert spec is None
    assert [i.message for i in issues] == [
        "plan.steps[0].params.v: '{{ s9.out }}' refers to unknown step 's9'"
    ]


def test_a_reference_must_name_a_step_the_step_runs_after() -> None:
    """Reading a step that is not a (transitive) dependency could read a result not there yet."""
    ok = plan(
        {"step_id": "a", "skill": "x.y"},
        {"step_id": "b", "skill": "x.y", "depends_on": ["a"]},
        {"step_id": "c", "skill": "x.y", "depends_on": ["b"], "params": {"v": "{{a.body}}"}},
    )
    assert import_aos(ok, "p.json").tasks[2].input["v"] == "{{ task.a.result.body }}"
    spec, issues = read_aos(
        plan(
            {"step_id": "a", "skill": "x.y", "params": {"v": "{{a.out}}"}},
            {"step_id": "b", "skill": "x.y", "params": {"v": ["{{a.out}}"]}},
        ),
        "p.json",
    )
    assert spec is None
    assert [i.message for i in issues] == [
        "plan.steps[0].params.v: '{{a.out}}' in step 'a' reads its own result",
        "plan.steps[1].params.v[0]: '{{a.out}}' reads step 'a', which step 'b' does not depend "
        "on, so it may not have run yet; add 'a' to its 'depends_on'",
    ]
