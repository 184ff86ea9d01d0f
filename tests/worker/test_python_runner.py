"""The python runner: loading action files from packs, calling them, reporting their errors."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from treadle.common.messages import TaskResult
from treadle.common.spec import ActionSpec, RunnerType
from treadle.common.statuses import AttemptStatus
from treadle.worker.runners.python import PythonRunner


def _error(result: TaskResult) -> tuple[str, str]:
    assert result.outcome is AttemptStatus.FAILED, result
    assert result.error is not None
    return result.error.type, result.error.message


def test_an_exception_becomes_its_type_message_and_a_short_traceback(worker, python_action):
    python_action(
        """
        class QuotaExceeded(Exception):
            pass

        def check(n):
            if n > 3:
                raise QuotaExceeded(f"{n} is over the quota of 3")

        def main():
            check(5)
        """
    )

    result = worker.run("tests.action")

    assert _error(result) == ("QuotaExceeded", "5 is over the quota of 3")
    traceback = result.error.details["traceback"]
    assert traceback.splitlines()[-1].endswith("QuotaExceeded: 5 is over the quota of 3")
    assert 'action.py", line 7, in check' in traceback
    assert "in main" in traceback
    assert "treadle/worker" not in traceback  # starts at the action's code, not ours
    assert len(traceback.splitlines()) <= 20


def test_a_deep_traceback_keeps_its_last_twenty_lines(worker, python_action):
    python_action(
        """
        def ping(n):
            if n == 0:
                raise RecursionError("bottom")
            pong(n - 1)

        def pong(n):
            ping(n)

        def main():
            ping(30)
        """
    )

    traceback = worker.run("tests.action").error.details["traceback"]

    assert len(traceback.splitlines()) == 20
    assert traceback.endswith("RecursionError: bottom")


def test_an_exception_without_a_message_reports_its_type(worker, python_action):
    python_action("def main():\n    raise KeyError\n")

    assert _error(worker.run("tests.action")) == ("KeyError", "KeyError")


def test_sys_exit_in_an_action_fails_the_task_not_the_worker(worker, python_action):
    python_action("import sys\ndef main():\n    sys.exit(3)\n")

    assert _error(worker.run("tests.action")) == ("SystemExit", "3")


def test_an_import_error_is_reported_and_a_fixed_file_loads_on_the_next_dispatch(
    worker, python_action, tmp_path
):
    action = python_action("import no_such_module_here\n\ndef main():\n    return 1\n")

    kind, message = _error(worker.run("tests.action"))

    assert kind == "ActionImportError"
    assert "ModuleNotFoundError" in message
    assert "no_such_module_here" in message
    assert str(tmp_path / "action.py") in message

    (tmp_path / "action.py").write_text("def main():\n    return 1\n")

    assert worker.run(action.ref).result == 1


def test_a_syntax_error_names_the_file_and_line(worker, python_action):
    python_action("def main(:\n    return 1\n")

    result = worker.run("tests.action")

    kind, message = _error(result)
    assert kind == "ActionImportError"
    assert "SyntaxError" in message
    assert result.error.details["exception"] == "SyntaxError"
    assert "line 1" in result.error.details["traceback"]


def test_a_missing_function_is_named(worker, python_action):
    python_action("def other():\n    return 1\n", function="main")

    kind, message = _error(worker.run("tests.action"))

    assert kind == "ActionImportError"
    assert "no function 'main'" in message


def test_a_missing_file_or_a_bad_entry_point(worker, tmp_path):
    worker.add(ActionSpec(ref="tests.gone", entry_point="gone.py:main", base_dir=str(tmp_path)))
    worker.add(ActionSpec(ref="tests.bad", entry_point="gone.py", base_dir=str(tmp_path)))

    kind, message = _error(worker.run("tests.gone"))
    assert kind == "ActionImportError"
    assert "does not exist" in message
    kind, message = _error(worker.run("tests.bad"))
    assert kind == "ActionImportError"
    assert "'file.py:function'" in message


def test_a_module_is_loaded_once_and_keeps_its_state(worker, python_action):
    python_action("calls = []\n\ndef main():\n    calls.append(1)\n    return len(calls)\n")

    assert [worker.run("tests.action").result for _ in range(3)] == [1, 2, 3]


def test_modules_get_a_stable_name_from_pack_and_file(worker, python_action, tmp_path):
    python_action("def main():\n    return __name__\n", file="lib/greet.py", ref="mypack.greet")

    assert worker.run("mypack.greet").result == "treadle_actions.mypack.lib.greet"


def test_the_same_pack_ref_in_two_folders_gets_two_modules(worker, tmp_path):
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "act.py").write_text(f"def main():\n    return {folder!r}\n")
        worker.add(
            ActionSpec(
                ref=f"dup.{folder}", entry_point="act.py:main", base_dir=str(tmp_path / folder)
            )
        )

    assert worker.run("dup.one").result == "one"
    assert worker.run("dup.two").result == "two"


def test_an_action_can_import_a_sibling_module(worker, python_action, tmp_path):
    (tmp_path / "treadle_test_sibling_helpers.py").write_text(
        "def shout(s):\n    return s.upper()\n"
    )
    python_action(
        "from treadle_test_sibling_helpers import shout\n\ndef main():\n    return shout('hi')\n"
    )

    try:
        assert worker.run("tests.action").result == "HI"
    finally:
        sys.modules.pop("treadle_test_sibling_helpers", None)
    assert str(tmp_path) not in sys.path


def test_async_functions_are_awaited(worker, python_action):
    python_action(
        "import asyncio\n\nasync def main():\n    await asyncio.sleep(0)\n    return 'awaited'\n"
    )

    assert worker.run("tests.action").result == "awaited"


def test_no_bytecode_cache_is_written_into_the_pack(worker, python_action, tmp_path):
    python_action("def main():\n    return 1\n")

    worker.run("tests.action")

    assert not (tmp_path / "__pycache__").exists()


def test_eight_threads_dispatching_at_once_load_the_module_once(worker, python_action, tmp_path):
    loads = tmp_path / "loads.txt"
    python_action(
        f"""
        import time
        with open({str(loads)!r}, "a") as f:
            f.write("loaded\\n")
        time.sleep(0.05)  # widen the window in which a second load could start

        def main():
            return "ok"
        """
    )
    barrier = threading.Barrier(8)
    results: list[object] = []

    def dispatch() -> None:
        barrier.wait()
        results.append(worker.run("tests.action").result)

    threads = [threading.Thread(target=dispatch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert results == ["ok"] * 8
    assert loads.read_text() == "loaded\n"


def test_resolve_gives_the_function_for_an_entry_point(tmp_path: Path):
    (tmp_path / "x.py").write_text("def f():\n    return 42\n")
    runner = PythonRunner()

    function = runner.resolve(
        ActionSpec(
            ref="p.x", runner_type=RunnerType.PYTHON, entry_point="x.py:f", base_dir=str(tmp_path)
        )
    )

    assert function() == 42
    assert runner.loaded_modules() == {str((tmp_path / "x.py").resolve()): "treadle_actions.p.x"}
