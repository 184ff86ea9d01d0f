"""Pause, resume, cancel, retry and compensate in distributed mode, with real services.

One PostgreSQL database and RabbitMQ vhost, one ``treadle scheduler`` and one ``treadle
worker`` (a prefork pool of 3) serve the whole module. The controls come from the Python
client and from ``treadle runs ... --distributed``, as an operator would send them; the
tests then wait for what the services make of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from treadle.common.statuses import InquiryStatus, RunStatus
from treadle.scheduler.service.controls import ControlRefused
from treadle.scheduler.store.models import timers as timers_table
from treadle.testing.processes import wait_until

from .conftest import Background, Command, Services, process_alive, task_entry
from .lifecycle_pack import read_log

#: Exit codes of ``treadle`` (docs/cli.md).
OK, REFUSED = 0, 2


@pytest.fixture
def operator(services: Services, tmp_path: Path) -> Command:
    """``treadle`` pointed at the services (add ``--distributed`` to controls)."""
    return services.command(tmp_path)


def started(log: Path, line: str) -> None:
    wait_until(lambda: line in read_log(log), 30, f"{line!r} in the action log")


def test_pause_lets_the_running_task_finish_starts_nothing_and_resume_continues(
    services: Services, operator: Command, tmp_path: Path
) -> None:
    log, gate = tmp_path / "steps.log", tmp_path / "gate"
    with services.client() as client:
        run_id = client.start("lifecycle.steps", {"log": str(log), "gate": str(gate)})
        started(log, "start first")

        info = client.pause(run_id, reason="maintenance window")
        assert info.status is RunStatus.PAUSING
        with pytest.raises(ControlRefused, match=f"run {run_id} is pausing already"):
            client.pause(run_id)

        gate.touch()  # the running task finishes ...
        document = services.wait_for_status(run_id, "paused")
        assert read_log(log) == ["start first", "end first"]  # ... and nothing new started
        assert [(t["name"], t["status"]) for t in document["tasks"]] == [("first", "succeeded")]
        assert document["held_back"] == ["second"]

        resumed = operator("runs", "resume", run_id, "--distributed", code=OK)
        assert resumed.stdout.startswith(f"run {run_id} is running"), resumed
        ended = client.wait(run_id, timeout=30)
    assert ended.status is RunStatus.SUCCEEDED
    assert ended.output == {"last": "third"}
    assert read_log(log)[2:] == ["start second", "end second", "start third", "end third"]


def test_pausing_a_parent_pauses_its_child_run(
    services: Services, operator: Command, tmp_path: Path
) -> None:
    log, gate = tmp_path / "nested.log", tmp_path / "gate"
    with services.client() as client:
        run_id = client.start("lifecycle.parent", {"log": str(log), "gate": str(gate)})
        started(log, "start first")  # the child run's first task
        child_id = task_entry(services.document(run_id), "call")["child_run"]

        paused = operator("runs", "pause", run_id, "--distributed", code=OK)
        assert paused.stdout == (
            f"run {run_id} is pausing: 1 running task (call) finish first; nothing new starts\n"
        )
        # The child is pausing as soon as the command returns, not once the scheduler
        # relays it: its task may end at any moment, and nothing new may start after it.
        assert services.document(child_id)["status"] == "pausing"
        gate.touch()
        child = services.wait_for_status(child_id, "paused")
        assert child["held_back"] == ["second"]
        assert read_log(log) == ["start first", "end first"]
        # the child tells its parent it is paused; the parent, waiting only on it, is paused
        services.wait_for_status(run_id, "paused")

        client.resume(run_id)
        ended = client.wait(run_id, timeout=30)
    assert ended.status is RunStatus.SUCCEEDED
    assert services.document(child_id)["status"] == "succeeded"
    assert read_log(log)[2:] == [
        "start second",
        "end second",
        "start third",
        "end third",
        "start after",
        "end after",
    ]


def test_cancel_terminates_the_worker_process_running_the_task(
    services: Services, operator: Command, tmp_path: Path
) -> None:
    target = tmp_path / "written"
    pid_file = Path(f"{target}.pid")
    with services.client() as client:
        run_id = client.start("lifecycle.slow", {"path": str(target), "seconds": 30})
        wait_until(pid_file.exists, 30, "slow_write to start")
        pid = int(wait_until(pid_file.read_text, 5, "slow_write's pid"))
        assert process_alive(pid)

        canceled = operator("runs", "cancel", run_id, "--distributed", "--reason", "stop it")
        assert canceled.code == OK, canceled
        assert canceled.stdout == f"run {run_id} is canceled: stop it\n"
        wait_until(lambda: not process_alive(pid), 20, f"the worker process {pid} to end")
        document = services.wait_for_status(run_id, "canceled")
    assert not target.exists()  # terminated before it could write
    assert document["error"]["message"] == "stop it"
    assert [(t["name"], t["status"]) for t in document["tasks"]] == [("write", "canceled")]


def test_cancel_closes_inquiries_and_timers_and_cancels_the_child_run(
    services: Services,
) -> None:
    with services.client() as client:
        run_id = client.start("lifecycle.waiting_parent")

        def both_asked() -> list[Any]:
            with client.store.unit_of_work() as uow:
                found = uow.list_inquiries(status=InquiryStatus.PENDING)
            mine = [i for i in found if i.run_id == run_id or i.task == "confirm"]
            return mine if len(mine) == 2 else []

        wait_until(both_asked, 30, "both inquiries to be open")
        child_id = task_entry(services.document(run_id), "call")["child_run"]
        assert _timers(services, run_id) == 1  # the deadline of `later`'s event wait

        info = client.cancel(run_id, reason="no longer needed")
        assert info.status is RunStatus.CANCELED
        child = services.document(child_id)  # canceled with its parent, at once
        assert child["status"] == "canceled"
        assert child["error"]["message"] == f"its parent run {run_id} canceled it"
        with client.store.unit_of_work() as uow:
            inquiries = [
                (i.task, i.status) for i in uow.list_inquiries() if i.run_id in (run_id, child_id)
            ]
    assert sorted(inquiries) == [
        ("approve", InquiryStatus.CANCELED),
        ("confirm", InquiryStatus.CANCELED),
    ]
    assert _timers(services, run_id) == 0
    document = services.document(run_id)
    assert document["error"]["message"] == "no longer needed"
    assert {t["name"]: t["status"] for t in document["tasks"]} == {
        "approve": "canceled",
        "call": "canceled",
        "later": "canceled",
    }


def _timers(services: Services, run_id: str) -> int:
    with services.client() as client, client.store.unit_of_work() as uow:
        count = uow.connection.execute(
            select(func.count()).select_from(timers_table).where(timers_table.c.run_id == run_id)
        ).scalar_one()
    return int(count)


def test_retry_reruns_only_the_failed_item(
    services: Services, operator: Command, tmp_path: Path
) -> None:
    log, broken = tmp_path / "items.log", tmp_path / "broken"
    broken.touch()
    with services.client() as client:
        run_id = client.start("lifecycle.items", {"log": str(log), "broken": str(broken)})
        services.wait_for_status(run_id, "failed")
        failed = services.document(run_id, items=True)
        assert [i["status"] for i in task_entry(failed, "each")["items"]] == [
            "succeeded",
            "failed",
            "succeeded",
        ]
        broken.unlink()

        retried = operator("runs", "retry", run_id, "--distributed", code=OK)
        assert retried.stdout == f"run {run_id} is running again: re-running each\n"
        ended = client.wait(run_id, timeout=30)
    assert ended.status is RunStatus.SUCCEEDED
    assert ended.output is not None
    assert ended.output["results"] == [10, 20, 30]
    assert ended.output["token"].startswith("prepare-")
    lines = read_log(log)
    assert lines[:2] == ["start prepare", "end prepare"]  # ran once
    assert sorted(lines[2:5]) == ["item 1", "item 2", "item 3"]
    assert lines[5:] == ["item 2"]  # only the failed item ran again
    each = task_entry(services.document(run_id, items=True), "each")
    assert [(i["status"], i["attempts"]) for i in each["items"]] == [
        ("succeeded", 1),
        ("succeeded", 2),
        ("succeeded", 1),
    ]


def test_compensate_undoes_newest_first_items_included(services: Services, tmp_path: Path) -> None:
    log = tmp_path / "shop.log"
    with services.client() as client:
        run_id = client.start("lifecycle.shop", {"log": str(log)})
        services.wait_for_status(run_id, "failed")

        info = client.compensate(run_id)
        assert info.status in (RunStatus.COMPENSATING, RunStatus.COMPENSATED)
        document = services.wait_for_status(run_id, "compensated")
        with pytest.raises(ControlRefused, match="compensated already"):
            client.compensate(run_id)
    undone = [line for line in read_log(log) if line.startswith("undo ")]
    assert sorted(undone[:2]) == ["undo charge 1", "undo charge 2"]
    assert undone[2:] == ["undo reserve reserve"]
    assert {t["name"]: t["status"] for t in document["tasks"]} == {
        "reserve": "compensated",
        "charge": "compensated",
        "ship": "failed",
        "charge~compensate": "succeeded",
        "reserve~compensate": "succeeded",
    }
    charge = task_entry(services.document(run_id, items=True), "charge")
    assert [i["status"] for i in charge["items"]] == ["compensated", "compensated"]
    assert task_entry(document, "charge~compensate")["compensates"] == charge["execution"]


def test_a_failing_compensation_fails_the_run_naming_it(
    services: Services, operator: Command, tmp_path: Path
) -> None:
    log = tmp_path / "shop.log"
    parameters = {"log": str(log), "fail_undo": "reserve reserve"}
    with services.client() as client:
        run_id = client.start("lifecycle.shop", parameters)
        services.wait_for_status(run_id, "failed")

    result = operator("runs", "compensate", run_id, "--distributed", code=OK)
    # What the command prints is the run right after: the services may be quick.
    assert result.stdout in (
        f"run {run_id} is compensating: undoing charge; then reserve\n",
        f"run {run_id} is compensating: undoing reserve\n",
        f"run {run_id} is failed: compensation of task 'reserve' failed: "
        "cannot undo reserve reserve\n",
    ), result
    document = services.wait_for_status(run_id, "failed", "compensated")
    assert document["status"] == "failed"
    assert document["error"]["type"] == "CompensationFailed"
    assert document["error"]["message"].startswith(
        "compensation of task 'reserve' failed: cannot undo reserve reserve"
    )
    assert task_entry(document, "charge")["status"] == "compensated"
    assert task_entry(document, "reserve~compensate")["status"] == "failed"


def test_a_refused_control_exits_2_and_changes_nothing(
    services: Services, operator: Command, tmp_path: Path
) -> None:
    with services.client() as client:
        run_id = client.start("lifecycle.steps", {"log": str(tmp_path / "log")})
        assert client.wait(run_id, timeout=30).status is RunStatus.SUCCEEDED
    before = services.document(run_id)

    refused = operator("runs", "pause", run_id, "--distributed", code=REFUSED)
    assert refused.stderr == f"error: run {run_id} is succeeded; only running runs can be paused\n"
    unknown = operator("runs", "cancel", "r-missing", "--distributed", code=REFUSED)
    assert unknown.stderr.startswith("error: no run r-missing in ")
    assert services.document(run_id) == before


def test_watch_follows_a_distributed_run_to_its_end(
    services: Services,
    operator: Command,
    background: Callable[..., Background],
    tmp_path: Path,
) -> None:
    log, gate = tmp_path / "steps.log", tmp_path / "gate"
    with services.client() as client:
        run_id = client.start("lifecycle.steps", {"log": str(log), "gate": str(gate)})
    started(log, "start first")

    watch = background(operator, "runs", "watch", run_id, "--distributed", "--interval", "0.1")
    watch.wait_for(r"^  ▸ first  running  ")
    gate.touch()
    watched = watch.finish()

    assert watched.code == OK, watched
    assert re.search(rf"^run {run_id}  lifecycle\.steps v\d+  succeeded$", watched.stdout, re.M)
    for task in ("first", "second", "third"):
        assert re.search(rf"^  ✓ {task}  succeeded  ", watched.stdout, re.M), watched
