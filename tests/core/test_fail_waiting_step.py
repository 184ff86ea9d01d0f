"""An operator fails a step that waits (``StepFailRequested``): what it closes, how it ends.

A waiting inquiry is closed as canceled and an event wait dropped; the step fails with the
operator's reason, without a retry, and its transitions decide what follows. A step that
does not wait (running work, a with_items inquiry, an unknown task) is left as it is.
"""

from __future__ import annotations

from treadle.common.statuses import InquiryStatus, RunStatus, TaskStatus
from treadle.scheduler.core.commands import (
    CancelTimer,
    CloseInquiry,
    CompleteRun,
    OpenInquiry,
    StopAwaitingEvent,
)
from treadle.scheduler.core.decide import decide
from treadle.scheduler.core.events import InquiryAnswered, StepFailRequested, TaskSucceeded
from treadle.scheduler.core.interventions import waiting_step

from .test_decide import Driver, graph_of

ASK = """\
ref: test.ask
tasks:
  - name: approve
    action: core.ask
    retry: {count: 3}
    input:
      prompt: Ship it?
      schema: {type: object, properties: {ok: {type: boolean}}, required: [ok]}
      timeout: 600
    next:
      - when: "{{ succeeded() }}"
        do: [ship]
      - when: "{{ failed() }}"
        do: [explain]
  - name: ship
    action: core.noop
  - name: explain
    action: core.echo
    input: {message: "{{ task.approve.error.message }}"}
"""

UNHANDLED = """\
ref: test.unhandled
tasks:
  - name: await_reply
    action: core.wait_for_event
    input: {type: mail.received}
"""

GUARDED = """\
ref: test.guarded
tasks:
  - name: deploy
    action: core.noop
    wait_for:
      inquiry: {prompt: Deploy?}
      timeout: 60
"""

GUARDED_EVENT = """\
ref: test.guarded_event
tasks:
  - name: deploy
    action: core.noop
    wait_for:
      event: {type: "build.done"}
"""

ITEMS = """\
ref: test.items
tasks:
  - name: ask_each
    action: core.ask
    with_items: [a, b]
    input: {prompt: "{{ item }}?"}
"""


def test_failing_a_waiting_inquiry_closes_it_and_takes_the_failed_transition() -> None:
    driver = Driver(graph_of(ASK))
    [opened] = driver.of(OpenInquiry)
    assert isinstance(opened, OpenInquiry)
    assert waiting_step(driver.state, "approve") is not None

    driver.send(StepFailRequested(task="approve", reason="the release was called off"))

    assert CloseInquiry(opened.inquiry_id, InquiryStatus.CANCELED) in driver.commands
    assert len(driver.of(CancelTimer)) == 1  # its deadline
    approve = driver.state.executions[1]
    assert approve.status is TaskStatus.FAILED  # no retry, whatever the retry policy says
    assert approve.error == {"type": "FailedByOperator", "message": "the release was called off"}
    assert driver.state.executions[1].units[0].attempt == 1
    assert [e.task for e in driver.state.executions.values()] == ["approve", "explain"]
    assert driver.dispatched() == ["r-1/2/0/1"]
    assert waiting_step(driver.state, "approve") is None

    # the answer comes too late: the inquiry was closed, the task has ended
    before = driver.state
    driver.send(InquiryAnswered(inquiry_id=opened.inquiry_id, response={"ok": True}))
    assert driver.state is before


def test_an_unhandled_failure_fails_the_run_and_drops_the_event_wait() -> None:
    driver = Driver(graph_of(UNHANDLED))
    driver.send(StepFailRequested(task="await_reply"))

    assert StopAwaitingEvent("r-1/1/0/1") in driver.commands
    assert driver.state.status is RunStatus.FAILED
    error = driver.state.executions[1].error
    assert error is not None
    assert error["type"] == "FailedByOperator"
    assert error["message"] == "task 'await_reply' was failed by an operator"
    assert any(isinstance(c, CompleteRun) for c in driver.commands)


def test_a_wait_for_guard_is_failed_before_its_work_begins() -> None:
    driver = Driver(graph_of(GUARDED))
    [opened] = driver.of(OpenInquiry)
    assert isinstance(opened, OpenInquiry)

    driver.send(StepFailRequested(task="deploy", reason="no"))

    assert CloseInquiry(opened.inquiry_id, InquiryStatus.CANCELED) in driver.commands
    assert len(driver.of(CancelTimer)) == 1
    assert driver.dispatched() == []  # its action never ran
    assert driver.state.executions[1].status is TaskStatus.FAILED
    assert driver.state.status is RunStatus.FAILED


def test_a_guard_waiting_for_an_event_stops_waiting() -> None:
    driver = Driver(graph_of(GUARDED_EVENT))
    driver.send(StepFailRequested(task="deploy", reason="no"))
    assert StopAwaitingEvent("r-1/1/0/0") in driver.commands
    assert driver.state.executions[1].status is TaskStatus.FAILED


def test_a_step_that_does_not_wait_is_left_as_it_is() -> None:
    driver = Driver(graph_of(ASK))
    driver.send(InquiryAnswered(inquiry_id=driver.state.executions[1].inquiry_id or ""))
    assert driver.state.executions[2].task == "ship"  # running on a worker now
    for task in ("ship", "approve", "no_such_task"):
        assert waiting_step(driver.state, task) is None
        before = driver.state
        decision = decide(before, StepFailRequested(task=task), driver.graph, driver.now)
        assert decision.state is before
        assert decision.commands == ()

    driver.send(TaskSucceeded(attempt_id="r-1/2/0/1"))
    assert driver.state.status is RunStatus.SUCCEEDED
    assert waiting_step(driver.state, "approve") is None


def test_a_with_items_inquiry_is_not_failed_as_a_whole() -> None:
    driver = Driver(graph_of(ITEMS))
    assert len(driver.of(OpenInquiry)) == 2
    assert waiting_step(driver.state, "ask_each") is None
    before = driver.state
    driver.send(StepFailRequested(task="ask_each", reason="no"))
    assert driver.state is before
