"""The Attune conformance fixtures (``../shared/conformance/attune/``) through the loader.

The fixtures are reference data outside the repository; these tests skip when the folder
is absent. See the conformance README for what must hold for each file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from treadle.common.loader import load_packs, load_workflow_file, read_workflow_file
from treadle.common.source import Severity
from treadle.common.spec import TaskSpec, WorkflowSpec
from treadle.common.validate import validate_paths, validate_workflow

ATTUNE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "attune"

pytestmark = pytest.mark.skipif(
    not ATTUNE.is_dir(), reason=f"conformance fixtures not found at {ATTUNE}"
)


def task(spec: WorkflowSpec, name: str) -> TaskSpec:
    def walk(tasks: tuple[TaskSpec, ...]) -> TaskSpec | None:
        for t in tasks:
            if t.name == name:
                return t
            found = walk(t.tasks)
            if found is not None:
                return found
        return None

    found = walk(spec.tasks)
    assert found is not None, name
    return found


def test_simple_workflow_loads() -> None:
    spec = load_workflow_file(ATTUNE / "simple-workflow.yaml")
    assert spec.ref == "examples.simple_sequential_workflow"
    assert [t.name for t in spec.tasks] == ["log_input", "process_message", "finalize"]
    assert [p.name for p in spec.parameters] == ["message", "uppercase"]
    assert [v.name for v in spec.vars] == ["processed_message", "timestamp"]
    [transition] = task(spec, "log_input").next
    assert transition.when == "{{ succeeded() }}"
    assert transition.publish[0].name == "timestamp"
    assert transition.do == ("process_message",)
    assert set(spec.output_map) == {"original", "processed", "final"}


def test_complete_workflow_loads_and_converts_legacy_fields() -> None:
    spec = load_workflow_file(ATTUNE / "complete-workflow.yaml")
    approval = task(spec, "require_production_approval")
    assert [(t.when, t.do, [p.name for p in t.publish]) for t in approval.next] == [
        ("{{ succeeded() }}", (), ["approval_granted"]),
        (
            "{{ succeeded() and (workflow.approval_granted == true) }}",
            ("create_deployment_record",),
            [],
        ),
        (
            "{{ succeeded() and not (workflow.approval_granted == true) }}",
            ("cancel_deployment",),
            [],
        ),
        ("{{ timed_out() }}", ("deployment_approval_timeout",), []),
    ]
    assert [t.path[-2:] if t.path[-2] == "decision" else t.path[-1:] for t in approval.next] == [
        ("publish",),
        ("decision", 0),
        ("decision", 1),
        ("on_timeout",),
    ]
    checks = task(spec, "parallel_pre_deployment_checks")
    assert [t.name for t in checks.tasks] == [
        "check_docker_registry",
        "check_kubernetes_clusters",
        "check_database_migrations",
        "verify_secrets",
    ]
    health = task(spec, "parallel_health_checks")
    assert (health.with_items, health.batch_size) == ("{{ workflow.health_check_urls }}", 5)
    assert health.retry is not None
    assert (health.retry.count, health.retry.backoff) == (10, "linear")
    assert task(spec, "build_and_test").timeout is not None


def test_complete_workflow_validation_reports_its_dangling_target() -> None:
    """The fixture sends ``deploy_canary``'s failure to a task it never defines."""
    spec, issues = read_workflow_file(str(ATTUNE / "complete-workflow.yaml"))
    assert spec is not None
    assert issues == []
    errors = [i for i in validate_workflow(spec) if i.severity is Severity.ERROR]
    assert [(i.loc.line, i.message) for i in errors] == [
        (
            236,
            "task 'deploy_canary' transitions to unknown task 'handle_canary_failure' "
            "(did you mean 'handle_metrics_failures'?)",
        )
    ]


def test_install_packs_loads_and_validates() -> None:
    spec = load_workflow_file(ATTUNE / "install_packs.yaml")
    assert spec.ref == "core.install_packs"
    assert [v.name for v in spec.vars][:2] == ["temp_dir", "downloaded_packs"]
    assert spec.output_schema is not None
    assert spec.output_schema["type"] == "object"
    build = task(spec, "build_environments")
    assert [(t.when, t.do) for t in build.next][2:4] == [
        (
            "{{ failed() and (parameters.force or parameters.skip_env_build) "
            "and (not parameters.skip_tests) }}",
            ("run_tests",),
        ),
        (
            "{{ failed() and (parameters.force or parameters.skip_env_build) "
            "and not (not parameters.skip_tests) and (parameters.skip_tests) }}",
            ("register_packs",),
        ),
    ]
    issues = validate_paths([ATTUNE / "install_packs.yaml"])
    assert [str(i) for i in issues if i.severity is Severity.ERROR] == []


def test_test_pack_loads_clean_through_the_pack_loader() -> None:
    catalog = load_packs([ATTUNE / "split-layout" / "test_pack"])
    assert catalog.issues == []
    spec = catalog.workflows["test_pack.inquiry_workflow"]
    assert [p.name for p in spec.parameters] == [
        "purpose",
        "prompt",
        "response_schema",
        "response_options",
        "timeout_seconds",
    ]
    assert task(spec, "guarded_task").wait_for is not None
    assert catalog.actions["test_pack.inquiry_workflow"].workflow_file is not None
    issues = validate_workflow(spec, catalog)
    assert [str(i) for i in issues if i.severity is Severity.ERROR] == []


def test_examples_pack_gives_exactly_the_iterate_cache_error() -> None:
    folder = ATTUNE / "split-layout" / "examples"
    catalog = load_packs([folder])
    [issue] = catalog.issues
    assert issue.loc.file.endswith("process_cached_users.workflow.yaml")
    assert (issue.loc.line, issue.loc.col) == (10, 5)
    assert issue.message.startswith(
        "`iterate_cache` (Attune's data-cache iterator) is not supported"
    )
    assert catalog.workflows == {}
    assert validate_paths([folder]) == [issue]


def test_orquesta_gives_exactly_one_error() -> None:
    spec, issues = read_workflow_file(str(ATTUNE / "orquesta-style-simple_workflow.yaml"))
    assert spec is None
    [issue] = issues
    assert issue.loc.line == 19
    assert "StackStorm Orquesta" in issue.message
