"""Pause, resume, cancel, retry and compensate in embedded mode, in process, on SQLite.

Each runner stands for one ``treadle`` process on the same database file: one drives the
run (in a thread where the test must act while a task runs), another applies a control as
``treadle runs ...`` does, then continues the run itself.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from treadle.common.statuses import InquiryStatus, RunStatus
from treadle.embedded import EmbeddedRunner
from treadle.embedded.runner import FollowResult
from treadle.scheduler.core.events import PauseRequested, ResumeRequested
from treadle.scheduler.service.controls import Control, ControlRefused, apply_control
from treadle.testing.processes import wait_until

from .conftest import Embedded, task_entry
from .lifecycle_pack import read_log


class Driver:
    """Follows a run in a thread, as the ``treadle run`` that started it would."""

    def __init__(self, runner: EmbeddedRunner, run_id: str) -> None:
        self.result: FollowResult | None = None
        self._thread = threading.Thread(target=self._follow, args=(runner, run_id), daemon=True)
        self._errors: list[BaseException] = []
        self._thread.start()

    def _follow(self, runner: EmbeddedRunner, run_id: str) -> None:
        try:
            self.result = runner.follow(run_id)
        except BaseException as exc:  # reported by join()
            self._errors.append(exc)

    def join(self, timeout: float = 20) -> FollowResult:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the driving runner did not stop"
        assert self._errors == []
        assert self.result is not None
        return self.result


def started(log: Path, line: str) -> None:
    wait_until(lambda: line in read_log(log), 20, f"{line!r} in the action log")


def test_pause_mid_run_holds_new_tasks_and_resume_continues_where_it_stopped(
    embedded: Embedded, tmp_path: Path
) -> None:
    log = tmp_path / "steps.log"
    driver = embedded.runner()
    steps = embedded.catalog.workflow("lifecycle.steps")
    run_id = driver.start(steps, {"log": str(log), "seconds": 1})
    following = Driver(driver, run_id)
    started(log, "start first")

    operator = embedded.runner()
    state = apply_control(operator.runs, run_id, Control.PAUSE, reason="maintenance window")
    assert state.status is RunStatus.PAUSING  # `first` is still running in the driver

    stopped = following.join()
    assert stopped.state.status is RunStatus.PAUSED
    assert not stopped.waiting
    assert read_log(log) == ["start first", "end first"]
    document = embedded.document(run_id)
    assert [(t["name"], t["status"]) for t in document["tasks"]] == [("first", "succeeded")]
    assert document.get("held_back") == ["second"], document

    with pytest.raises(ControlRefused, match=f"run {run_id} is paused already"):
        apply_control(operator.runs, run_id, Control.PAUSE)

    apply_control(operator.runs, run_id, Control.RESUME)
    ended = operator.follow(run_id)
    assert ended.state.status is RunStatus.SUCCEEDED
    assert ended.state.output == {"last": "third"}
    assert read_log(log) == [
        "start first",
        "end first",
        "start second",
        "end second",
        "start third",
        "end third",
    ]
    with operator.store.unit_of_work() as uow:
        events = [e.event for e in uow.list_events(run_id)]
    controls = [e for e in events if isinstance(e, PauseRequested | ResumeRequested)]
    assert controls == [PauseRequested(reason="maintenance window"), ResumeRequested()]


def test_pausing_a_parent_pauses_its_child_run_and_resuming_resumes_both(
    embedded: Embedded, tmp_path: Path
) -> None:
    log = tmp_path / "nested.log"
    driver = embedded.runner()
    parent = embedded.catalog.workflow("lifecycle.parent")
    run_id = driver.start(parent, {"log": str(log), "seconds": 1})
    following = Driver(driver, run_id)
    started(log, "start first")  # the child run's first task

    operator = embedded.runner()
    apply_control(operator.runs, run_id, Control.PAUSE)
    following.join()

    document = embedded.document(run_id)
    child_id = task_entry(document, "call")["child_run"]
    child = embedded.document(child_id)
    assert child["status"] == "paused"
    assert child["held_back"] == ["second"]
    # The parent holds back everything; its only running work is the child run, which
    # told it once it was paused: the parent is paused too.
    assert document["status"] == "paused"
    assert read_log(log) == ["start first", "end first"]

    apply_control(operator.runs, run_id, Control.RESUME)
    ended = operator.follow(run_id)
    assert ended.state.status is RunStatus.SUCCEEDED
    assert embedded.document(child_id)["status"] == "succeeded"
    assert read_log(log)[2:] == [
        "start second",
        "end second",
        "start third",
        "end third",
        "start after",
        "end after",
    ]


WAITING_PARENT = """
ref: lifecycle_test.waiting_parent
tasks:
  - name: approve
    action: core.ask
    input: {prompt: "Ship it?"}
  - name: call
    action: lifecycle_test.waiting_child
  - name: later
    action: core.noop
    wait_for: {event: {type: lifecycle_test.never}, timeout: 600}
"""
WAITING_CHILD = """
ref: lifecycle_test.waiting_child
tasks:
  - name: confirm
    action: core.ask
    input: {prompt: "Really?"}
"""


def test_cancel_closes_inquiries_and_timers_and_cancels_child_runs(embedded: Embedded) -> None:
    embedded.workflow(WAITING_CHILD)
    parent = embedded.workflow(WAITING_PARENT)
    runner = embedded.runner()
    run_id = runner.start(parent, {})
    assert runner.follow(run_id).waiting
    child_id = task_entry(embedded.document(run_id), "call")["child_run"]
    assert runner.state_of(run_id).timers  # the deadline of `later`'s wait

    operator = embedded.runner()
    apply_control(operator.runs, run_id, Control.CANCEL, reason="no longer needed")
    ended = operator.follow(run_id)

    assert ended.state.status is RunStatus.CANCELED
    assert ended.state.timers == {}
    document = embedded.document(run_id)
    assert document["error"]["message"] == "no longer needed"
    assert {t["name"]: t["status"] for t in document["tasks"]} == {
        "approve": "canceled",
        "call": "canceled",
        "later": "canceled",
    }
    child = embedded.document(child_id)
    assert child["status"] == "canceled"
    with operator.store.unit_of_work() as uow:
        inquiries = uow.list_inquiries()
    assert {(i.task, i.status) for i in inquiries} == {
        ("approve", InquiryStatus.CANCELED),
        ("confirm", InquiryStatus.CANCELED),
    }
    with pytest.raises(ControlRefused, match="only runs that have not ended can be canceled"):
        apply_control(operator.runs, run_id, Control.CANCEL)


def test_cancel_ends_a_run_whose_task_is_running_and_ignores_its_late_result(
    embedded: Embedded, tmp_path: Path
) -> None:
    log = tmp_path / "steps.log"
    driver = embedded.runner()
    run_id = driver.start(
        embedded.catalog.workflow("lifecycle.steps"), {"log": str(log), "seconds": 1}
    )
    following = Driver(driver, run_id)
    started(log, "start first")

    operator = embedded.runner()
    state = apply_control(operator.runs, run_id, Control.CANCEL)
    assert state.status is RunStatus.CANCELED  # at once: the attempt is revoked
    following.join()
    started(log, "end first")  # a thread cannot be killed: the action runs to its end ...
    assert driver.follow(run_id).state.status is RunStatus.CANCELED  # ... and is ignored
    document = embedded.document(run_id)
    assert [(t["name"], t["status"]) for t in document["tasks"]] == [("first", "canceled")]
    assert "start second" not in read_log(log)


def test_retry_reruns_only_the_failed_item_and_keeps_published_variables(
    embedded: Embedded, tmp_path: Path
) -> None:
    log, broken = tmp_path / "items.log", tmp_path / "broken"
    broken.touch()
    runner = embedded.runner()
    items = embedded.catalog.workflow("lifecycle.items")
    run_id = runner.start(items, {"log": str(log), "broken": str(broken)})
    failed = runner.follow(run_id).state
    assert failed.status is RunStatus.FAILED
    token = failed.vars["token"]
    each = task_entry(embedded.document(run_id, items=True), "each")
    assert [i["status"] for i in each["items"]] == ["succeeded", "failed", "succeeded"]

    broken.unlink()
    operator = embedded.runner()
    apply_control(operator.runs, run_id, Control.RETRY)
    ended = operator.follow(run_id).state

    assert ended.status is RunStatus.SUCCEEDED
    assert ended.output == {"token": token, "results": [10, 20, 30]}
    lines = read_log(log)
    assert lines[:2] == ["start prepare", "end prepare"]  # prepare ran once
    assert sorted(lines[2:5]) == ["item 1", "item 2", "item 3"]
    assert lines[5:] == ["item 2"]  # only the failed item ran again
    each = task_entry(embedded.document(run_id, items=True), "each")
    assert [(i["status"], i["attempts"]) for i in each["items"]] == [
        ("succeeded", 1),
        ("succeeded", 2),
        ("succeeded", 1),
    ]


def _undone(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("undo ")]


def test_compensate_undoes_completed_tasks_newest_first_items_included(
    embedded: Embedded, tmp_path: Path
) -> None:
    log = tmp_path / "shop.log"
    runner = embedded.runner()
    run_id = runner.start(embedded.catalog.workflow("lifecycle.shop"), {"log": str(log)})
    assert runner.follow(run_id).state.status is RunStatus.FAILED

    operator = embedded.runner()
    state = apply_control(operator.runs, run_id, Control.COMPENSATE)
    assert state.status is RunStatus.COMPENSATING
    ended = operator.follow(run_id).state

    assert ended.status is RunStatus.COMPENSATED
    undone = _undone(read_log(log))
    assert sorted(undone[:2]) == ["undo charge 1", "undo charge 2"]
    assert undone[2:] == ["undo reserve reserve"]
    document = embedded.document(run_id)
    statuses = {t["name"]: t["status"] for t in document["tasks"]}
    assert statuses == {
        "reserve": "compensated",
        "charge": "compensated",
        "ship": "failed",
        "charge~compensate": "succeeded",
        "reserve~compensate": "succeeded",
    }
    charge = task_entry(document, "charge")
    assert task_entry(document, "charge~compensate")["compensates"] == charge["execution"]
    reserve = task_entry(document, "reserve")
    assert task_entry(document, "reserve~compensate")["compensates"] == reserve["execution"]
    with pytest.raises(ControlRefused, match="compensated already"):
        apply_control(operator.runs, run_id, Control.COMPENSATE)


def test_a_failing_compensation_fails_the_run_naming_it(embedded: Embedded, tmp_path: Path) -> None:
    log = tmp_path / "shop.log"
    runner = embedded.runner()
    parameters = {"log": str(log), "fail_undo": "reserve reserve"}
    run_id = runner.start(embedded.catalog.workflow("lifecycle.shop"), parameters)
    runner.follow(run_id)

    apply_control(runner.runs, run_id, Control.COMPENSATE)
    ended = runner.follow(run_id).state

    assert ended.status is RunStatus.FAILED
    assert ended.error is not None
    assert ended.error["type"] == "CompensationFailed"
    assert ended.error["message"].startswith("compensation of task 'reserve' failed")
    assert "cannot undo reserve reserve" in ended.error["message"]
    statuses = {t["name"]: t["status"] for t in embedded.document(run_id)["tasks"]}
    assert statuses["charge"] == "compensated"
    assert statuses["reserve"] == "succeeded"
    assert statuses["reserve~compensate"] == "failed"


@pytest.mark.parametrize(
    ("control", "message"),
    [
        (Control.PAUSE, "is succeeded; only running runs can be paused"),
        (Control.RESUME, "is succeeded; only paused (or pausing) runs can be resumed"),
        (Control.CANCEL, "is succeeded; only runs that have not ended can be canceled"),
        (Control.RETRY, "is succeeded; only failed, timed out or canceled runs can be retried"),
    ],
)
def test_a_control_that_does_not_apply_is_refused_and_changes_nothing(
    embedded: Embedded, tmp_path: Path, control: Control, message: str
) -> None:
    runner = embedded.runner()
    steps = embedded.catalog.workflow("lifecycle.steps")
    run_id = runner.start(steps, {"log": str(tmp_path / "log")})
    assert runner.follow(run_id).state.status is RunStatus.SUCCEEDED
    with runner.store.unit_of_work() as uow:
        before = (uow.run_version(run_id), len(uow.list_events(run_id)))

    with pytest.raises(ControlRefused, match=re.escape(f"run {run_id} {message}")) as refused:
        apply_control(runner.runs, run_id, control)

    assert (refused.value.control, refused.value.status) == (control, RunStatus.SUCCEEDED)
    with runner.store.unit_of_work() as uow:
        assert (uow.run_version(run_id), len(uow.list_events(run_id))) == before


def test_an_unknown_run_is_not_found(embedded: Embedded) -> None:
    from treadle.common.errors import NotFound

    with pytest.raises(NotFound, match="run r-missing not found"):
        apply_control(embedded.runner().runs, "r-missing", Control.PAUSE)
