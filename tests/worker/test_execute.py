"""execute(): one dispatch in, one TaskResult out, and every action problem a failed result."""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from typing import Any

from treadle.common.messages import TaskResult
from treadle.common.settings import Settings
from treadle.common.spec import ActionSpec, RunnerType
from treadle.common.statuses import AttemptStatus
from treadle.worker.execute import RunnerSettings, execute
from treadle.worker.runners.base import ActionCall

ECHO = """
def main(message, times=1):
    return {"message": message * times}
"""


def _error(result: TaskResult) -> tuple[str, str]:
    assert result.outcome is AttemptStatus.FAILED, result
    assert result.error is not None
    assert result.result is None
    return result.error.type, result.error.message


def test_a_python_action_succeeds_with_its_return_value(worker, python_action):
    python_action(
        ECHO,
        parameters={
            "message": {"type": "string", "required": True},
            "times": {"type": "integer", "default": 1},
        },
    )

    result = worker.run("tests.action", {"message": "hi"})

    assert result.outcome is AttemptStatus.SUCCEEDED
    assert result.result == {"message": "hi"}
    assert result.error is None
    assert result.attempt_id == "run-1/task/1"
    assert result.worker == "test-worker:1"
    assert result.started_at == datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert result.finished_at == datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_defaults_are_applied_before_the_call(worker, python_action):
    python_action(
        ECHO,
        parameters={
            "message": {"type": "string", "default": "ab"},
            "times": {"type": "integer", "default": 3},
        },
    )

    assert worker.run("tests.action").result == {"message": "ababab"}


def test_invalid_input_lists_every_problem_by_parameter(worker, python_action):
    python_action(
        ECHO,
        parameters={
            "message": {"type": "string", "required": True},
            "times": {"type": "integer", "minimum": 1},
        },
    )

    result = worker.run("tests.action", {"times": 0, "colour": "red"})

    kind, message = _error(result)
    assert kind == "InvalidInput"
    assert "input of action 'tests.action'" in message
    assert "missing required parameter 'message'" in message
    assert "unknown parameter 'colour'" in message
    assert "parameter 'times'" in message
    assert len(result.error.details["problems"]) == 3


def test_invalid_secret_input_names_the_parameter_but_never_its_value(worker, python_action):
    python_action(
        ECHO,
        parameters={
            "message": {"type": "string", "required": True},
            "token": {"type": "string", "secret": True, "minLength": 40},
        },
    )

    result = worker.run("tests.action", {"message": "hi", "token": "hunter2-very-secret"})

    kind, message = _error(result)
    assert kind == "InvalidInput"
    assert "parameter 'token'" in message
    assert "secret" in message
    assert "hunter2" not in json.dumps(result.model_dump(mode="json"))


def test_secret_values_are_blanked_out_of_action_errors(worker, python_action):
    python_action(
        """
        def main(token):
            raise ValueError("server rejected token " + token)
        """,
        parameters={"token": {"type": "string", "secret": True}},
    )

    result = worker.run("tests.action", {"token": "s3cr3t-value"})

    kind, message = _error(result)
    assert kind == "ValueError"
    assert message == "server rejected token ***"
    assert "s3cr3t-value" not in json.dumps(result.model_dump(mode="json"))


def test_unknown_action(worker):
    kind, message = _error(worker.run("nope.missing"))
    assert kind == "UnknownAction"
    assert "nope.missing" in message


def test_disabled_action(worker, python_action):
    python_action(ECHO, enabled=False)

    kind, message = _error(worker.run("tests.action", {"message": "x"}))

    assert kind == "ActionDisabled"
    assert message == "action 'tests.action' is disabled"


def test_inquiry_and_workflow_actions_never_run_on_a_worker(worker):
    for runner_type in (RunnerType.INQUIRY, RunnerType.WORKFLOW):
        worker.add(ActionSpec(ref=f"tests.{runner_type}", runner_type=runner_type))
        kind, message = _error(worker.run(f"tests.{runner_type}"))
        assert kind == "NotWorkerAction"
        assert "scheduler" in message


def test_a_result_that_is_not_json_names_the_type_and_where_it_is(worker, python_action):
    python_action(
        """
        import datetime
        def main():
            return {"rows": [1, {"when": datetime.date(2024, 1, 1)}]}
        """
    )

    kind, message = _error(worker.run("tests.action"))

    assert kind == "ResultNotSerializable"
    assert "result of action 'tests.action'" in message
    assert "date" in message
    assert "['rows'][1]['when']" in message


def test_nan_and_sets_are_not_json(worker, python_action):
    python_action(
        "def main(kind):\n    return float('nan') if kind == 'nan' else {1, 2}\n",
        parameters={"kind": {"type": "string"}},
    )

    assert _error(worker.run("tests.action", {"kind": "nan"}))[0] == "ResultNotSerializable"
    kind, message = _error(worker.run("tests.action", {"kind": "set"}))
    assert kind == "ResultNotSerializable"
    assert "set" in message


def test_results_come_back_as_plain_json(worker, python_action):
    python_action("def main():\n    return {'pair': (1, 2), 3: 'three'}\n")

    assert worker.run("tests.action").result == {"pair": [1, 2], "3": "three"}


def test_a_result_over_the_payload_limit_fails_with_both_sizes(
    make_worker, python_action, tmp_path
):
    small = make_worker(max_payload_bytes=2000)
    small.add(
        python_action("def main(n):\n    return 'x' * n\n", parameters={"n": {"type": "integer"}})
    )

    assert small.run("tests.action", {"n": 100}).outcome is AttemptStatus.SUCCEEDED
    result = small.run("tests.action", {"n": 5000})

    kind, message = _error(result)
    assert kind == "PayloadTooLarge"
    assert "5002 bytes" in message
    assert "2000 bytes" in message
    assert result.error.details == {"size_bytes": 5002, "limit_bytes": 2000}


def test_an_input_over_the_payload_limit_is_refused_before_running(
    make_worker, python_action, tmp_path
):
    small = make_worker(max_payload_bytes=1000)
    marker = tmp_path / "ran"
    small.add(
        python_action(
            f"def main(text):\n    open({str(marker)!r}, 'w').close()\n",
            parameters={"text": {"type": "string"}},
        )
    )

    kind, message = _error(small.run("tests.action", {"text": "y" * 2000}))

    assert kind == "PayloadTooLarge"
    assert "input of action 'tests.action'" in message
    assert not marker.exists()


class _BrokenRunner:
    def run(self, action: ActionSpec, params: dict[str, Any], context: ActionCall) -> Any:
        raise RuntimeError(f"runner bug with {params['password']}")


def test_a_runner_that_raises_yields_a_failed_result_and_a_log_without_secrets(
    worker, flat_params, caplog
):
    worker.add(
        ActionSpec(
            ref="tests.http",
            runner_type=RunnerType.HTTP,
            parameters=flat_params({"password": {"type": "string", "secret": True}}),
        )
    )
    worker.runners[RunnerType.HTTP] = _BrokenRunner()

    with caplog.at_level("ERROR", logger="treadle.worker"):
        kind, message = _error(worker.run("tests.http", {"password": "pa55word"}))

    assert (kind, message) == ("RuntimeError", "runner bug with ***")
    assert "runner bug with ***" in caplog.text
    assert "pa55word" not in caplog.text


def test_the_default_runner_registry_and_clock(python_action, worker):
    python_action(ECHO, parameters={"message": {"type": "string"}})

    result = execute(
        worker.dispatch("tests.action", {"message": "m"}), worker.catalog, RunnerSettings()
    )

    assert result.result == {"message": "m"}
    assert result.started_at.tzinfo is not None
    assert result.started_at <= result.finished_at
    assert result.worker == f"{socket.gethostname()}:{os.getpid()}"


def test_runner_settings_follow_the_treadle_settings():
    settings = Settings(shell_enabled=True, limits={"max_payload_bytes": 4096})

    runner_settings = RunnerSettings.from_settings(settings, worker_name="w:1")

    assert runner_settings == RunnerSettings(
        shell_enabled=True, max_payload_bytes=4096, worker_name="w:1"
    )
