"""docker-compose.yml, checked without a Docker engine: Compose 1.29 accepts it with the
``.env.example`` values, every Treadle container runs a real ``treadle`` command, every
``TREADLE_*`` variable is a setting its values satisfy, every long-running service has a
health check, the services start in order, and only ``migrate`` upgrades the schema.

``docker-compose`` is Debian's package (1.29; .ci/run installs it); without it the test that
runs it skips and says so. The others read the file with PyYAML, interpolating ``${...}``
from ``.env.example`` as Compose does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from treadle.common.limits import Limits
from treadle.common.settings import Settings, settings_from_environment

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
TREADLE_IMAGE = "${IMAGE:-treadle:dev}"
#: The services that run and stay up (a health check each); the others are one-shot.
ONE_SHOT = {"migrate", "admin-token"}
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` as Compose reads them."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op in (":-", "-"):
            return arg
        raise AssertionError(f"${{{name}}} is not set in .env.example ({arg})")

    return _VARIABLE.sub(one, value.replace("$$", "\0")).replace("\0", "$")


@cache
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return document


@cache
def resolved() -> dict[str, Any]:
    services: dict[str, Any] = interpolate(compose()["services"], env_example())
    return services


def treadle_services() -> dict[str, dict[str, Any]]:
    """The services running Treadle's image."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("image") == TREADLE_IMAGE
    }


@cache
def _cli() -> Any:
    from treadle.cli import commands

    app = typer.Typer()
    commands.register(app)
    return typer.main.get_command(app)


def parse(argv: list[str]) -> str:
    """The path of the ``treadle`` command ``argv`` is, parsed by the CLI's own parser
    (options, their types, choices) without running it; click's error if it is wrong."""
    command, words, path = _cli(), list(argv), ["treadle"]
    while hasattr(command, "commands"):
        name = words.pop(0) if words else ""
        if name not in command.commands:
            raise LookupError(f"No such command {name!r} in {' '.join(path)}")
        command = command.commands[name]
        path.append(name)
    command.make_context(" ".join(path), words)
    return " ".join(path)


def test_docker_compose_accepts_the_file_with_the_example_settings(tmp_path: Path) -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip(
            "docker-compose is not installed: apt-get install docker-compose (.ci/run does)"
        )
    argv = [binary, "--project-directory", str(ROOT), "-f", str(COMPOSE)]
    clean = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)}  # no TREADLE_* here

    def run(*more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*argv, *more], capture_output=True, text=True, env=clean, timeout=60, check=False
        )

    checked = run("--env-file", str(ENV_EXAMPLE), "--profile", "observability",
                  "--profile", "redis", "config", "--services")  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert set(checked.stdout.split()) == set(compose()["services"])
    empty = tmp_path / "empty.env"
    empty.write_text("")
    missing = run("--env-file", str(empty), "config", "-q")
    assert missing.returncode != 0
    assert "set " in missing.stderr
    assert "in .env" in missing.stderr  # names the variable to set


def test_every_treadle_container_runs_a_real_treadle_command() -> None:
    parsed: dict[str, str] = {}
    for name, service in resolved().items():
        if compose()["services"][name].get("image") != TREADLE_IMAGE:
            continue
        argv = [str(word) for word in service["command"]]
        assert argv[0] == "treadle", f"{name}: {argv}"
        parsed[name] = parse(argv[1:])
        check = service.get("healthcheck", {}).get("test", [])
        if check[:2] == ["CMD", "treadle"]:
            parse(check[2:])
    assert parsed == {
        "migrate": "treadle db upgrade",
        "admin-token": "treadle tokens create",
        "scheduler": "treadle scheduler",
        "worker": "treadle worker",
        "worker-http": "treadle worker",
        "beat": "treadle beat",
        "api": "treadle api",
        "flower": "treadle flower",
    }


def test_the_parser_check_would_catch_a_wrong_command() -> None:
    with pytest.raises(LookupError, match="No such command 'schedulr'"):
        parse(["schedulr"])
    with pytest.raises(Exception, match="No such option: --queue"):
        parse(["worker", "--queue", "http"])
    with pytest.raises(Exception, match="'gevent' is not one of"):
        parse(["worker", "--pool", "gevent"])


def _is_setting(variable: str) -> bool:
    name = variable.removeprefix("TREADLE_").lower()
    if "__" in name:
        parent, _, field = name.partition("__")
        return parent == "limits" and field in Limits.model_fields
    return name in Settings.model_fields


def test_every_treadle_variable_is_a_setting() -> None:
    named = set(env_example())
    for service in compose()["services"].values():
        named |= set(service.get("environment", {}))
    treadle = {name for name in named if name.startswith("TREADLE_")}
    assert "TREADLE_SCHEMA_UPGRADE" in treadle
    assert sorted(name for name in treadle if not _is_setting(name)) == []


def test_the_settings_accept_every_value_each_service_gets(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name, service in resolved().items():
        if compose()["services"][name].get("image") != TREADLE_IMAGE:
            continue
        for variable in [v for v in os.environ if v.startswith("TREADLE_")]:
            monkeypatch.delenv(variable)
        for variable, value in service["environment"].items():
            monkeypatch.setenv(variable, str(value))
        settings = settings_from_environment()  # a ConfigurationError names the variable
        assert settings.log_format == "json", name


def test_every_variable_the_file_reads_is_in_env_example() -> None:
    text = COMPOSE.read_text(encoding="utf-8").replace("$$", "")  # $$: the container's own
    used = {match["name"] for match in _VARIABLE.finditer(text)}
    assert len(used) > 20
    assert sorted(used - set(env_example())) == []


def test_every_long_running_service_has_a_health_check_of_its_own() -> None:
    checks = {}
    for name, service in resolved().items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
            assert "healthcheck" not in service, name
            continue
        assert service["restart"] == "unless-stopped", name
        checks[name] = service["healthcheck"]["test"]
    for name in ("scheduler", "beat", "api"):
        assert checks[name] == ["CMD", "treadle", "health", name]
    assert checks["worker"] == checks["worker-http"] == ["CMD", "treadle", "health", "worker"]
    assert "pg_isready" in checks["postgres"][1]
    assert checks["rabbitmq"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]
    assert checks["redis"] == ["CMD", "redis-cli", "ping"]
    assert "/healthcheck" in checks["flower"][-1]


def test_only_migrate_upgrades_the_schema_and_the_services_wait_for_it() -> None:
    services = resolved()
    upgraders = [n for n, s in services.items() if s.get("command", [])[1:3] == ["db", "upgrade"]]
    assert upgraders == ["migrate"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name, service in services.items():
        environment = service.get("environment", {})
        if "TREADLE_DATABASE_URL" not in environment or name == "migrate":
            continue
        assert service["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }, name
        if name not in ONE_SHOT:
            assert environment.get("TREADLE_SCHEMA_UPGRADE") == "wait", name


def test_dependencies_wait_for_health_and_name_real_services() -> None:
    services = resolved()
    allowed = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        for needed, condition in service.get("depends_on", {}).items():
            assert needed in services, f"{name} depends on {needed}, which is not a service"
            assert condition["condition"] in allowed, name
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[needed], f"{needed} has no health check"
    for name in ("scheduler", "worker", "worker-http", "api", "flower"):
        assert services[name]["depends_on"]["rabbitmq"] == {"condition": "service_healthy"}
    assert "TREADLE_DATABASE_URL" not in services["worker"]["environment"]  # workers: no DB


def test_profiles_volumes_and_mounted_files() -> None:
    services = compose()["services"]
    assert services["redis"]["profiles"] == ["redis"]
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"]
    assert services["grafana"]["profiles"] == ["observability"]
    assert [n for n, s in services.items() if "profiles" in s] == ["redis", "prometheus", "grafana"]
    declared = set(compose()["volumes"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is missing"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
    prometheus = [v.split(":")[1] for v in services["prometheus"]["volumes"]]
    assert "/etc/prometheus/treadle-alerts.yml" in prometheus


def test_scaled_services_publish_no_fixed_host_port() -> None:
    for name in ("scheduler", "worker", "worker-http"):
        assert "ports" not in compose()["services"][name], name
        assert "container_name" not in compose()["services"][name], name


def test_prometheus_scrapes_the_metrics_port_of_every_service_that_serves_one() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    scraped = {
        (name, target["port"])
        for job in config["scrape_configs"]
        for target in job["dns_sd_configs"]
        for name in target["names"]
    }
    serving = {
        (name, int(command[command.index("--metrics-port") + 1]))
        for name, service in resolved().items()
        if "--metrics-port" in (command := [str(word) for word in service.get("command", [])])
    }
    assert (
        scraped
        == serving
        == {
            ("scheduler", 9464),
            ("worker", 9464),
            ("worker-http", 9464),
            ("beat", 9464),
        }
    )
    assert config["rule_files"] == ["treadle-alerts.yml"]  # mounted beside it
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed: install Debian's prometheus package (.ci/run does)")
    checked = subprocess.run(
        [promtool, "check", "config", str(ROOT / "deploy" / "prometheus" / "prometheus.yml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_grafana_is_provisioned_with_the_compose_prometheus_and_the_dashboard() -> None:
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    [source] = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    [provider] = yaml.safe_load((provisioning / "dashboards" / "treadle.yml").read_text())[
        "providers"
    ]
    mounts = dict(v.split(":")[:2] for v in compose()["services"]["grafana"]["volumes"])
    dashboard = mounts["./deploy/grafana/treadle-dashboard.json"]
    assert Path(dashboard).parent == Path(provider["options"]["path"])
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
