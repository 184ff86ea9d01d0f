"""What an action prints is reported with its result: bounded, secrets blanked out, per attempt.

Through the real :func:`execute` (the worker's and the embedded runner's one path): Python
actions (stdout and stderr, a failure, ``async def``, several at once on threads as the
threads pool and the embedded runner run them), shell commands (success, failure), the
bound and its ``truncated`` flags, ``0`` turning capture off, and secrets never shown.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from treadle.common.messages import ActionOutput, TaskResult
from treadle.common.secret_box import Keyring, generate_key
from treadle.common.secret_refs import kv_reference
from treadle.common.spec import ActionSpec, RunnerType
from treadle.common.statuses import AttemptStatus
from treadle.worker.output_capture import AttemptStream, OutputCapture

PRINTS = """
import sys

def main(lines, fail=False, secret=None):
    for line in lines:
        print(line)
    sys.stderr.write("warning: careful\\n")
    if fail:
        raise RuntimeError("it broke")
    return {"printed": len(lines)}
"""
PRINT_PARAMS = {
    "lines": {"type": "array", "required": True},
    "fail": {"type": "boolean", "default": False},
    "secret": {"type": "string", "secret": True},
}
SECRET = "pw-Zq81-hunter2-long"


def _output(result: TaskResult) -> ActionOutput:
    assert result.output is not None, result
    return result.output


@pytest.fixture
def printer(python_action: Any) -> None:
    python_action(PRINTS, parameters=PRINT_PARAMS)


@pytest.fixture
def printing_worker(make_worker: Any, flat_params: Any, tmp_path: Path) -> Any:
    """A worker with other settings (``printing_worker(capture_output_bytes=64)``) that
    has the printing action."""

    def make(**settings: Any) -> Any:
        worker = make_worker(**settings)
        (tmp_path / "prints.py").write_text(PRINTS)
        worker.add(
            ActionSpec(
                ref="tests.action",
                runner_type=RunnerType.PYTHON,
                entry_point="prints.py:main",
                parameters=flat_params(PRINT_PARAMS),
                base_dir=str(tmp_path),
            )
        )
        return worker

    return make


def test_what_a_python_action_prints_comes_back_with_its_result(worker: Any, printer: Any) -> None:
    result = worker.run("tests.action", {"lines": ["hello", "world"]})

    assert result.outcome is AttemptStatus.SUCCEEDED
    assert result.output == ActionOutput(stdout="hello\nworld\n", stderr="warning: careful\n")
    assert "output" in result.model_dump(mode="json")


def test_a_failed_action_reports_what_it_printed_before_it_failed(
    worker: Any, printer: Any
) -> None:
    result = worker.run("tests.action", {"lines": ["step 1 done"], "fail": True})

    assert result.outcome is AttemptStatus.FAILED
    assert result.error is not None
    assert result.error.type == "RuntimeError"
    assert _output(result).stdout == "step 1 done\n"
    assert _output(result).stderr == "warning: careful\n"


def test_an_action_that_prints_nothing_reports_no_output(worker: Any, python_action: Any) -> None:
    python_action("def main():\n    return 1\n")

    result = worker.run("tests.action")

    assert result.output is None
    assert "output" not in result.model_dump(mode="json")  # as an older worker sent it


def test_the_lines_still_go_where_they_went_before(
    worker: Any, printer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    worker.run("tests.action", {"lines": ["seen twice"]})

    seen = capsys.readouterr()
    assert "seen twice\n" in seen.out  # the worker's stdout (its log under Celery)
    assert "warning: careful\n" in seen.err


def test_zero_turns_capture_off(printing_worker: Any) -> None:
    worker = printing_worker(capture_output_bytes=0)

    result = worker.run("tests.action", {"lines": ["not kept"]})

    assert result.outcome is AttemptStatus.SUCCEEDED
    assert result.output is None


def test_each_stream_keeps_its_last_bytes_and_says_it_was_truncated(
    printing_worker: Any,
) -> None:
    worker = printing_worker(capture_output_bytes=64)
    lines = [f"line {n:03d} é" for n in range(200)]  # 11 bytes each, a 2-byte character

    output = _output(worker.run("tests.action", {"lines": lines}))

    assert output.stdout_truncated is True
    assert len(output.stdout.encode("utf-8")) <= 64
    assert output.stdout.endswith("line 198 é\nline 199 é\n")
    assert "".join(f"{line}\n" for line in lines).endswith(output.stdout)  # a clean tail
    assert (output.stderr, output.stderr_truncated) == ("warning: careful\n", False)


def test_a_secret_parameter_printed_by_the_action_is_blanked_out(worker: Any, printer: Any) -> None:
    result = worker.run("tests.action", {"lines": [f"connecting with {SECRET}"], "secret": SECRET})

    assert _output(result).stdout == "connecting with ***\n"
    assert SECRET not in result.model_dump_json()


def test_a_secret_the_dispatch_carried_is_blanked_out(printing_worker: Any) -> None:
    key = generate_key()
    worker = printing_worker(secret_keys=lambda: Keyring.parse(key))
    reference = kv_reference("0123456789abcdef", "db.password")

    result = worker.run(
        "tests.action",
        {"lines": [f"dsn=pg://app:{reference}@db"]},
        secrets={reference: Keyring.parse(key).encrypt(SECRET)},
    )

    assert result.outcome is AttemptStatus.SUCCEEDED
    assert _output(result).stdout == "dsn=pg://app:***@db\n"


def test_a_secret_cut_in_two_by_the_bound_never_shows_in_part() -> None:
    capture = OutputCapture(64, (SECRET,))
    capture.add("stdout", "a" * 1000)
    capture.add("stdout", SECRET)
    capture.add("stdout", "b" * 59)
    assert capture.output() == ActionOutput(stdout="aa***" + "b" * 59, stdout_truncated=True)

    cut = OutputCapture(64, (SECRET,))
    cut.add("stdout", "a" * 1000)
    cut.add("stdout", SECRET)
    cut.add("stdout", "b" * 70)  # the buffer drops the head in the middle of the secret
    kept = cut.output()
    assert kept is not None
    assert kept.stdout == "b" * 64
    assert not any(SECRET[i:] in kept.stdout for i in range(len(SECRET) - 2))


def test_text_no_database_stores_is_made_storable() -> None:
    capture = OutputCapture(1024)
    capture.add("stdout", "nul\x00 and a lone surrogate \udcff")
    output = capture.output()
    assert output is not None
    assert output.stdout == "nul\ufffd and a lone surrogate ?"


def test_an_async_action_is_captured_too(worker: Any, python_action: Any) -> None:
    python_action(
        """
        import asyncio

        async def main():
            await asyncio.sleep(0)
            print("from a coroutine")
            return None
        """
    )

    assert _output(worker.run("tests.action")).stdout == "from a coroutine\n"


def test_actions_running_at_once_on_threads_each_keep_only_their_own_lines(
    worker: Any, python_action: Any
) -> None:
    python_action(
        """
        import threading

        BARRIER = threading.Barrier(4)

        def main(name):
            for n in range(50):
                if n == 25:
                    BARRIER.wait(timeout=10)  # all four print at the same time
                print(f"{name} {n}")
            return None
        """,
        parameters={"name": {"type": "string", "required": True}},
    )
    results: dict[str, TaskResult] = {}

    def run(name: str) -> None:
        results[name] = worker.run("tests.action", {"name": name})

    threads = [threading.Thread(target=run, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == ["t0", "t1", "t2", "t3"]
    for name, result in results.items():
        assert _output(result).stdout == "".join(f"{name} {n}\n" for n in range(50))


def test_the_stream_stands_in_for_the_one_it_replaced() -> None:
    stream = AttemptStream("stdout", sys.__stdout__)
    assert stream.fileno() == sys.__stdout__.fileno()  # type: ignore[union-attr]
    assert stream.encoding == sys.__stdout__.encoding  # type: ignore[union-attr]
    assert AttemptStream("stderr", None).write("no stream at all") == len("no stream at all")


# -- shell commands ----------------------------------------------------------------------


SHELL_PARAMS = {
    "cmd": {"type": "string", "required": True},
    "token": {"type": "string", "secret": True},
}


@pytest.fixture
def shell(make_worker: Any, flat_params: Any) -> Any:
    worker = make_worker(shell_enabled=True, capture_output_bytes=4096)
    worker.add(
        ActionSpec(
            ref="core.shell", runner_type=RunnerType.SHELL, parameters=flat_params(SHELL_PARAMS)
        )
    )
    return worker


def test_a_shell_command_s_output_is_captured(shell: Any) -> None:
    result = shell.run("core.shell", {"cmd": "echo out; echo err >&2"})

    assert result.outcome is AttemptStatus.SUCCEEDED
    assert result.output == ActionOutput(stdout="out\n", stderr="err\n")


def test_a_failed_shell_command_s_output_is_captured_and_secrets_blanked_out(shell: Any) -> None:
    result = shell.run(
        "core.shell",
        {"cmd": 'echo "using $TREADLE_PARAM_TOKEN"; echo "denied" >&2; exit 3', "token": SECRET},
    )

    assert result.outcome is AttemptStatus.FAILED
    assert result.output == ActionOutput(stdout="using ***\n", stderr="denied\n")


def test_a_shell_command_s_output_is_bounded(make_worker: Any, flat_params: Any) -> None:
    worker = make_worker(shell_enabled=True, capture_output_bytes=10)
    worker.add(
        ActionSpec(
            ref="core.shell", runner_type=RunnerType.SHELL, parameters=flat_params(SHELL_PARAMS)
        )
    )

    result = worker.run("core.shell", {"cmd": "seq 1 1000"})

    assert result.output == ActionOutput(stdout="\n999\n1000\n", stdout_truncated=True)
