"""``attune/complete-workflow.yaml``: legacy plan fields, parallel blocks, with_items and
batches, retries, an inquiry, ``pack.config``, and Tera-isms, run with stub actions.

The file as published has a real defect: ``deploy_canary`` sends failures to
``handle_canary_failure``, a task it never defines. Treadle must report that (with its
location) and refuse to run the file unchanged. To exercise everything else the file does,
the tests patch the text in memory only, adding the smallest task that makes the reference
resolve (a ``core.noop`` named ``handle_canary_failure``); nothing else changes.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from treadle.common.catalog import Catalog
from treadle.common.errors import DefinitionError
from treadle.common.loader import load_workflow_file, load_workflow_text
from treadle.common.spec import WorkflowSpec
from treadle.common.validate import validate_workflow

FILE = "complete-workflow.yaml"
STUBS = Path(__file__).resolve().parent / "stubs"
DANGLING = (
    "236:17: task 'deploy_canary' transitions to unknown task 'handle_canary_failure' "
    "(did you mean 'handle_metrics_failures'?)"
)
# Inserted as the last task, just before the file's `output_map` section.
OUTPUT_MAP_HEADER = "\n# Workflow output mapping\noutput_map:"
MISSING_TASK = """
  - name: handle_canary_failure
    action: core.noop
    input: {}
"""
REGIONS = ["us-east-1", "eu-west-1"]
PARAMETER_FLAGS = ["-p", "app_name=shop", "-p", "version=2.0.0"]
PRODUCTION_PROMPT = (
    "Approve production deployment?\n"
    "Application: shop\n"
    "Version: 2.0.0\n"
    "Regions: us-east-1, eu-west-1\n"
)
APPROVAL_SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "approver_notes": {"type": "string"}},
}


def parameters(**overrides: Any) -> dict[str, Any]:
    return {"app_name": "shop", "version": "2.0.0", "regions": REGIONS, **overrides}


@pytest.fixture
def patched_text(attune: Path) -> str:
    """The fixture's text with the missing ``handle_canary_failure`` task added."""
    text = (attune / FILE).read_text(encoding="utf-8")
    assert text.count(OUTPUT_MAP_HEADER) == 1
    return text.replace(OUTPUT_MAP_HEADER, MISSING_TASK + OUTPUT_MAP_HEADER)


@pytest.fixture
def patched(attune: Path, patched_text: str) -> WorkflowSpec:
    """The patched workflow, loaded as if from the fixture's own path."""
    return load_workflow_text(patched_text, str(attune / FILE))


# -- the defect ------------------------------------------------------------------------------


def test_validation_reports_the_dangling_transition(attune: Path, catalog: Catalog) -> None:
    path = attune / FILE
    spec = load_workflow_file(str(path))
    issues = validate_workflow(spec, catalog, strict=True)
    assert [str(issue) for issue in issues] == [f"{path}:{DANGLING}"]


def test_the_runner_refuses_the_file_unchanged(
    attune: Path, catalog: Catalog, make_driver: Any
) -> None:
    spec = load_workflow_file(str(attune / FILE))
    driver = make_driver(catalog)
    with pytest.raises(DefinitionError) as refused:
        driver.runner.start(spec, parameters())
    assert [str(issue) for issue in refused.value.issues] == [f"{attune / FILE}:{DANGLING}"]
    with driver.runner.store.unit_of_work() as uow:
        assert uow.list_runs() == []
        # nothing that cannot run is published as a version either
        assert uow.list_definition_versions(spec.ref) == []


def test_treadle_run_refuses_the_file_unchanged(
    attune: Path, tmp_path: Path, treadle_cli: Any
) -> None:
    path = attune / FILE
    run = treadle_cli("run", path, "--pack-path", STUBS, *PARAMETER_FLAGS)
    assert run.code == 2, run.stderr
    assert run.stdout == ""
    assert run.stderr.splitlines() == [f"{path}:{DANGLING}"]
    assert not (tmp_path / "cli.db").exists()  # refused before a database was opened


def test_the_patched_file_validates_clean(patched: WorkflowSpec, catalog: Catalog) -> None:
    assert validate_workflow(patched, catalog, strict=True) == []


# -- the dev path ------------------------------------------------------------------------------


def test_the_dev_path_runs_to_the_end(
    patched: WorkflowSpec, catalog: Catalog, make_driver: Any
) -> None:
    run = make_driver(catalog).start(patched, parameters())
    assert run.status == "succeeded", run.document["error"]
    assert run.task_names() == [
        "start_workflow",
        "validate_inputs",
        "check_environment_type",
        "create_deployment_record",
        "parallel_pre_deployment_checks",
        "check_docker_registry",
        "check_kubernetes_clusters",
        "check_database_migrations",
        "verify_secrets",
        "build_and_test",
        "push_container_image",
        "check_canary_enabled",
        "deploy_to_all_regions",
        "parallel_health_checks",
        "run_smoke_tests",
        "verify_metrics",
        "update_load_balancer",
        "finalize_deployment",
        "post_deployment_tasks",
        "update_service_catalog",
        "trigger_integration_tests",
        "update_documentation",
        "notify_deployment_success",
    ]
    assert {t["status"] for t in run.document["tasks"]} == {"succeeded"}
    health_urls = [f"https://shop.{region}.dev.example.test/healthz" for region in REGIONS]
    output = run.document["output"]
    assert output == {
        "deployment_id": "dep-shop-2.0.0-dev",
        "status": "success",  # `rollback_initiated ? 'rolled_back' : 'success'`
        "deployed_version": "2.0.0",
        "deployment_urls": health_urls,
        "duration_seconds": output["duration_seconds"],
    }
    assert isinstance(output["duration_seconds"], int)
    assert output["duration_seconds"] >= 0

    # system.identity and pack.config reach the actions
    assert run.task("create_deployment_record")["result"]["initiated_by"] == "conformance-tester"
    assert run.task("check_docker_registry")["result"]["registry"] == "registry.example.test"
    assert run.task("check_docker_registry")["parallel"] == "parallel_pre_deployment_checks"
    image = run.task("build_and_test")["result"]["image_uri"]
    assert image == "registry.example.test/shop:2.0.0"
    # with_items over the regions, then batch_size 5 over the two health URLs: one call
    assert [i["item"] for i in run.task("deploy_to_all_regions")["items"]] == REGIONS
    [batch] = run.task("parallel_health_checks")["items"]
    assert batch["item"] == health_urls
    assert batch["result"]["checked"] == health_urls
    # `join(', ')` in the notification text
    message = run.task("notify_deployment_success")["result"]["message"]
    assert "Regions: us-east-1, eu-west-1\n" in message
    assert "Deployment ID: dep-shop-2.0.0-dev\n" in message


def test_a_healthy_canary_deploys_the_remaining_regions(
    patched: WorkflowSpec, catalog: Catalog, make_driver: Any
) -> None:
    regions = ["us-east-1", "eu-west-1", "ap-south-1"]
    run = make_driver(catalog).start(patched, parameters(regions=regions, enable_canary=True))
    assert run.status == "succeeded", run.document["error"]
    names = run.task_names()
    assert names.index("deploy_canary") < names.index("monitor_canary")
    assert names.index("promote_canary") < names.index("deploy_to_remaining_regions")
    assert "deploy_to_all_regions" not in names
    assert run.task("deploy_canary")["result"]["region"] == "us-east-1"  # `regions | first`
    # `regions | slice(start=1)`
    remaining = run.task("deploy_to_remaining_regions")["items"]
    assert [item["item"] for item in remaining] == ["eu-west-1", "ap-south-1"]
    assert run.document["output"]["status"] == "success"
    assert names[-1] == "notify_deployment_success"


def test_a_failed_canary_rolls_back_and_the_output_says_so(
    patched: WorkflowSpec, catalog: Catalog, make_driver: Any
) -> None:
    run = make_driver(catalog).start(
        patched, parameters(app_name="shop-unhealthy", enable_canary=True)
    )
    assert run.status == "succeeded", run.document["error"]
    assert run.task_names()[-4:] == [
        "deploy_canary",
        "monitor_canary",
        "rollback_canary",
        "notify_canary_failed",
    ]
    # the ternary's true branch: rollback_canary published rollback_initiated: true
    assert run.document["output"]["status"] == "rolled_back"
    assert "Canary has been rolled back" in run.task("notify_canary_failed")["result"]["message"]


# -- the production path: an inquiry -------------------------------------------------------------


def test_the_production_path_waits_for_approval(
    patched: WorkflowSpec, catalog: Catalog, make_driver: Any
) -> None:
    run = make_driver(catalog).start(patched, parameters(environment="production"))
    assert run.followed.waiting
    assert run.status == "running"
    assert run.task_names() == [
        "start_workflow",
        "validate_inputs",
        "check_environment_type",
        "require_production_approval",
    ]
    approval = run.task("require_production_approval")
    assert approval["status"] == "waiting"
    [inquiry] = run.document["inquiries"]
    assert inquiry == {
        "id": approval["inquiry"],
        "task": "require_production_approval",
        "status": "pending",
        "prompt": PRODUCTION_PROMPT,  # `regions | join(', ')`
        "schema": APPROVAL_SCHEMA,
        "assigned_to": "deployment-approvers",
        "purpose": "task",  # a task's question (a budget's or an escalation's say so)
    }


def test_treadle_run_exits_3_at_the_approval(
    patched_text: str, tmp_path: Path, treadle_cli: Any
) -> None:
    patched_file = tmp_path / FILE  # a scratch copy with the missing task added
    patched_file.write_text(patched_text, encoding="utf-8")
    production = ["-p", "environment=production", "-p", f"regions={json.dumps(REGIONS)}"]
    run = treadle_cli(
        "run", patched_file, "--json", "--pack-path", STUBS, *PARAMETER_FLAGS, *production
    )
    assert run.code == 3, run.stderr
    document = json.loads(run.stdout)
    assert document["status"] == "running"
    assert document["tasks"][-1]["name"] == "require_production_approval"
    [inquiry] = document["inquiries"]
    assert (inquiry["prompt"], inquiry["schema"]) == (PRODUCTION_PROMPT, APPROVAL_SCHEMA)
    assert "? require_production_approval waiting" in run.stderr


def test_a_denied_production_deployment_is_cancelled(
    patched: WorkflowSpec, catalog: Catalog, make_driver: Any
) -> None:
    driver = make_driver(catalog)
    waiting = driver.start(patched, parameters(environment="production"))
    run = driver.respond(waiting, {"approved": False, "approver_notes": "not this week"})
    assert run.status == "succeeded", run.document["error"]
    assert run.task_names()[-3:] == [
        "require_production_approval",
        "cancel_deployment",
        "notify_deployment_cancelled",
    ]
    answer = {"approved": False, "approver_notes": "not this week"}
    # The answer's fields (what Attune workflows read) and the whole answer as `response`.
    assert run.task("require_production_approval")["result"] == {**answer, "response": answer}
    assert run.task("cancel_deployment")["result"]["status"] == "cancelled"
    assert "create_deployment_record" not in run.task_names()
    assert run.document["inquiries"][0]["status"] == "answered"


def test_an_approved_production_deployment_runs_to_the_end(
    patched: WorkflowSpec, catalog: Catalog, make_driver: Any
) -> None:
    driver = make_driver(catalog)
    waiting = driver.start(patched, parameters(environment="production"))
    run = driver.respond(waiting, {"approved": True})
    assert run.status == "succeeded", run.document["error"]
    names = run.task_names()
    assert names[names.index("require_production_approval") + 1] == "create_deployment_record"
    assert names[-1] == "notify_deployment_success"
    assert run.document["output"]["deployment_id"] == "dep-shop-2.0.0-production"


def test_an_unanswered_approval_times_out_into_its_on_timeout_task(
    patched: WorkflowSpec, catalog: Catalog, make_driver: Any, shifted_clock: Any
) -> None:
    driver = make_driver(catalog, clock=shifted_clock)
    waiting = driver.start(patched, parameters(environment="production"))
    assert waiting.followed.waiting
    shifted_clock.offset += timedelta(seconds=3601)  # past the inquiry's `timeout: 3600`
    run = driver.follow(waiting.run_id)
    assert run.status == "succeeded", run.document["error"]
    assert run.task("require_production_approval")["status"] == "timed_out"
    assert run.task_names()[-2:] == ["deployment_approval_timeout", "notify_approval_timeout"]
    assert run.task("deployment_approval_timeout")["result"]["metadata"] == {
        "reason": "approval_timeout"
    }
    assert run.document["inquiries"][0]["status"] == "timed_out"
