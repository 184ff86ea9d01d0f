"""An attempt lost with its worker runs again at once as a new attempt; the task's retry
policy does not count it, and a stale copy of the lost attempt changes nothing."""

from __future__ import annotations

from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core.commands import CancelTimer
from treadle.scheduler.core.events import AttemptLost, TaskFailed, TaskSucceeded

from .test_decide import Driver, graph_of

LOST = {"type": "WorkerLost", "message": "worker w1 stopped answering"}

NO_RETRY = """\
ref: test.no_retry
tasks:
  - name: work
    action: core.noop
    timeout: 30
"""

ONE_RETRY = """\
ref: test.one_retry
tasks:
  - name: work
    action: core.noop
    retry: {count: 1, delay: 0}
"""


def test_a_lost_attempt_runs_again_at_once_even_without_a_retry_policy() -> None:
    driver = Driver(graph_of(NO_RETRY))
    driver.send(AttemptLost(attempt_id="r-1/1/0/1", error=LOST), after=5)
    assert driver.dispatched() == ["r-1/1/0/2"]
    assert driver.of(CancelTimer), "the lost attempt's timeout is cancelled"
    unit = driver.state.executions[1].units[0]
    assert (unit.status, unit.attempt, unit.retry_base) == (TaskStatus.RUNNING, 2, 1)
    driver.send(TaskSucceeded(attempt_id="r-1/1/0/2", result="ok"), after=1)
    assert driver.state.status is RunStatus.SUCCEEDED


def test_losses_do_not_use_up_the_retry_policy() -> None:
    driver = Driver(graph_of(ONE_RETRY))
    driver.send(AttemptLost(attempt_id="r-1/1/0/1", error=LOST))
    driver.send(AttemptLost(attempt_id="r-1/1/0/2", error=LOST))
    driver.send(TaskFailed(attempt_id="r-1/1/0/3", error={"type": "Boom", "message": "m"}))
    assert driver.dispatched() == ["r-1/1/0/4"], "the one retry of the policy is still there"
    driver.send(TaskFailed(attempt_id="r-1/1/0/4", error={"type": "Boom", "message": "m"}))
    assert driver.state.status is RunStatus.FAILED


def test_a_late_copy_of_the_lost_attempt_changes_nothing() -> None:
    driver = Driver(graph_of(NO_RETRY))
    driver.send(AttemptLost(attempt_id="r-1/1/0/1", error=LOST))
    before = driver.state
    for late in (
        TaskSucceeded(attempt_id="r-1/1/0/1", result="late"),
        AttemptLost(attempt_id="r-1/1/0/1", error=LOST),
    ):
        assert driver.send(late) == ()
        assert driver.state is before
