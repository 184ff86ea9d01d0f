"""Stand-ins for the actions the Attune conformance fixtures call but Treadle does not ship.

Each function returns small, plausible, deterministic data shaped like what the fixture's
templates read (``result.image_uri``, ``results | map(attribute='health_url')`` ...), so the
engine's routing, templating and state handling run for real. None of them does any I/O.
Outcomes depend only on the inputs (an app named ``*-unhealthy`` fails its canary analysis),
so a test picks a path through a workflow by its parameters.
"""

from __future__ import annotations

import hashlib
from typing import Any


def _digest(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:12]


# -- simple-workflow.yaml -------------------------------------------------------------------


def string_transform(text: str, uppercase: bool = False) -> dict[str, Any]:
    """Collapses runs of whitespace, and upper-cases when asked: visibly transformed text."""
    collapsed = " ".join(text.split())
    transformed = collapsed.upper() if uppercase else collapsed
    return {"text": transformed, "length": len(transformed)}


# -- complete-workflow.yaml: validation and preparation -------------------------------------


def validate_deployment_params(
    app_name: str, version: str, environment: str, regions: list[str]
) -> dict[str, Any]:
    return {"valid": True, "errors": [], "checked": [app_name, version, environment, *regions]}


def create_record(
    app_name: str, version: str, environment: str, regions: list[str], initiated_by: Any = None
) -> dict[str, Any]:
    return {
        "id": f"dep-{app_name}-{version}-{environment}",
        "regions": regions,
        "initiated_by": initiated_by,
    }


def check_registry_health(registry: str) -> dict[str, Any]:
    return {"registry": registry, "healthy": True}


def check_clusters(regions: list[str]) -> dict[str, Any]:
    return {"clusters": [{"region": region, "ready": True} for region in regions]}


def check_pending_migrations(app_name: str, environment: str) -> dict[str, Any]:
    return {"app_name": app_name, "environment": environment, "pending": 0}


def verify_availability(app_name: str, environment: str) -> dict[str, Any]:
    return {"available": True, "missing": []}


# -- build, push, canary ---------------------------------------------------------------------


def build_and_test(app_name: str, version: str, registry: str, run_tests: bool) -> dict[str, Any]:
    image = f"{registry}/{app_name}"
    return {
        "image_name": image,
        "image_uri": f"{image}:{version}",
        "tests_passed": run_tests,
    }


def push_image(image: str, tag: str, registry: str) -> dict[str, Any]:
    return {"pushed": f"{image}:{tag}", "digest": f"sha256:{_digest(image, tag)}"}


def deploy_canary(
    app_name: str, image: str, region: str, traffic_percentage: int
) -> dict[str, Any]:
    return {"region": region, "image": image, "traffic_percentage": traffic_percentage}


def analyze_canary(app_name: str, duration: int, error_threshold: float) -> dict[str, Any]:
    """The canary of an app whose name ends in ``-unhealthy`` fails its analysis."""
    if app_name.endswith("-unhealthy"):
        return {"success": False, "error_rate": error_threshold * 5, "duration": duration}
    return {"success": True, "error_rate": error_threshold / 10, "duration": duration}


def promote_canary(app_name: str, region: str) -> dict[str, Any]:
    return {"promoted": True, "region": region}


def rollback_canary(app_name: str, region: str) -> dict[str, Any]:
    return {"rolled_back": True, "region": region}


# -- deployment, verification, traffic ----------------------------------------------------------


def deploy(
    app_name: str, image: str, region: str, replicas: int, environment: str
) -> dict[str, Any]:
    return {
        "region": region,
        "image": image,
        "replicas": replicas,
        "health_url": f"https://{app_name}.{region}.{environment}.example.test/healthz",
    }


def http_get(url: str | list[str], expected_status: int = 200, timeout: int = 30) -> dict[str, Any]:
    """``url`` is a list when the task uses ``batch_size``: each call checks one batch."""
    urls = url if isinstance(url, list) else [url]
    return {"checked": urls, "status_code": expected_status}


def run_smoke_tests(app_name: str, environment: str, base_urls: list[str]) -> dict[str, Any]:
    return {"passed": len(base_urls), "failed": 0, "summary": f"{len(base_urls)} passed"}


def verify_deployment_metrics(
    app_name: str, environment: str, thresholds: dict[str, Any]
) -> dict[str, Any]:
    return {"within_thresholds": True, "violations": [], "thresholds": thresholds}


def update_load_balancer(app_name: str, region: str, target_version: str) -> dict[str, Any]:
    return {"region": region, "target_version": target_version, "updated": True}


def update_status(deployment_id: Any, status: str, metadata: dict[str, Any]) -> dict[str, Any]:
    return {"deployment_id": deployment_id, "status": status, "metadata": metadata}


def update_service_version(app_name: str, version: str, environment: str) -> dict[str, Any]:
    return {"catalog_entry": f"{app_name}@{version}", "environment": environment}


def trigger_integration_suite(app_name: str, environment: str) -> dict[str, Any]:
    return {"suite_id": f"it-{_digest(app_name, environment)}"}


def update_deployment_history(app_name: str, version: str, deployment_id: Any) -> dict[str, Any]:
    return {"page": f"docs/{app_name}/deployments", "deployment_id": deployment_id}


# -- failure handlers, rollback, notifications ----------------------------------------------------


def analyze_failures(deployment_id: Any, failed_tasks: Any) -> dict[str, Any]:
    failed = failed_tasks if isinstance(failed_tasks, list) else []
    return {"failed_regions": [entry.get("item") for entry in failed if isinstance(entry, dict)]}


def analyze_health_failures(deployment_id: Any, failed_urls: Any) -> dict[str, Any]:
    return {"deployment_id": deployment_id, "failed": failed_urls}


def capture_smoke_test_results(deployment_id: Any, results: Any) -> dict[str, Any]:
    return {"deployment_id": deployment_id, "captured": results}


def capture_metric_violations(deployment_id: Any, violations: Any) -> dict[str, Any]:
    return {"deployment_id": deployment_id, "captured": violations}


def diagnose_lb_failure(regions: list[str], error: Any) -> dict[str, Any]:
    return {"regions": regions, "diagnosis": "stub"}


def rollback_deployment(app_name: str, region: str, target_version: str) -> dict[str, Any]:
    return {"region": region, "target_version": target_version, "rolled_back": True}


def cleanup_resources(deployment_id: Any, reason: str) -> dict[str, Any]:
    return {"deployment_id": deployment_id, "reason": reason, "cleaned": True}


def send_multi_channel(
    channels: list[str], message: str, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Echoes the rendered message, so tests can read what would have been sent."""
    return {"sent_to": channels, "message": message, "metadata": metadata or {}}


# -- split-layout/test_pack ------------------------------------------------------------------


def create_inquiry(
    purpose: str,
    prompt: str,
    response_schema: dict[str, Any],
    response_options: list[Any],
    timeout_seconds: int,
) -> dict[str, Any]:
    return {"inquiry_id": int(_digest(purpose, prompt), 16) % 100_000}
