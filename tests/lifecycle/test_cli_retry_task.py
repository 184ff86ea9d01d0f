"""``treadle runs retry ID --task NAME`` as a user runs it: embedded, on SQLite.

Two branches call ``lifecycle.item``, which fails while its marker file exists; each branch
has a marker of its own, so the test fixes one branch at a time and retries it by name.
What is checked is what a user sees: exit codes, what is printed, what the actions did
(their logs) and the run document.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable
from pathlib import Path

from .conftest import Background, Command, task_entry
from .lifecycle_pack import read_log
from .test_cli_controls import FAILED, OK, REFUSED, show, started

BRANCHES = """\
ref: lifecycle.branches
parameters:
  log: {type: string, required: true}
  left_log: {type: string, required: true}
  right_log: {type: string, required: true}
  left_broken: {type: string, required: true}
  right_broken: {type: string, required: true}
tasks:
  - name: start
    action: lifecycle.step
    input: {name: start, log: "{{ parameters.log }}"}
    next: [{do: [left, right]}]
  - name: left
    action: lifecycle.item
    input: {n: 2, log: "{{ parameters.left_log }}", broken: "{{ parameters.left_broken }}"}
    next: [{when: "{{ succeeded() }}", do: [left_after]}]
  - name: left_after
    action: lifecycle.step
    input: {name: left_after, log: "{{ parameters.log }}"}
  - name: right
    action: lifecycle.item
    input: {n: 2, log: "{{ parameters.right_log }}", broken: "{{ parameters.right_broken }}"}
    next: [{when: "{{ succeeded() }}", do: [right_after]}]
  - name: right_after
    action: lifecycle.step
    input: {name: right_after, log: "{{ parameters.log }}"}
output_map:
  left: "{{ task.left.result }}"
  right: "{{ task.right.result }}"
"""


def test_retry_one_failed_branch_by_name_then_the_other(treadle: Command, tmp_path: Path) -> None:
    flow = tmp_path / "branches.yaml"
    flow.write_text(textwrap.dedent(BRANCHES), encoding="utf-8")
    log, left_log, right_log = tmp_path / "main.log", tmp_path / "left.log", tmp_path / "right.log"
    left_broken, right_broken = tmp_path / "left.broken", tmp_path / "right.broken"
    left_broken.touch()
    right_broken.touch()
    params = [
        f"log={log}",
        f"left_log={left_log}",
        f"right_log={right_log}",
        f"left_broken={left_broken}",
        f"right_broken={right_broken}",
    ]
    failed = treadle("run", flow, *[a for p in params for a in ("-p", p)], code=FAILED)
    found = re.search(r"run (r-[0-9a-f]+) failed: ", failed.stderr)
    assert found is not None, failed
    run_id = found.group(1)

    left_broken.unlink()
    again = treadle("runs", "retry", run_id, "--task", "left", code=FAILED)
    assert f"run {run_id} failed: task 'right' failed: item 2 is broken" in again.stderr, again
    assert read_log(left_log) == ["item 2", "item 2"]
    assert read_log(right_log) == ["item 2"]  # not run again
    assert read_log(log) == ["start start", "end start", "start left_after", "end left_after"]
    between = show(treadle, run_id)
    assert task_entry(between, "left")["status"] == "succeeded"
    assert task_entry(between, "right")["status"] == "failed"
    assert [t["name"] for t in between["tasks"]].count("right_after") == 0

    right_broken.unlink()
    done = treadle("runs", "retry", run_id, "--task", "right", "--json", code=OK)
    document = json.loads(done.stdout)
    assert document["status"] == "succeeded"
    assert document["output"] == {"left": 20, "right": 20}
    assert read_log(left_log) == ["item 2", "item 2"]
    assert read_log(right_log) == ["item 2", "item 2"]
    assert read_log(log)[4:] == ["start right_after", "end right_after"]


def test_a_retry_naming_a_task_that_cannot_be_retried_exits_2_saying_why(
    treadle: Command, tmp_path: Path, background: Callable[..., Background]
) -> None:
    log, broken = tmp_path / "items.log", tmp_path / "broken"
    broken.touch()
    failed = treadle(
        "run", "lifecycle.items", "-p", f"log={log}", "-p", f"broken={broken}", code=FAILED
    )
    found = re.search(r"run (r-[0-9a-f]+) failed", failed.stderr)
    assert found is not None, failed
    run_id = found.group(1)
    before = show(treadle, run_id)

    unknown = treadle("runs", "retry", run_id, "--task", "nowhere", code=REFUSED)
    assert unknown.stderr == f"error: run {run_id} has no task 'nowhere'\n"
    succeeded = treadle("runs", "retry", run_id, "--task", "prepare", code=REFUSED)
    assert succeeded.stderr == (
        f"error: task 'prepare' of run {run_id} did not fail: it is succeeded; only a task "
        "whose latest execution failed, timed out or was canceled can be retried\n"
    )
    missing = treadle("runs", "retry", "r-missing", "--task", "each", code=REFUSED)
    assert missing.stderr == "error: no run r-missing\n"
    unknown_distributed = treadle(
        "runs", "retry", run_id, "--task", "nowhere", "--distributed", code=REFUSED
    )
    assert unknown_distributed.stderr == f"error: run {run_id} has no task 'nowhere'\n"
    assert show(treadle, run_id) == before
    written = treadle("runs", "retry", run_id, "--task", "each", "--distributed", code=OK)
    assert written.stdout == f"run {run_id} is running again: re-running each\n"

    gate = tmp_path / "gate"
    steps = background(treadle, "run", "lifecycle.steps", "-p", f"log={log}", "-p", f"gate={gate}")
    going = steps.run_id()
    started(log, "start first")
    running = treadle("runs", "retry", going, "--task", "first", code=REFUSED)
    assert running.stderr == (
        f"error: run {going} is running; only failed, timed out or canceled runs can be retried\n"
    )
    gate.touch()
    assert steps.finish().code == OK
