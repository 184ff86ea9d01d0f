"""Retry from a failed task, in the pure core: what the scenarios cannot show.

The scenarios (``tests/scenarios/retry_task_*.yaml``) pin down the flow; here: a retry
naming a task that does not fit changes nothing, the run's state between two retries,
a cancelled run ending canceled again, fresh retry policies and unchanged idempotency
keys, and which execution a retry naming a task would reopen.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from treadle.common.graph import Graph, compile_graph
from treadle.common.loader import load_workflow_text
from treadle.common.messages import TaskDispatch
from treadle.common.spec import RunnerType
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core.commands import Command, DispatchTask
from treadle.scheduler.core.decide import decide
from treadle.scheduler.core.events import (
    CancelRequested,
    Event,
    RetryRequested,
    RunRequested,
    TaskFailed,
    TaskSucceeded,
)
from treadle.scheduler.core.state import RunContext, RunState, initial_state
from treadle.scheduler.core.task_retry import retry_target

T0 = datetime(2026, 1, 1, tzinfo=UTC)

BRANCHES = """\
ref: t.branches
tasks:
  - name: start
    action: p.noop
    next: [{do: [left, right]}]
  - name: left
    action: p.left
    retry: {count: 1}
    next: [{when: "{{ succeeded() }}", do: [left_after]}]
  - {name: left_after, action: p.noop}
  - name: right
    action: p.right
    next: [{when: "{{ succeeded() }}", do: [right_after]}]
  - {name: right_after, action: p.noop}
"""

GUARDED = """\
ref: t.guarded
tasks:
  - name: checks
    type: parallel
    tasks:
      - name: probe
        action: p.probe
        next: [{when: "{{ failed() }}", do: [fallback]}]
      - {name: fallback, action: p.noop}
    next: [{when: "{{ succeeded() }}", do: [after]}]
  - {name: after, action: p.after}
"""


def graph_of(text: str, *, side_effects: bool = False) -> Graph:
    spec = load_workflow_text(textwrap.dedent(text), "wf.yaml")
    return compile_graph(spec, lambda ref: RunnerType.PYTHON, effects_of=lambda ref: side_effects)


class Run:
    """Feeds events to ``decide`` and keeps every dispatch made so far."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.state: RunState = initial_state("r-1", graph.ref, T0)
        self.now = T0
        self.dispatches: list[TaskDispatch] = []
        self.send(RunRequested(context=RunContext()))

    def send(self, event: Event) -> tuple[Command, ...]:
        self.now += timedelta(seconds=1)
        decision = decide(self.state, event, self.graph, self.now)
        self.state = decision.state
        self.dispatches += [c.dispatch for c in decision.commands if isinstance(c, DispatchTask)]
        return decision.commands

    def last(self, task: str) -> TaskDispatch:
        return [d for d in self.dispatches if d.task == task][-1]

    def succeed(self, task: str, result: Any = None) -> None:
        self.send(TaskSucceeded(attempt_id=self.last(task).attempt_id, result=result))

    def fail(self, task: str, message: str = "it broke") -> None:
        error = {"type": "Boom", "message": message}
        self.send(TaskFailed(attempt_id=self.last(task).attempt_id, error=error))

    def status_of(self, task: str) -> TaskStatus | None:
        execution = self.state.latest_execution(task)
        return None if execution is None else execution.status


def both_failed(*, side_effects: bool = False) -> Run:
    run = Run(graph_of(BRANCHES, side_effects=side_effects))
    run.succeed("start")
    run.fail("left", "disk full")
    run.fail("left", "disk full")  # its one automatic retry
    run.fail("right", "unreachable")
    assert run.state.status is RunStatus.FAILED
    return run


def test_between_two_retries_the_run_is_failed_naming_only_the_branch_left() -> None:
    run = both_failed()
    run.send(RetryRequested(task="left", by="cli:ada"))
    assert run.state.status is RunStatus.RUNNING
    assert [d.task for d in run.dispatches[-1:]] == ["left"]
    run.succeed("left")
    run.succeed("left_after")
    assert run.state.status is RunStatus.FAILED
    assert run.state.error == {
        "type": "TaskFailed",
        "message": "task 'right' failed: unreachable",
        "task": "right",
    }
    assert run.status_of("right_after") is None
    assert run.state.held_failures is None  # an ended run holds nothing aside
    run.send(RetryRequested(task="right"))
    run.succeed("right")
    run.succeed("right_after")
    assert run.state.status is RunStatus.SUCCEEDED
    assert run.state.error is None


@pytest.mark.parametrize(
    ("task", "why"),
    [
        ("start", "it succeeded"),
        ("left_after", "it never ran"),
        ("nowhere", "the workflow has no such task"),
    ],
)
def test_a_retry_naming_a_task_that_did_not_fail_changes_nothing(task: str, why: str) -> None:
    run = both_failed()
    before = run.state
    decision = decide(before, RetryRequested(task=task), run.graph, run.now)
    assert decision.state is before, why
    assert decision.commands == ()


def test_a_retry_naming_a_task_of_a_run_still_going_changes_nothing() -> None:
    run = Run(graph_of(BRANCHES))
    run.succeed("start")
    run.fail("right")  # the run is failing, but left still runs
    assert run.state.status is RunStatus.RUNNING
    before = run.state
    decision = decide(before, RetryRequested(task="right"), run.graph, run.now)
    assert decision.state is before
    assert decision.commands == ()


def test_the_retried_task_gets_its_whole_retry_policy_and_keeps_its_key() -> None:
    run = both_failed(side_effects=True)
    failed_twice = [d for d in run.dispatches if d.task == "left"]
    run.send(RetryRequested(task="left"))
    manual = run.last("left")
    run.fail("left")  # the policy's one automatic retry follows
    automatic = run.last("left")
    assert [d.attempt for d in (*failed_twice, manual, automatic)] == [1, 2, 3, 4]
    keys = {d.idempotency_key for d in (*failed_twice, manual, automatic)}
    assert len(keys) == 1
    assert None not in keys


def test_a_cancelled_run_retried_from_one_task_ends_canceled_naming_the_other() -> None:
    run = Run(graph_of(BRANCHES))
    run.succeed("start")
    run.send(CancelRequested(reason="no longer needed"))
    assert run.state.status is RunStatus.CANCELED
    run.send(RetryRequested(task="left"))
    assert run.status_of("right") is TaskStatus.CANCELED
    run.succeed("left")
    run.succeed("left_after")
    assert run.state.status is RunStatus.CANCELED
    assert run.state.error == {
        "type": "Canceled",
        "message": "task 'right' canceled",
        "task": "right",
    }
    run.send(RetryRequested(task="right"))
    run.succeed("right")
    run.succeed("right_after")
    assert run.state.status is RunStatus.SUCCEEDED


def test_a_whole_retry_after_a_retry_from_one_task_reruns_everything_left() -> None:
    run = both_failed()
    run.send(RetryRequested(task="left"))
    run.succeed("left")
    run.succeed("left_after")
    run.send(RetryRequested())
    assert run.last("right").attempt == 2
    assert run.last("left").attempt == 3  # not run again
    run.succeed("right")
    run.succeed("right_after")
    assert run.state.status is RunStatus.SUCCEEDED


def test_a_nested_failure_handled_in_a_block_that_succeeded_is_not_retried_alone() -> None:
    run = Run(graph_of(GUARDED))
    run.fail("probe")
    run.succeed("fallback")
    run.fail("after")
    assert run.state.status is RunStatus.FAILED
    assert run.status_of("probe") is TaskStatus.FAILED  # handled: fallback ran
    assert run.status_of("checks") is TaskStatus.SUCCEEDED
    assert retry_target(run.state, "probe") is None
    assert retry_target(run.state, "checks") is None
    target = retry_target(run.state, "after")
    assert target is not None
    assert target.task == "after"
    before = run.state
    assert decide(before, RetryRequested(task="probe"), run.graph, run.now).state is before


HANDLED = """\
ref: t.handled
tasks:
  - name: probe
    action: p.probe
    next:
      - {when: "{{ failed() }}", do: [fallback]}
      - {when: "{{ succeeded() }}", do: [use]}
  - {name: fallback, action: p.fallback}
  - {name: use, action: p.use}
"""


def test_a_failure_a_transition_handled_runs_again_and_its_transitions_decide_anew() -> None:
    run = Run(graph_of(HANDLED))
    run.fail("probe")
    run.fail("fallback")  # unhandled: the run fails for it
    assert run.state.status is RunStatus.FAILED
    run.send(RetryRequested(task="probe"))
    run.succeed("probe", "found")
    assert run.status_of("use") is TaskStatus.RUNNING  # its success transition fired
    run.succeed("use")
    assert run.state.status is RunStatus.FAILED  # fallback's failure still stands
    assert run.state.error is not None
    assert run.state.error["task"] == "fallback"


def test_a_retried_task_that_fails_again_ends_the_run_naming_both_failures() -> None:
    run = both_failed()
    run.send(RetryRequested(task="right"))
    run.fail("right", "still unreachable")
    assert run.state.status is RunStatus.FAILED
    assert run.state.error is not None
    assert run.state.error["message"] == (
        "task 'left' failed: disk full; task 'right' failed: still unreachable"
    )
    assert run.state.held_failures is None
    run.send(RetryRequested())  # a whole retry takes up both
    assert run.last("left").attempt == 3
    assert run.last("right").attempt == 3
