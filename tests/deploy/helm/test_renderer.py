"""The test renderer does what Helm does, and fails where Helm fails, with Helm's messages:
on a small chart made here, and on Treadle's chart where it must refuse values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.deploy.helm.chart import HelmError, render

HELPERS = """\
{{- define "probe.greeting" -}}
hello {{ . }}
{{- end -}}
"""

TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-{{ .Chart.Name }}
  namespace: {{ .Release.Namespace }}
data:
  included: {{ include "probe.greeting" .Values.who | quote }}
  tpl: {{ tpl .Values.template . | quote }}
  chart: {{ printf "%s %s %s" .Chart.Name .Chart.Version .Chart.AppVersion | quote }}
  {{- with .Release }}
  release: {{ printf "%s %v %v %v" .Service .IsInstall .IsUpgrade .Revision | quote }}
  {{- end }}
  {{- with .Capabilities.KubeVersion }}
  kube: {{ printf "%s %s" .Version .Minor | quote }}
  {{- end }}
  has-v1: {{ .Capabilities.APIVersions.Has "apps/v1" | quote }}
  has-keda: {{ .Capabilities.APIVersions.Has "keda.sh/v1alpha1" | quote }}
  missing: "{{ .Values.missing }}"
  big: {{ .Values.big | quote }}
  merged: {{ toJson .Values.merged | quote }}
  file: {{ .Files.Get "files/a.txt" | trim | quote }}
  glob: "{{ range $path, $_ := .Files.Glob "files/*.txt" }}{{ $path }} {{ end }}"
  lookup: {{ lookup "v1" "Secret" "default" "x" | toJson | quote }}
  from-yaml: {{ (.Files.Get "files/doc.yaml" | fromYaml).key | quote }}
  template: {{ .Template.Name | quote }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: as-config
data:
  {{- (.Files.Glob "files/*.txt").AsConfig | nindent 2 }}
"""


def _chart(tmp_path: Path, template: str = TEMPLATE) -> Path:
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "files").mkdir()
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: probe\nversion: 1.2.3\nappVersion: '4.5'\n"
        "kubeVersion: '>=1.25.0-0'\n"
    )
    (chart / "values.yaml").write_text(
        "who: world\ntemplate: '{{ .Values.who }} via tpl'\nbig: 1000000\n"
        "merged: {keep: chart, replaced: chart, removed: chart, deep: {a: 1, b: 1}}\n"
    )
    (chart / "templates" / "_helpers.tpl").write_text(HELPERS)
    (chart / "templates" / "NOTES.txt").write_text("Installed {{ .Release.Name }}.\n")
    (chart / "templates" / "config.yaml").write_text(template)
    (chart / "files" / "a.txt").write_text("alpha\n")
    (chart / "files" / "b.txt").write_text("beta\n")
    (chart / "files" / "doc.yaml").write_text("key: from a file\n")
    return chart


def test_it_renders_as_helm_template_does(tmp_path: Path) -> None:
    chart = _chart(tmp_path)
    first = tmp_path / "first.yaml"
    first.write_text("merged: {replaced: first, removed: null, deep: {b: 2}}\nwho: first\n")
    second = tmp_path / "second.yaml"
    second.write_text("who: second\n")

    rendered = render(first, second, sets=["merged.deep.c=3"], chart=chart, release="rel")

    assert [m.source for m in rendered.manifests] == ["probe/templates/config.yaml"] * 2
    data = rendered.manifests[0].doc["data"]
    assert rendered.manifests[0].doc["metadata"] == {"name": "rel-probe", "namespace": "default"}
    assert data == {
        "included": "hello second",  # the last values file wins; partials are includable
        "tpl": "second via tpl",
        "chart": "probe 1.2.3 4.5",
        "release": "Helm true false 1",
        "kube": "v1.29.0 29",
        "has-v1": "true",
        "has-keda": "false",
        "missing": "",  # missingkey=zero, and Helm removes "<no value>"
        "big": "1e+06",  # Helm's values are JSON numbers: float64
        # the chart's defaults under the files and --set; a user's null removes a default
        "merged": '{"deep":{"a":1,"b":2,"c":3},"keep":"chart","replaced":"first"}',
        "file": "alpha",
        "glob": "files/a.txt files/b.txt ",
        "lookup": "{}",  # helm template has no cluster to look in
        "from-yaml": "from a file",
        "template": "probe/templates/config.yaml",
    }
    assert rendered.manifests[1].doc["data"] == {"a.txt": "alpha\n", "b.txt": "beta\n"}


def test_an_upgrade_and_the_api_versions_given(tmp_path: Path) -> None:
    chart = _chart(tmp_path)
    rendered = render(chart=chart, upgrade=True, kube_version="1.31.2")
    data = rendered.manifests[0].doc["data"]
    assert data["release"] == "Helm false true 2"
    assert data["kube"] == "v1.31.2 31"


def test_required_fails_with_helms_message(tmp_path: Path) -> None:
    chart = _chart(tmp_path, 'a: {{ required "who must be set" .Values.nobody }}\n')
    with pytest.raises(HelmError) as failure:
        render(chart=chart)
    assert str(failure.value) == (
        "Error: execution error at (probe/templates/config.yaml:1:6): who must be set"
    )


def test_a_missing_value_fails_where_helm_fails(tmp_path: Path) -> None:
    chart = _chart(tmp_path, "a: {{ .Values.missing.deeper }}\n")
    with pytest.raises(HelmError) as failure:
        render(chart=chart)
    assert "nil pointer evaluating interface {}.deeper" in str(failure.value)
    assert str(failure.value).startswith("Error: template: probe/templates/config.yaml:1:")


def test_an_unknown_chart_field_fails(tmp_path: Path) -> None:
    chart = _chart(tmp_path, "a: {{ .Chart.Nope }}\n")
    with pytest.raises(HelmError, match="can't evaluate field Nope"):
        render(chart=chart)


def test_output_that_is_not_yaml_fails(tmp_path: Path) -> None:
    chart = _chart(tmp_path, "a: [unclosed\n")
    with pytest.raises(HelmError, match=r"^Error: YAML parse error on probe/templates/config.yaml"):
        render(chart=chart)


def test_a_kubernetes_older_than_the_chart_allows_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HelmError) as failure:
        render(chart=_chart(tmp_path), kube_version="1.22.0")
    assert str(failure.value) == (
        "Error: chart requires kubeVersion: >=1.25.0-0 which is incompatible with "
        "Kubernetes v1.22.0"
    )


# Treadle's chart refuses what it cannot deploy.


def test_the_chart_requires_its_secret() -> None:
    with pytest.raises(HelmError) as failure:
        render()
    assert re.fullmatch(
        r"Error: execution error at \(treadle/templates/[\w.-]+:\d+:\d+\): "
        r"secrets\.databaseUrl\.secretName \(or secrets\.existingSecret\) is required: "
        r"the Secret holding TREADLE_DATABASE_URL",
        str(failure.value),
    ), failure.value


def test_flower_requires_basic_auth() -> None:
    with pytest.raises(HelmError) as failure:
        render("required", sets=["flower.enabled=true"])
    assert re.fullmatch(
        r"Error: execution error at \(treadle/templates/flower\.yaml:\d+:\d+\): "
        r"flower\.basicAuth\.secretName is required when flower\.enabled: Flower listens on "
        r"the pod's network and must be behind authentication",
        str(failure.value),
    ), failure.value


def test_keda_needs_rabbitmq() -> None:
    with pytest.raises(HelmError) as failure:
        render("required", sets=["broker.type=redis", "worker.groups.default.keda.enabled=true"])
    assert str(failure.value).endswith(
        "error calling fail: worker.groups.default.keda: KEDA scales workers on RabbitMQ "
        "queue length, and broker.type is redis; use autoscaling (CPU) instead"
    )


def test_keda_and_the_cpu_autoscaler_exclude_each_other() -> None:
    with pytest.raises(HelmError, match="autoscaling and keda cannot both be enabled"):
        render(
            "required",
            sets=[
                "worker.groups.default.keda.enabled=true",
                "worker.groups.default.autoscaling.enabled=true",
            ],
        )
