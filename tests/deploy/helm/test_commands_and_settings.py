"""What the chart runs is real: every container's and every probe's command is a ``treadle``
command its own parser accepts, and every ``TREADLE_*`` variable is a setting with a value
the settings accept."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
import typer
from tests.deploy.helm.chart import Rendered

from treadle.common.limits import Limits
from treadle.common.settings import Settings, settings_from_environment


@cache
def _cli() -> Any:
    """The ``treadle`` command as click sees it (typer's, which may be its own copy of click:
    only click's public methods are used)."""
    from treadle.cli import commands

    app = typer.Typer()
    commands.register(app)
    return typer.main.get_command(app)


def _parse(argv: list[str]) -> str:
    """Parses ``treadle ARGV`` as the CLI would (options, their types, arguments' choices)
    without running it; returns the command's path, or raises click's usage error."""
    command, words, path = _cli(), list(argv), ["treadle"]
    while hasattr(command, "commands"):  # a group: the next word names one of its commands
        name = words.pop(0) if words else ""
        if name not in command.commands:
            raise LookupError(f"No such command {name!r} in {' '.join(path)}")
        command = command.commands[name]
        path.append(name)
    command.make_context(" ".join(path), words)
    return " ".join(path)


def _usage_error(argv: list[str]) -> str:
    """The message click gives for ``treadle ARGV`` (the test fails when it parses)."""
    try:
        _parse(argv)
    except Exception as exc:  # click's UsageError, from typer's copy of click or click's
        return str(getattr(exc, "format_message", exc.__str__)())
    pytest.fail(f"treadle {' '.join(argv)} parsed")


def _commands(release: Rendered) -> Iterator[tuple[str, list[str]]]:
    """(where, argv) of every container and exec probe."""
    for manifest, container in release.containers():
        where = f"{manifest.kind}/{manifest.name} {container['name']}"
        yield where, [*container.get("command", []), *container.get("args", [])]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if "exec" in container.get(probe, {}):
                yield f"{where} {probe}", container[probe]["exec"]["command"]


def test_every_command_is_a_real_treadle_command(release: Rendered) -> None:
    parsed: dict[str, str] = {}
    for where, argv in _commands(release):
        assert argv[0] == "treadle", f"{where}: {argv}"
        try:
            parsed[where] = _parse([str(arg) for arg in argv[1:]])
        except Exception as exc:  # click's UsageError: say which container and why
            message = getattr(exc, "format_message", exc.__str__)()
            pytest.fail(f"{where}: treadle {' '.join(argv[1:])}: {message}")
    paths = set(parsed.values())
    assert paths >= {"treadle scheduler", "treadle worker", "treadle api", "treadle db upgrade"}
    assert any(path.startswith("treadle health") for path in paths), "no probe runs treadle health"


def test_the_parser_check_would_catch_a_wrong_command() -> None:
    assert "No such command 'schedulr'" in _usage_error(["schedulr"])
    assert "No such option: --queue" in _usage_error(["worker", "--queue", "gpu"])
    assert "'gevent' is not one of" in _usage_error(["worker", "--pool", "gevent"])
    assert "No such command 'downgrade'" in _usage_error(["db", "downgrade"])


def _env_vars(release: Rendered) -> Iterator[tuple[str, dict[str, Any]]]:
    for manifest, container in release.containers():
        for var in container.get("env", []):
            yield f"{manifest.kind}/{manifest.name}", var


def _is_setting(variable: str) -> bool:
    name = variable.removeprefix("TREADLE_").lower()
    if "__" in name:
        parent, _, field = name.partition("__")
        return parent == "limits" and field in Limits.model_fields
    return name in Settings.model_fields


def test_every_treadle_variable_is_a_setting(release: Rendered) -> None:
    named = {var["name"] for _, var in _env_vars(release)}
    for scaled in release.of_kind("ScaledObject"):
        named |= {t["metadata"]["hostFromEnv"] for t in scaled.doc["spec"]["triggers"]}
    treadle = {name for name in named if name.startswith("TREADLE_")}
    assert treadle, "no TREADLE_ variable at all"
    assert sorted(name for name in treadle if not _is_setting(name)) == []
    assert named - treadle <= {"FLOWER_BASIC_AUTH"}


def test_the_settings_accept_every_value_given(
    release: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    for where, container in release.containers():
        for name in [n for n in os.environ if n.startswith("TREADLE_")]:
            monkeypatch.delenv(name)
        for var in container.get("env", []):
            # a Secret's value is not known here: a valid stand-in
            value = var.get("value", "cHJldGVuZC1rZXktMzItYnl0ZXMtbG9uZy0tLS0tLS0=")
            monkeypatch.setenv(var["name"], value)
        settings = settings_from_environment()
        assert settings.log_format == "json", where


def test_each_process_gets_the_secrets_it_needs_and_no_others(everything: Rendered) -> None:
    secrets = {
        (manifest.name.removeprefix("release-name-treadle-"), var["name"])
        for manifest, var in (
            (m, v) for m, c in everything.containers() for v in c.get("env", []) if "valueFrom" in v
        )
    }
    assert secrets == {
        ("migrate", "TREADLE_DATABASE_URL"),
        *(
            (component, variable)
            for component in ("scheduler", "api")
            for variable in (
                "TREADLE_DATABASE_URL",
                "TREADLE_BROKER_URL",
                "TREADLE_SECRET_KEY",
                "TREADLE_GOLDEN_KEY",
            )
        ),
        ("beat", "TREADLE_DATABASE_URL"),
        ("beat", "TREADLE_SECRET_KEY"),
        ("beat", "TREADLE_GOLDEN_KEY"),
        *(
            (f"worker-{group}", variable)
            for group in ("default", "gpu", "reports")
            for variable in ("TREADLE_BROKER_URL", "TREADLE_SECRET_KEY")
        ),
        ("flower", "TREADLE_BROKER_URL"),
        ("flower", "FLOWER_BASIC_AUTH"),
    }
    refs = {
        var["name"]: var["valueFrom"]["secretKeyRef"]
        for _, container in everything.containers()
        for var in container.get("env", [])
        if "valueFrom" in var
    }
    assert refs["TREADLE_DATABASE_URL"] == {"name": "treadle", "key": "database-url"}
    assert refs["TREADLE_BROKER_URL"] == {"name": "treadle-rabbitmq", "key": "url"}
    assert refs["TREADLE_GOLDEN_KEY"] == {"name": "treadle-golden", "key": "golden-key"}


def test_a_scaled_object_reads_the_broker_url_its_worker_has(everything: Rendered) -> None:
    for scaled in everything.of_kind("ScaledObject"):
        target = everything.get("Deployment", scaled.doc["spec"]["scaleTargetRef"]["name"])
        [worker] = target["spec"]["template"]["spec"]["containers"]
        assert scaled.doc["spec"]["scaleTargetRef"]["envSourceContainerName"] == worker["name"]
        names = {var["name"] for var in worker["env"]}
        for trigger in scaled.doc["spec"]["triggers"]:
            assert trigger["metadata"]["hostFromEnv"] in names
