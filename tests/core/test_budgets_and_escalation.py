"""What the scenarios cannot show about budgets and escalation: operators acting on an
escalated task, the question's shape, and when a resume would stop again at once.
"""

from __future__ import annotations

from datetime import timedelta

from treadle.common.budget import Budget
from treadle.common.statuses import InquiryPurpose, InquiryStatus, RunStatus, TaskStatus
from treadle.scheduler.core.budgets import still_stopped
from treadle.scheduler.core.commands import CloseInquiry, DispatchTask, OpenInquiry
from treadle.scheduler.core.escalation import ANSWER_SCHEMA, NOTIFY_POSITION
from treadle.scheduler.core.events import (
    CancelRequested,
    StepFailRequested,
    StepSkipRequested,
    TaskFailed,
    TaskSucceeded,
)

from .test_decide import Driver, graph_of

ESCALATED = """\
ref: test.escalated
tasks:
  - name: call
    action: core.noop
    escalate:
      notify: {channel: log}
      ask: {assigned_to: ops}
"""


def escalated() -> tuple[Driver, OpenInquiry]:
    driver = Driver(graph_of(ESCALATED))
    driver.send(TaskFailed(attempt_id="r-1/1/0/1", error={"type": "E", "message": "down"}))
    [asked] = driver.of(OpenInquiry)
    assert isinstance(asked, OpenInquiry)
    return driver, asked


def test_an_escalation_asks_with_a_schema_and_notifies_on_an_attempt_of_its_own() -> None:
    driver, asked = escalated()
    assert (asked.task, asked.purpose, asked.assigned_to) == (
        "call",
        InquiryPurpose.ESCALATION,
        "ops",
    )
    assert asked.schema == ANSWER_SCHEMA
    assert asked.prompt == (
        "task 'call' failed: down (after attempt): retry it, skip it (with an output) or fail it?"
    )
    [notify] = driver.of(DispatchTask)
    assert isinstance(notify, DispatchTask)
    assert notify.dispatch.action_ref == "core.notify"
    assert notify.dispatch.attempt_id == f"r-1/1/{NOTIFY_POSITION}/1"
    assert driver.state.executions[1].status is TaskStatus.WAITING

    before = driver.state  # the notification's result is no result of the task
    driver.send(TaskSucceeded(attempt_id=notify.dispatch.attempt_id, result={"delivered": True}))
    assert driver.state is before


def test_an_operator_may_skip_or_fail_an_escalated_task_and_its_question_closes() -> None:
    driver, asked = escalated()
    driver.send(StepSkipRequested(task="call"))
    assert CloseInquiry(asked.inquiry_id, InquiryStatus.CANCELED) in driver.commands
    assert driver.state.executions[1].status is TaskStatus.SKIPPED
    assert driver.state.status is RunStatus.SUCCEEDED

    driver, asked = escalated()
    driver.send(StepFailRequested(task="call", reason="no"))
    assert CloseInquiry(asked.inquiry_id, InquiryStatus.CANCELED) in driver.commands
    assert driver.state.status is RunStatus.FAILED


def test_canceling_the_run_withdraws_the_escalation() -> None:
    driver, asked = escalated()
    driver.send(CancelRequested(reason="enough"))
    assert CloseInquiry(asked.inquiry_id, InquiryStatus.CANCELED) in driver.commands
    assert driver.state.status is RunStatus.CANCELED


FROZEN = """\
ref: test.frozen
budget: {wall_time: 1m, cost_usd: 0}
tasks:
  - name: only
    action: core.noop
"""


def test_a_resume_stops_again_unless_the_limit_reached_is_raised_enough() -> None:
    driver = Driver(graph_of(FROZEN))
    state = driver.state
    assert state.status is RunStatus.PAUSED
    assert state.budget is not None
    assert state.budget.stop is not None
    now = driver.now
    assert still_stopped(state, None, now) is not None
    assert still_stopped(state, Budget(cost_usd=0), now) is not None
    assert still_stopped(state, Budget(cost_usd=0.01), now) is None

    later = now + timedelta(minutes=5)  # wall time passed while it was stopped on cost
    assert still_stopped(state, Budget(cost_usd=1), later) is None  # the stop was on cost


def test_a_wall_time_stop_needs_more_than_the_time_already_passed() -> None:
    text = """\
ref: test.wall
budget: {wall_time: 1m}
tasks:
  - name: slow
    action: core.noop
    next: [{do: [after]}]
  - name: after
    action: core.noop
"""
    driver = Driver(graph_of(text))
    driver.send(TaskSucceeded(attempt_id="r-1/1/0/1", result=None), after=90)
    state = driver.state
    assert state.status is RunStatus.PAUSED
    refused = still_stopped(state, Budget(wall_time=timedelta(seconds=90)), driver.now)
    assert refused is not None
    assert refused.startswith("the run stopped on its wall_time budget (the run has lasted 90s")
    assert still_stopped(state, Budget(wall_time=timedelta(minutes=2)), driver.now) is None
