"""The shell runner: off by default; when enabled, commands and scripts with a result."""

from __future__ import annotations

import json
import time

import pytest

from treadle.common.messages import TaskResult
from treadle.common.spec import ActionSpec, RunnerType
from treadle.common.statuses import AttemptStatus


def _error(result: TaskResult) -> tuple[str, str]:
    assert result.outcome is AttemptStatus.FAILED, result
    assert result.error is not None
    return result.error.type, result.error.message


SHELL_PARAMS = {
    "cmd": {"type": "string", "required": True},
    "env": {"type": "object"},
    "cwd": {"type": "string"},
    "timeout": {"type": "number", "minimum": 0},
}


@pytest.fixture
def shell(make_worker, flat_params):
    worker = make_worker(shell_enabled=True)
    worker.add(
        ActionSpec(
            ref="core.shell", runner_type=RunnerType.SHELL, parameters=flat_params(SHELL_PARAMS)
        )
    )
    return worker


def test_shell_actions_are_disabled_by_default(worker, flat_params, tmp_path):
    worker.add(
        ActionSpec(
            ref="core.shell", runner_type=RunnerType.SHELL, parameters=flat_params(SHELL_PARAMS)
        )
    )
    marker = tmp_path / "ran"

    result = worker.run("core.shell", {"cmd": f"touch {marker}"})

    assert _error(result) == (
        "ShellDisabled",
        "shell actions are disabled; set TREADLE_SHELL_ENABLED=true to allow them",
    )
    assert not marker.exists()


def test_a_command_returns_its_output_and_return_code(shell):
    result = shell.run("core.shell", {"cmd": "echo hello; echo oops >&2"})

    assert result.outcome is AttemptStatus.SUCCEEDED
    assert result.result == {"stdout": "hello", "stderr": "oops", "return_code": 0}


def test_a_non_zero_exit_fails_with_the_code_and_the_end_of_stderr(shell):
    result = shell.run("core.shell", {"cmd": "echo partial; echo 'no such file' >&2; exit 3"})

    kind, message = _error(result)
    assert kind == "CommandFailed"
    assert "return code 3" in message
    assert "no such file" in message
    assert result.error.details["return_code"] == 3
    assert result.error.details["stdout"] == "partial"


def test_a_command_over_its_timeout_is_killed_with_its_children(shell, tmp_path):
    marker = tmp_path / "survived"
    started = time.monotonic()

    result = shell.run("core.shell", {"cmd": f"sleep 5 && touch {marker}", "timeout": 0.3})

    kind, message = _error(result)
    assert kind == "CommandTimedOut"
    assert "0.3 seconds" in message
    assert time.monotonic() - started < 3
    assert not marker.exists()


def test_env_and_cwd_and_no_treadle_settings_leak(shell, tmp_path, monkeypatch):
    monkeypatch.setenv("TREADLE_DATABASE_URL", "postgresql://user:password@db/treadle")

    result = shell.run(
        "core.shell",
        {
            "cmd": 'echo "$GREETING $(pwd) [$TREADLE_DATABASE_URL]"',
            "env": {"GREETING": "hi"},
            "cwd": str(tmp_path),
        },
    )

    assert result.result["stdout"] == f"hi {tmp_path} []"


def test_a_missing_cwd_is_reported(shell, tmp_path):
    kind, message = _error(shell.run("core.shell", {"cmd": "true", "cwd": str(tmp_path / "nope")}))

    assert kind == "InvalidInput"
    assert "not a directory" in message


def test_a_script_gets_its_parameters_as_env_vars_and_json_on_stdin(
    make_worker, flat_params, tmp_path
):
    worker = make_worker(shell_enabled=True)
    (tmp_path / "report.sh").write_text('echo "$TREADLE_PARAM_NAME $TREADLE_PARAM_COUNT"\ncat\n')
    worker.add(
        ActionSpec(
            ref="tests.report",
            runner_type=RunnerType.SHELL,
            entry_point="report.sh",
            base_dir=str(tmp_path),
            parameters=flat_params(
                {"name": {"type": "string"}, "count": {"type": "integer", "default": 2}}
            ),
        )
    )

    result = worker.run("tests.report", {"name": "Ada"})

    first, stdin = result.result["stdout"].split("\n", 1)
    assert first == "Ada 2"
    assert json.loads(stdin) == {"name": "Ada", "count": 2}


def test_a_missing_script_is_reported(make_worker, tmp_path):
    worker = make_worker(shell_enabled=True)
    worker.add(
        ActionSpec(
            ref="tests.gone",
            runner_type=RunnerType.SHELL,
            entry_point="gone.sh",
            base_dir=str(tmp_path),
        )
    )

    kind, message = _error(worker.run("tests.gone"))

    assert kind == "InvalidAction"
    assert "gone.sh does not exist" in message
