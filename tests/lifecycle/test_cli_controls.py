"""``treadle runs pause|resume|cancel|retry|compensate|watch`` as a user runs them: embedded.

Each test drives the real ``treadle`` command in subprocesses on one SQLite file: a
``treadle run`` started in the background holds its first task open until the test
creates a gate file, and the controls come from other ``treadle`` processes, as they
would from another terminal. What is checked is what a user sees: exit codes, what is
printed, what the actions did (their log) and the run document (``treadle runs show``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from treadle.scheduler.service.run_document import stored_run_document
from treadle.scheduler.store import Store
from treadle.scheduler.store.models import timers
from treadle.testing.processes import wait_until

from .conftest import Background, Command, task_entry
from .lifecycle_pack import read_log

#: Exit codes of ``treadle`` (docs/cli.md).
OK, FAILED, REFUSED, STOPPED = 0, 1, 2, 3


def show(treadle: Command, run_id: str, *, items: bool = False) -> dict[str, Any]:
    """The run document, as ``treadle runs show ID`` prints it (read here: a process less)."""
    with Store.open(treadle.env["TREADLE_DATABASE_URL"]) as store, store.snapshot() as uow:
        return stored_run_document(uow, run_id, items=items)


def started(log: Path, line: str) -> None:
    wait_until(lambda: line in read_log(log), 30, f"{line!r} in the action log")


def test_pause_from_another_terminal_then_resume_exactly_where_it_stopped(
    treadle: Command, background: Callable[..., Background], tmp_path: Path
) -> None:
    log, gate = tmp_path / "steps.log", tmp_path / "gate"
    run = background(treadle, "run", "lifecycle.steps", "-p", f"log={log}", "-p", f"gate={gate}")
    run_id = run.run_id()
    started(log, "start first")

    paused = treadle("runs", "pause", run_id, "--reason", "maintenance window", code=STOPPED)
    assert paused.stderr.strip().endswith(
        f"run {run_id} is pausing: 1 running task (first) finish first; nothing new starts"
    ), paused
    assert paused.stdout == ""

    gate.touch()  # `first` ends in the `treadle run` process, which then stops: paused
    ended = run.finish()
    assert ended.code == STOPPED, ended
    assert f"run {run_id} paused: resume it with: treadle runs resume {run_id}" in ended.stderr
    assert read_log(log) == ["start first", "end first"]  # nothing new started
    document = show(treadle, run_id)
    assert document["status"] == "paused"
    assert [(t["name"], t["status"]) for t in document["tasks"]] == [("first", "succeeded")]
    assert document["held_back"] == ["second"]

    again = treadle("runs", "pause", run_id, code=REFUSED)
    assert again.stderr == f"error: run {run_id} is paused already\n"
    assert show(treadle, run_id) == document  # a refused control changes nothing

    resumed = treadle("runs", "resume", run_id, code=OK)
    assert json.loads(resumed.stdout) == {"last": "third"}
    assert f"run {run_id} succeeded" in resumed.stderr
    assert read_log(log) == [
        "start first",
        "end first",
        "start second",
        "end second",
        "start third",
        "end third",
    ]
    refused = treadle("runs", "resume", run_id, code=REFUSED)
    assert refused.stderr == (
        f"error: run {run_id} is succeeded; only paused (or pausing) runs can be resumed\n"
    )


def test_cancel_from_another_terminal_ends_the_run_and_its_late_result_is_ignored(
    treadle: Command, background: Callable[..., Background], tmp_path: Path
) -> None:
    log, gate = tmp_path / "steps.log", tmp_path / "gate"
    run = background(treadle, "run", "lifecycle.steps", "-p", f"log={log}", "-p", f"gate={gate}")
    run_id = run.run_id()
    started(log, "start first")

    canceled = treadle("runs", "cancel", run_id, "--reason", "not needed any more", code=OK)
    assert f"run {run_id} canceled: not needed any more" in canceled.stderr, canceled
    document = show(treadle, run_id)
    assert document["status"] == "canceled"
    assert document["error"]["message"] == "not needed any more"
    assert [(t["name"], t["status"]) for t in document["tasks"]] == [("first", "canceled")]

    # Embedded: a thread cannot be killed, so the action runs to its end; its result is
    # recorded and ignored, and nothing after it starts.
    gate.touch()
    ended = run.finish()
    assert ended.code == FAILED, ended
    assert f"run {run_id} canceled: not needed any more" in ended.stderr
    assert read_log(log) == ["start first", "end first"]
    assert show(treadle, run_id)["status"] == "canceled"

    refused = treadle("runs", "cancel", run_id, code=REFUSED)
    assert refused.stderr == (
        f"error: run {run_id} is canceled; only runs that have not ended can be canceled\n"
    )


def test_cancel_closes_inquiries_and_timers_and_cancels_the_child_run(treadle: Command) -> None:
    waiting = treadle("run", "lifecycle.waiting_parent", code=STOPPED)
    found = re.search(r"run (r-[0-9a-f]+) is waiting", waiting.stderr)
    assert found is not None, waiting
    run_id = found.group(1)
    assert _timers(treadle, run_id) == 1  # the deadline of `later`'s event wait

    canceled = treadle("runs", "cancel", run_id, code=OK)

    assert f"run {run_id} canceled: canceled by " in canceled.stderr, canceled
    document = show(treadle, run_id)
    assert document["status"] == "canceled"
    assert {t["name"]: t["status"] for t in document["tasks"]} == {
        "approve": "canceled",
        "call": "canceled",
        "later": "canceled",
    }
    assert show(treadle, task_entry(document, "call")["child_run"])["status"] == "canceled"
    assert _timers(treadle, run_id) == 0
    inquiries = json.loads(treadle("inquiry", "list", "--status", "all", "--json", code=OK).stdout)
    assert sorted((i["task"], i["status"]) for i in inquiries) == [
        ("approve", "canceled"),
        ("confirm", "canceled"),
    ]


def _timers(treadle: Command, run_id: str) -> int:
    """The run's timer rows (deadlines, delays, retries) in the database."""
    with Store.open(treadle.env["TREADLE_DATABASE_URL"]) as store, store.unit_of_work() as uow:
        count = uow.connection.execute(
            select(func.count()).select_from(timers).where(timers.c.run_id == run_id)
        ).scalar_one()
    return int(count)


def test_retry_reruns_only_the_failed_item_and_keeps_what_succeeded(
    treadle: Command, tmp_path: Path
) -> None:
    log, broken = tmp_path / "items.log", tmp_path / "broken"
    broken.touch()
    failed = treadle(
        "run", "lifecycle.items", "-p", f"log={log}", "-p", f"broken={broken}", code=FAILED
    )
    found = re.search(r"run (r-[0-9a-f]+) failed: task 'each' failed", failed.stderr)
    assert found is not None, failed
    run_id = found.group(1)
    before = show(treadle, run_id, items=True)
    assert [i["status"] for i in task_entry(before, "each")["items"]] == [
        "succeeded",
        "failed",
        "succeeded",
    ]
    prepared = task_entry(before, "prepare")

    broken.unlink()
    retried = treadle("runs", "retry", run_id, "--json", code=OK)

    document = json.loads(retried.stdout)
    assert document["status"] == "succeeded"
    assert document["output"]["results"] == [10, 20, 30]
    assert document["output"]["token"].startswith("prepare-")
    assert task_entry(document, "prepare") == prepared  # kept, not run again
    page = json.loads(treadle("runs", "show", run_id, "--items", "each", code=OK).stdout)
    assert page["next_cursor"] is None
    assert [(i["status"], i["attempts"]) for i in page["items"]] == [
        ("succeeded", 1),
        ("succeeded", 2),
        ("succeeded", 1),
    ]
    lines = read_log(log)
    assert lines[:2] == ["start prepare", "end prepare"]
    assert sorted(lines[2:5]) == ["item 1", "item 2", "item 3"]
    assert lines[5:] == ["item 2"]  # only the failed item ran again

    refused = treadle("runs", "retry", run_id, code=REFUSED)
    assert refused.stderr == (
        f"error: run {run_id} is succeeded; "
        "only failed, timed out or canceled runs can be retried\n"
    )
    assert show(treadle, run_id) == document


def test_compensate_undoes_completed_work_newest_first_items_included(
    treadle: Command, tmp_path: Path
) -> None:
    log = tmp_path / "shop.log"
    failed = treadle("run", "lifecycle.shop", "-p", f"log={log}", "-q", code=FAILED)
    run_id = failed.stderr.split()[1]
    assert failed.stderr == f"run {run_id} failed: task 'ship' failed: the truck broke down\n"

    compensated = treadle("runs", "compensate", run_id, code=OK)
    assert compensated.stderr.strip().endswith(
        f"run {run_id} is compensated: undid charge, reserve"
    ), compensated
    undone = [line for line in read_log(log) if line.startswith("undo ")]
    assert sorted(undone[:2]) == ["undo charge 1", "undo charge 2"]  # the newest task first
    assert undone[2:] == ["undo reserve reserve"]
    document = show(treadle, run_id, items=True)
    assert document["status"] == "compensated"
    assert {t["name"]: t["status"] for t in document["tasks"]} == {
        "reserve": "compensated",
        "charge": "compensated",
        "ship": "failed",
        "charge~compensate": "succeeded",
        "reserve~compensate": "succeeded",
    }
    assert [i["status"] for i in task_entry(document, "charge")["items"]] == [
        "compensated",
        "compensated",
    ]

    refused = treadle("runs", "compensate", run_id, code=REFUSED)
    assert refused.stderr == (
        f"error: run {run_id} is compensated already; there is nothing left to undo\n"
    )


def test_a_failing_compensation_fails_the_run_naming_it(treadle: Command, tmp_path: Path) -> None:
    log = tmp_path / "shop.log"
    failed = treadle(
        "run", "lifecycle.shop", "-p", f"log={log}", "-p", "fail_undo=charge 2", "-q", code=FAILED
    )
    run_id = failed.stderr.split()[1]

    result = treadle("runs", "compensate", run_id, "--reason", "order withdrawn", code=FAILED)

    assert (
        f"run {run_id} failed: compensation of task 'charge' failed: 1 of 2 items of task "
        "'charge~compensate' did not succeed; first: item 1: cannot undo charge 2"
    ) in result.stderr, result
    document = show(treadle, run_id)
    assert document["status"] == "failed"
    assert document["error"]["type"] == "CompensationFailed"
    assert document["error"]["task"] == "charge"
    assert task_entry(document, "charge~compensate")["status"] == "failed"
    assert task_entry(document, "reserve")["status"] == "succeeded"  # never reached
    assert "undo reserve reserve" not in read_log(log)


def test_watch_prints_the_tree_as_it_changes_and_exits_when_the_run_ends(
    treadle: Command, background: Callable[..., Background], tmp_path: Path
) -> None:
    log, gate = tmp_path / "nested.log", tmp_path / "gate"
    run = background(treadle, "run", "lifecycle.parent", "-p", f"log={log}", "-p", f"gate={gate}")
    run_id = run.run_id()
    started(log, "start first")  # in the child run

    watch = background(treadle, "runs", "watch", run_id, "--interval", "0.1")
    # stdout is a pipe, not a terminal: one line per change, indented by depth.
    watch.wait_for(rf"^run {run_id}  lifecycle\.parent v\d+  running$")
    watch.wait_for(r"^  ▸ call  running  ")
    watch.wait_for(r"^    run r-[0-9a-f.]+  lifecycle\.steps v\d+  running$")
    watch.wait_for(r"^      ▸ first  running  ")

    gate.touch()
    watched = watch.finish()
    assert watched.code == OK, watched
    assert run.finish().code == OK
    assert re.search(rf"^run {run_id}  lifecycle\.parent v\d+  succeeded$", watched.stdout, re.M)
    for task, depth in (("first", 3), ("second", 3), ("third", 3), ("call", 1), ("after", 1)):
        assert re.search(rf"^{'  ' * depth}✓ {task}  succeeded  ", watched.stdout, re.M), (
            task,
            watched.stdout,
        )

    # An ended run: the tree once, and the run's exit code at once.
    again = treadle("runs", "watch", run_id, code=OK)
    assert again.stdout.splitlines()[0] == f"run {run_id}  lifecycle.parent v1  succeeded"
    assert len(again.stdout.splitlines()) == 7  # the run, call, the child run and 3 tasks, after


def test_watch_a_paused_run_then_canceled(
    treadle: Command, background: Callable[..., Background], tmp_path: Path
) -> None:
    log, gate = tmp_path / "steps.log", tmp_path / "gate"
    run = background(treadle, "run", "lifecycle.steps", "-p", f"log={log}", "-p", f"gate={gate}")
    run_id = run.run_id()
    started(log, "start first")
    treadle("runs", "pause", run_id, code=STOPPED)
    gate.touch()
    assert run.finish().code == STOPPED

    watch = background(treadle, "runs", "watch", run_id, "--interval", "0.1")
    watch.wait_for(rf"^run {run_id}  lifecycle\.steps v\d+  paused \(1 held back\)$")
    treadle("runs", "cancel", run_id, "--reason", "gave up", code=OK)
    watched = watch.finish()
    assert watched.code == FAILED, watched
    assert re.search(
        rf"^run {run_id}  lifecycle\.steps v\d+  canceled: gave up$", watched.stdout, re.M
    )


@pytest.mark.parametrize("command", ["retry", "watch"])
def test_an_unknown_run_is_named(treadle: Command, command: str) -> None:
    result = treadle("runs", command, "r-missing", code=REFUSED)
    assert result.stderr == "error: no run r-missing\n", result
