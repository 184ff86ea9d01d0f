"""``treadle validate`` as a user runs it: a subprocess, its output lines and exit status."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TREADLE = Path(sys.executable).with_name("treadle")
DATA = Path(__file__).resolve().parent.parent / "data" / "loader"
ATTUNE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "attune"

VALID = """\
ref: demo.valid
parameters:
  who: {type: string, default: world}
tasks:
  - name: hello
    action: core.noop
    input: {message: "hello {{ parameters.who }}"}
"""

BROKEN = """\
ref: demo.broken
tasks:
  - name: first
    action: core.noop
    retyr: {count: 2}
    next:
      - when: "{{ succeeded() }}"
        do: [secnd]
  - name: second
    action: core.noop
    input: {message: "{{ parameters.missing }}"}
"""


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TREADLE), "validate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_valid_file_exits_0(tmp_path: Path) -> None:
    result = run(write(tmp_path, "ok.yaml", VALID))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.strip() == "valid: 1 path checked"


def test_every_problem_is_printed_with_its_location(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", BROKEN)
    result = run(path)
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        f"{path}:5:5: unknown field 'retyr' in task 'first' (did you mean 'retry'?)",
        f"{path}:8:14: task 'first' transitions to unknown task 'secnd' (did you mean 'second'?)",
        f"{path}:11:23: unknown parameter 'missing' in task 'second'",
    ]
    assert result.stderr.strip() == "invalid: 3 errors in 1 path"


def test_warnings_pass_unless_strict(tmp_path: Path) -> None:
    path = write(tmp_path, "warn.yaml", VALID.replace("core.noop", "nowhere.action"))
    result = run(path)
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        f"{path}:6:5: warning: unknown action 'nowhere.action' in task 'hello'"
    ]
    assert result.stderr.strip() == "valid: 1 path checked (1 warning)"
    strict = run(path, "--strict")
    assert strict.returncode == 2
    assert strict.stdout.splitlines() == [
        f"{path}:6:5: unknown action 'nowhere.action' in task 'hello'"
    ]


def test_a_missing_path_is_reported_with_the_rest(tmp_path: Path) -> None:
    broken = write(tmp_path, "broken.yaml", BROKEN)
    missing = tmp_path / "missing.yaml"
    result = run(missing, broken)
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert f"{missing}: no such file or folder" in lines
    assert len(lines) == 4


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "syntax.yaml", "ref: demo.x\ntasks:\n  - name: [oops\n")
    result = run(path)
    assert result.returncode == 2
    [line] = result.stdout.splitlines()
    assert line.startswith(f"{path}:4:1: YAML syntax error:")


def test_pack_path_gives_the_actions_a_workflow_calls(tmp_path: Path) -> None:
    flow = write(
        tmp_path,
        "flow.yaml",
        """\
        ref: mine.flow
        tasks:
          - name: greet
            action: demo.greet
            input: {who: me, loud: true}
        """,
    )
    assert run(flow).returncode == 0  # unknown action: only a warning
    result = run(
        flow, "--pack-path", DATA / "packs" / "other", "--pack-path", DATA / "packs" / "demo"
    )
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        f"{flow}:5:22: task 'greet' gives input 'loud' that 'demo.greet' does not declare"
    ]


def test_a_pack_folder_validates(tmp_path: Path) -> None:
    result = run(DATA / "packs", "--strict")
    assert result.returncode == 0, result.stdout
    assert result.stderr.strip() == "valid: 1 path checked"


@pytest.mark.skipif(not ATTUNE.is_dir(), reason=f"conformance fixtures not found at {ATTUNE}")
def test_conformance_examples_pack_is_one_clear_error() -> None:
    folder = ATTUNE / "split-layout" / "examples"
    result = run(folder)
    assert result.returncode == 2
    [line] = result.stdout.splitlines()
    assert line == (
        f"{folder}/actions/workflows/process_cached_users.workflow.yaml:10:5: "
        "`iterate_cache` (Attune's data-cache iterator) is not supported by Treadle; "
        "iterate a list with `with_items` instead"
    )


def test_validate_does_not_load_the_database_or_broker_libraries(tmp_path: Path) -> None:
    path = write(tmp_path, "ok.yaml", VALID)
    code = textwrap.dedent(
        f"""\
        import sys
        sys.argv = ["treadle", "validate", {str(path)!r}]
        from treadle.cli.main import main
        try:
            main()
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        heavy = sorted(m for m in ("sqlalchemy", "celery", "kombu", "alembic") if m in sys.modules)
        print(",".join(heavy))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
