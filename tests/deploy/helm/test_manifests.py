"""Every manifest the chart renders is one Kubernetes accepts: Kubernetes' own kinds against
its schemas (kubernetes-validate, strict, Kubernetes 1.29), ServiceMonitor, PrometheusRule
and ScaledObject against their projects' CRD schemas (crds/README.md), and the alert rules
the PrometheusRule carries through promtool."""

from __future__ import annotations

import copy
import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from tests.deploy.helm.chart import CHART, ROOT, Rendered
from tests.deploy.test_alert_rules import _promtool

KUBERNETES = "1.29"
CRDS = Path(__file__).resolve().parent / "crds"
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_v1_servicemonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_v1_prometheusrule.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_v1alpha1_scaledobject.json",
}
ALERTS = ROOT / "deploy" / "prometheus" / "treadle-alerts.yml"


def _strict(schema: Any) -> Any:
    """The schema with unknown fields refused wherever it lists an object's fields."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@cache
def _crd_validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    schema = json.loads((CRDS / CRD_SCHEMAS[api_version, kind]).read_text())
    return jsonschema.Draft7Validator(_strict(schema))


def _problems(doc: dict[str, Any]) -> list[str]:
    """Why Kubernetes (or the CRD's schema) would refuse ``doc``; empty when it would not."""
    key = (doc["apiVersion"], doc["kind"])
    if key in CRD_SCHEMAS:
        return [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in _crd_validator(*key).iter_errors(doc)
        ]
    try:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(map(str, exc.path))}: {exc.message}"]
    return []


def test_every_manifest_is_valid(release: Rendered) -> None:
    problems = {
        f"{m.source} {m.kind}/{m.name}": found
        for m in release.manifests
        if (found := _problems(m.doc))
    }
    assert problems == {}


def test_everything_on_renders_every_kind(everything: Rendered) -> None:
    kinds = {m.kind for m in everything.manifests}
    assert kinds == {
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Job",
        "PodDisruptionBudget",
        "PrometheusRule",
        "ScaledObject",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    }
    deployments = sorted(m.name for m in everything.of_kind("Deployment"))
    assert deployments == [
        f"release-name-treadle-{component}"
        for component in (
            "api",
            "beat",
            "flower",
            "scheduler",
            "worker-default",
            "worker-gpu",
            "worker-reports",
        )
    ]


def test_the_defaults_render_only_the_core(defaults: Rendered) -> None:
    assert sorted(
        (m.kind, m.name.removeprefix("release-name-treadle-")) for m in defaults.manifests
    ) == [
        ("Deployment", "api"),
        ("Deployment", "beat"),
        ("Deployment", "scheduler"),
        ("Deployment", "worker-default"),
        ("Job", "migrate"),
        ("PodDisruptionBudget", "scheduler"),
        ("Service", "api"),
    ]


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        (
            "Deployment",
            lambda d: d["spec"]["template"]["spec"]["containers"][0].update(comand=["x"]),
        ),
        ("ScaledObject", lambda d: d["spec"].update(minReplicas=1)),
        ("ScaledObject", lambda d: d["spec"]["triggers"][0].update(metadata={"value": 20})),
        ("ServiceMonitor", lambda d: d["spec"]["endpoints"][0].update(intervall="30s")),
        ("PrometheusRule", lambda d: d["spec"]["groups"][0]["rules"][0].update(expr=None)),
    ],
    ids=[
        "deployment-typo",
        "scaledobject-typo",
        "trigger-value-not-a-string",
        "sm-typo",
        "no-expr",
    ],
)
def test_the_validation_catches_a_bad_manifest(
    everything: Rendered, kind: str, change: Any
) -> None:
    doc = copy.deepcopy(everything.of_kind(kind)[0].doc)
    change(doc)
    assert _problems(doc) != []


def test_the_prometheus_rule_carries_treadles_alert_rules(everything: Rendered) -> None:
    [rule] = everything.of_kind("PrometheusRule")
    expected = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    assert rule.doc["spec"]["groups"] == expected


def test_the_charts_copy_of_the_alert_rules_is_the_same_file() -> None:
    copy_in_chart = CHART / "files" / "treadle-alerts.yml"
    assert copy_in_chart.read_bytes() == ALERTS.read_bytes(), (
        f"{copy_in_chart} differs from {ALERTS}: Helm reads no file outside the chart, so it "
        f"carries a copy; copy {ALERTS.relative_to(ROOT)} over it"
    )


def test_promtool_accepts_the_rendered_rules(everything: Rendered, tmp_path: Path) -> None:
    [rule] = everything.of_kind("PrometheusRule")
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": rule.doc["spec"]["groups"]}), encoding="utf-8")
    result = subprocess.run(
        [_promtool(), "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
