"""An operator skips a step that waits (``StepSkipRequested``): what it closes, how it ends.

What the step waits on is closed as for a failure (an inquiry canceled, an event wait
dropped); the step ends ``skipped`` with no result and no error, as a task whose ``when``
guard is false: a transition on ``succeeded()`` or ``failed()`` does not fire, one without
a condition does. A step that does not wait is left as it is.
"""

from __future__ import annotations

from treadle.common.statuses import InquiryStatus, RunStatus, TaskStatus
from treadle.scheduler.core.commands import CloseInquiry, OpenInquiry, StopAwaitingEvent
from treadle.scheduler.core.decide import decide
from treadle.scheduler.core.events import InquiryAnswered, StepSkipRequested, TaskSucceeded

from .test_decide import Driver, graph_of
from .test_fail_waiting_step import ASK, GUARDED, UNHANDLED

ALWAYS_ON = """\
ref: test.always_on
tasks:
  - name: approve
    action: core.ask
    input: {prompt: Ship it?}
    next:
      - when: "{{ succeeded() }}"
        do: [ship]
      - do: [report]
  - name: ship
    action: core.noop
  - name: report
    action: core.noop
"""


def test_skipping_a_waiting_inquiry_closes_it_and_fires_no_outcome_transition() -> None:
    driver = Driver(graph_of(ASK))
    [opened] = driver.of(OpenInquiry)
    assert isinstance(opened, OpenInquiry)

    driver.send(StepSkipRequested(task="approve", reason="approved by phone"))

    assert CloseInquiry(opened.inquiry_id, InquiryStatus.CANCELED) in driver.commands
    approve = driver.state.executions[1]
    assert approve.status is TaskStatus.SKIPPED
    assert (approve.result, approve.error) == (None, None)
    assert approve.units[0].status is TaskStatus.SKIPPED
    assert [e.task for e in driver.state.executions.values()] == ["approve"]  # no ship/explain
    assert driver.state.status is RunStatus.SUCCEEDED  # a skipped task is no failure

    before = driver.state  # the answer comes too late
    driver.send(InquiryAnswered(inquiry_id=opened.inquiry_id, response={"ok": True}))
    assert driver.state is before


def test_a_transition_without_a_condition_follows_a_skipped_step() -> None:
    driver = Driver(graph_of(ALWAYS_ON))
    driver.send(StepSkipRequested(task="approve"))
    assert [e.task for e in driver.state.executions.values()] == ["approve", "report"]
    assert driver.dispatched() == ["r-1/2/0/1"]


def test_an_event_wait_or_a_guard_is_closed_and_its_work_never_runs() -> None:
    waiting = Driver(graph_of(UNHANDLED))
    waiting.send(StepSkipRequested(task="await_reply"))
    assert StopAwaitingEvent("r-1/1/0/1") in waiting.commands
    assert waiting.state.status is RunStatus.SUCCEEDED

    guarded = Driver(graph_of(GUARDED))
    [opened] = guarded.of(OpenInquiry)
    assert isinstance(opened, OpenInquiry)
    guarded.send(StepSkipRequested(task="deploy"))
    assert CloseInquiry(opened.inquiry_id, InquiryStatus.CANCELED) in guarded.commands
    assert guarded.dispatched() == []
    assert guarded.state.executions[1].status is TaskStatus.SKIPPED


def test_a_step_that_does_not_wait_is_left_as_it_is() -> None:
    driver = Driver(graph_of(ALWAYS_ON))
    driver.send(StepSkipRequested(task="approve"))
    before = driver.state  # `report` runs: its work is dispatched, it does not wait
    decision = decide(before, StepSkipRequested(task="report"), driver.graph, driver.now)
    assert decision.state is before
    assert decision.commands == ()
    driver.send(TaskSucceeded(attempt_id="r-1/2/0/1", result=None))
    assert driver.state.status is RunStatus.SUCCEEDED
