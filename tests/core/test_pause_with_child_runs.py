"""Pausing a run whose running work is a child run: the child reports, the parent settles.

A parent pausing with its child cannot see the child's tasks; it is ``paused`` once every
attempt of its own has finished and every running child run has told it it is paused.
"""

from __future__ import annotations

from treadle.common.spec import RunnerType
from treadle.common.statuses import RunStatus
from treadle.scheduler.core.commands import (
    PauseChildRun,
    ReportPausedToParent,
    ResumeChildRun,
)
from treadle.scheduler.core.events import (
    ChildRunPaused,
    PauseRequested,
    ResumeRequested,
    TaskSucceeded,
)

from .test_decide import Driver, graph_of

PARENT = """\
ref: test.parent
tasks:
  - name: call
    action: sub.flow
    next: [{do: [after]}]
  - name: side
    action: core.noop
  - name: after
    action: core.noop
"""
CHILD = "r-1.1.0.1"


def parent() -> Driver:
    return Driver(graph_of(PARENT, {"sub.flow": RunnerType.WORKFLOW}))


def test_the_parent_is_paused_once_its_own_attempts_ended_and_the_child_reported() -> None:
    driver = parent()
    driver.send(PauseRequested())
    assert driver.state.status is RunStatus.PAUSING
    assert driver.of(PauseChildRun) == [PauseChildRun(CHILD)]

    driver.send(ChildRunPaused(child_run_id=CHILD))
    assert driver.state.status is RunStatus.PAUSING  # `side` is still running
    assert driver.state.paused_children == (CHILD,)
    driver.send(TaskSucceeded(attempt_id="r-1/2/0/1", result=None))
    assert driver.state.status is RunStatus.PAUSED
    assert driver.dispatched() == []

    driver.send(ResumeRequested())
    assert driver.state.status is RunStatus.RUNNING
    assert driver.state.paused_children == ()
    assert driver.of(ResumeChildRun) == [ResumeChildRun(CHILD)]
    driver.send(TaskSucceeded(attempt_id="r-1/1/0/1", result={"done": True}))
    assert driver.dispatched() == ["r-1/3/0/1"]  # `after`, once the child run ended


def test_a_child_paused_on_its_own_does_not_count_for_a_parent_that_is_not_pausing() -> None:
    driver = parent()
    before = driver.state
    driver.send(ChildRunPaused(child_run_id=CHILD))
    assert driver.state is before
    driver.send(PauseRequested())
    driver.send(TaskSucceeded(attempt_id="r-1/2/0/1", result=None))
    assert driver.state.status is RunStatus.PAUSING  # the child has not reported since


def test_a_report_from_a_run_that_is_not_a_running_child_changes_nothing() -> None:
    driver = parent()
    driver.send(PauseRequested())
    before = driver.state
    driver.send(ChildRunPaused(child_run_id="r-other"))
    assert driver.state is before


def test_a_child_run_reports_to_its_parent_when_it_is_paused() -> None:
    child = Driver(
        graph_of(
            "ref: test.child\ntasks:\n"
            "  - {name: work, action: core.noop, next: [{do: [more]}]}\n"
            "  - {name: more, action: core.noop}\n"
        ),
        parent_run_id="r-1",
        parent_attempt_id="r-1/1/0/1",
    )
    child.send(PauseRequested())
    assert child.of(ReportPausedToParent) == []  # `work` is still running
    child.send(TaskSucceeded(attempt_id="r-1/1/0/1", result=None))
    assert child.state.status is RunStatus.PAUSED
    assert child.of(ReportPausedToParent) == [ReportPausedToParent("r-1")]
