"""The chart's workloads run as an operator needs them to: non-root with resources and
probes, the migrations first (a hook Job), exactly one beat, workers per queue group that
scale on their queues, Services and monitors that find their pods, and packs from values
that load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.deploy.helm.chart import Rendered

from treadle.common.loader import load_packs

HOOK = "helm.sh/hook"


def _is_hook(doc: dict[str, Any]) -> bool:
    return HOOK in doc["metadata"].get("annotations", {})


def test_every_pod_runs_as_a_non_root_user_without_a_token(release: Rendered) -> None:
    for manifest, spec in release.pod_specs():
        where = f"{manifest.kind}/{manifest.name}"
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert pod["runAsUser"] != 0, where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts, f"{where}: a read-only root needs a writable /tmp"


def test_every_container_has_resources_and_every_service_probes(release: Rendered) -> None:
    for manifest, container in release.containers():
        where = f"{manifest.kind}/{manifest.name} {container['name']}"
        assert container["resources"]["requests"].keys() >= {"cpu", "memory"}, where
        assert "memory" in container["resources"]["limits"], where
        if _is_hook(manifest.doc):
            continue  # the migrations run to completion: nothing to probe
        assert {"livenessProbe", "readinessProbe"} <= container.keys(), where


def test_the_migrations_are_a_hook_that_runs_before_install_and_upgrade(
    release: Rendered,
) -> None:
    [job] = release.of_kind("Job")
    annotations = job.doc["metadata"]["annotations"]
    assert annotations[HOOK] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    [container] = job.doc["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["db", "upgrade"]
    upgraders = [
        manifest.name
        for manifest, container in release.containers()
        if container.get("args", [])[:2] == ["db", "upgrade"]
    ]
    assert upgraders == [job.name], "only the migrations Job upgrades the schema"


def test_the_service_account_exists_before_the_job_that_uses_it(everything: Rendered) -> None:
    [account] = everything.of_kind("ServiceAccount")
    annotations = account.doc["metadata"]["annotations"]
    assert annotations[HOOK] == "pre-install,pre-upgrade"
    assert int(annotations["helm.sh/hook-weight"]) < 0
    for _, spec in everything.pod_specs():
        assert spec["serviceAccountName"] == account.name


def test_exactly_one_beat_runs(release: Rendered) -> None:
    beat = release.get("Deployment", "release-name-treadle-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}


def test_the_schedulers_scale_and_keep_one_through_a_disruption(everything: Rendered) -> None:
    scheduler = everything.get("Deployment", "release-name-treadle-scheduler")
    assert scheduler["spec"]["replicas"] == 3
    [budget] = everything.of_kind("PodDisruptionBudget")
    assert budget.doc["spec"]["maxUnavailable"] == 1
    labels = scheduler["spec"]["template"]["metadata"]["labels"]
    assert budget.doc["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_each_worker_group_consumes_its_queues(everything: Rendered) -> None:
    queues = {}
    for manifest, container in everything.containers():
        args = container["args"]
        if args[0] == "worker":
            queues[manifest.name.removeprefix("release-name-treadle-worker-")] = args[
                args.index("--queues") + 1
            ]
    assert queues == {"default": "treadle.tasks", "gpu": "gpu", "reports": "reports,exports"}


def test_workers_scale_on_their_queues_or_their_cpu(everything: Rendered) -> None:
    triggers = {
        s.name.removeprefix("release-name-treadle-worker-"): [
            (t["type"], t["metadata"]["queueName"], t["metadata"]["value"])
            for t in s.doc["spec"]["triggers"]
        ]
        for s in everything.of_kind("ScaledObject")
    }
    assert triggers == {
        "default": [("rabbitmq", f"treadle.tasks{band}", "20") for band in (".high", "", ".low")],
        "reports": [
            ("rabbitmq", f"{queue}{band}", "50")
            for queue in ("reports", "exports")
            for band in (".high", "", ".low")
        ],
    }
    reports = everything.get("ScaledObject", "release-name-treadle-worker-reports")
    assert reports["spec"]["minReplicaCount"] == 0
    [hpa] = everything.of_kind("HorizontalPodAutoscaler")
    assert hpa.name == "release-name-treadle-worker-gpu"
    assert hpa.doc["spec"]["maxReplicas"] == 4
    for scaler in [hpa, *everything.of_kind("ScaledObject")]:
        target = everything.get("Deployment", scaler.doc["spec"]["scaleTargetRef"]["name"])
        assert "replicas" not in target["spec"], f"{scaler.name}: the autoscaler owns replicas"


def test_worker_groups_take_the_defaults_they_do_not_set(everything: Rendered) -> None:
    gpu = everything.get("Deployment", "release-name-treadle-worker-gpu")["spec"]["template"]
    [container] = gpu["spec"]["containers"]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},  # worker.defaults'
        "limits": {"memory": "8Gi", "nvidia.com/gpu": 1},  # the group's own
    }
    assert gpu["spec"]["terminationGracePeriodSeconds"] == 3600
    assert gpu["spec"]["nodeSelector"] == {"accelerator": "nvidia"}
    default = everything.get("Deployment", "release-name-treadle-worker-default")
    assert default["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 300
    assert "nodeSelector" not in default["spec"]["template"]["spec"]


def _pods(release: Rendered) -> list[dict[str, Any]]:
    return [m.doc["spec"]["template"] for m in release.of_kind("Deployment")]


def _selected(release: Rendered, selector: dict[str, str]) -> list[dict[str, Any]]:
    return [p for p in _pods(release) if selector.items() <= p["metadata"]["labels"].items()]


def test_services_reach_pods_with_their_ports(everything: Rendered) -> None:
    for service in everything.of_kind("Service"):
        pods = _selected(everything, service.doc["spec"]["selector"])
        assert pods, f"Service {service.name} selects no pod"
        for port in service.doc["spec"]["ports"]:
            for pod in pods:
                names = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
                assert port["targetPort"] in names, f"{service.name}: {port['targetPort']}"
    metrics = everything.get("Service", "release-name-treadle-metrics")
    scraped = {
        p["metadata"]["labels"]["app.kubernetes.io/component"]
        for p in _selected(everything, metrics["spec"]["selector"])
    }
    assert scraped == {"scheduler", "beat", "worker-default", "worker-gpu", "worker-reports"}


def test_the_ingress_and_the_service_monitor_point_at_real_services(everything: Rendered) -> None:
    [ingress] = everything.of_kind("Ingress")
    [path] = ingress.doc["spec"]["rules"][0]["http"]["paths"]
    backend = path["backend"]["service"]
    api = everything.get("Service", backend["name"])
    assert backend["port"]["name"] in {p["name"] for p in api["spec"]["ports"]}

    [monitor] = everything.of_kind("ServiceMonitor")
    selector = monitor.doc["spec"]["selector"]["matchLabels"]
    selected = {
        s.name: {p["name"] for p in s.doc["spec"]["ports"]}
        for s in everything.of_kind("Service")
        if selector.items() <= s.doc["metadata"]["labels"].items()
    }
    assert selected == {
        "release-name-treadle-metrics": {"metrics"},
        "release-name-treadle-api": {"http"},
    }
    endpoints = {e["port"]: e for e in monitor.doc["spec"]["endpoints"]}
    assert endpoints["http"]["authorization"]["credentials"] == {
        "name": "treadle-prometheus-token",
        "key": "token",
    }
    assert "authorization" not in endpoints["metrics"]


def test_packs_from_values_load_where_the_processes_look(
    everything: Rendered, tmp_path: Path
) -> None:
    [config] = everything.of_kind("ConfigMap")
    scheduler = everything.get("Deployment", "release-name-treadle-scheduler")
    spec = scheduler["spec"]["template"]["spec"]
    [volume] = [v for v in spec["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == config.name
    [container] = spec["containers"]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    env = {var["name"]: var.get("value") for var in container["env"]}
    assert env["TREADLE_PACK_PATHS"] == f'["{mount["mountPath"]}","/opt/treadle/extra-packs"]'

    # What the kubelet writes into the mount: each item's key at its path.
    for item in volume["configMap"]["items"]:
        target = tmp_path / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(config.doc["data"][item["key"]], encoding="utf-8")
    catalog = load_packs([tmp_path])
    assert "ops" in catalog.packs
    assert "ops.greet" in catalog.workflows
