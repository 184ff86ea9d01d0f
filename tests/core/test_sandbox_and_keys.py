"""The core at dispatch: the sandbox check of rendered inputs, and idempotency keys.

A run started under a sandbox policy (``RunContext.sandbox``) has each attempt's rendered
input checked before it is dispatched: data from a result that would inject fails the
attempt for good, with the report as the error. An action that declares side effects gets
an idempotency key on each dispatch: the same across automatic retries and a manual retry
of the run, another for another item or another pass of a loop.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

from treadle.common.graph import Graph, compile_graph
from treadle.common.loader import load_workflow_text
from treadle.common.messages import TaskDispatch
from treadle.common.sandbox_policy import SandboxPolicy
from treadle.common.spec import RunnerType
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core.commands import Command, DispatchTask
from treadle.scheduler.core.decide import decide
from treadle.scheduler.core.events import (
    Event,
    RetryRequested,
    RunRequested,
    TaskFailed,
    TaskSucceeded,
)
from treadle.scheduler.core.state import RunContext, RunState, initial_state

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def graph_of(text: str, *, side_effects: bool = False) -> Graph:
    spec = load_workflow_text(textwrap.dedent(text), "wf.yaml")
    return compile_graph(spec, lambda ref: RunnerType.PYTHON, effects_of=lambda ref: side_effects)


class Run:
    """Feeds events to ``decide`` and keeps every dispatch made so far."""

    def __init__(self, graph: Graph, run_id: str = "r-1", **context: Any) -> None:
        self.graph = graph
        self.state: RunState = initial_state(run_id, graph.ref, T0)
        self.now = T0
        self.dispatches: list[TaskDispatch] = []
        self.send(RunRequested(context=RunContext(**context)))

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

    def fail(self, task: str) -> None:
        error = {"type": "Boom", "message": "it broke"}
        self.send(TaskFailed(attempt_id=self.last(task).attempt_id, error=error))


PASS_ON = """\
ref: t.pass_on
tasks:
  - name: fetch
    action: p.fetch
    next: [{do: [read]}]
  - name: read
    action: p.read
    retry: {count: 3}
    input:
      path: "files/{{ task.fetch.result.name }}"
"""


def test_data_that_would_inject_fails_the_attempt_with_the_report() -> None:
    run = Run(graph_of(PASS_ON), sandbox=SandboxPolicy())
    run.succeed("fetch", {"name": "../../etc/passwd"})
    assert [d.task for d in run.dispatches] == ["fetch"]  # read was never dispatched
    read = run.state.latest_execution("read")
    assert read is not None
    assert read.status is TaskStatus.FAILED
    assert read.units[0].attempt == 1  # refused for good: the retry policy does not apply
    assert run.state.status is RunStatus.FAILED
    error = dict(read.error or {})
    assert error["type"] == "SandboxViolation"
    assert error["message"] == (
        "refused by the sandbox policy: task 'read': rendered input 'path' looks like path "
        "traversal ('../')"
    )
    violation = error["details"]["sandbox"]["violations"][0]
    assert violation["field"] == "input.path"
    assert violation["pattern_class"] == "path_traversal"
    assert "passwd" not in str(error)  # the value itself is never shown


def test_clean_data_and_runs_without_a_policy_are_dispatched() -> None:
    clean = Run(graph_of(PASS_ON), sandbox=SandboxPolicy())
    clean.succeed("fetch", {"name": "notes.txt"})
    assert clean.last("read").input == {"path": "files/notes.txt"}
    unchecked = Run(graph_of(PASS_ON))
    unchecked.succeed("fetch", {"name": "../../etc/passwd"})
    assert unchecked.last("read").input == {"path": "files/../../etc/passwd"}


RETRIED = """\
ref: t.charge
tasks:
  - name: charge
    action: p.charge
    retry: {count: 2}
"""


def test_the_key_is_the_same_across_automatic_retries_and_a_manual_retry() -> None:
    run = Run(graph_of(RETRIED, side_effects=True))
    first = run.last("charge")
    run.fail("charge")
    second = run.last("charge")
    run.fail("charge")
    third = run.last("charge")
    run.fail("charge")
    assert run.state.status is RunStatus.FAILED
    run.send(RetryRequested(reason="the card is fixed"))  # treadle runs retry
    manual = run.last("charge")
    attempts = [d.attempt for d in (first, second, third, manual)]
    assert attempts == [1, 2, 3, 4]
    assert len({d.attempt_id for d in (first, second, third, manual)}) == 4
    keys = {d.idempotency_key for d in (first, second, third, manual)}
    assert len(keys) == 1
    assert None not in keys


def test_actions_without_side_effects_get_no_key() -> None:
    run = Run(graph_of(RETRIED, side_effects=False))
    assert run.last("charge").idempotency_key is None


ITEMS_AND_LOOP = """\
ref: t.loop
vars: {again_done: false}
tasks:
  - name: begin
    action: p.begin
    next: [{do: [pay]}]
  - name: pay
    action: p.pay
    with_items: "{{ [1, 2] }}"
    next:
      - when: "{{ succeeded() and not workflow.again_done }}"
        publish: [{again_done: true}]
        do: [pay]
"""


def test_items_and_passes_of_a_loop_get_keys_of_their_own() -> None:
    graph = graph_of(ITEMS_AND_LOOP, side_effects=True)
    run = Run(graph)
    run.succeed("begin")
    first_pass = [d for d in run.dispatches if d.task == "pay"]
    for dispatch in first_pass:
        run.send(TaskSucceeded(attempt_id=dispatch.attempt_id, result=dispatch.item_index))
    second_pass = [d for d in run.dispatches if d.task == "pay"][2:]
    assert [d.item_index for d in first_pass] == [0, 1]
    assert [d.item_index for d in second_pass] == [0, 1]
    assert second_pass[0].execution != first_pass[0].execution
    keys = [d.idempotency_key for d in (*first_pass, *second_pass)]
    assert len(set(keys)) == 4


def test_the_key_depends_on_the_run() -> None:
    graph = graph_of(RETRIED, side_effects=True)
    one, other = Run(graph, run_id="r-1"), Run(graph, run_id="r-2")
    assert one.last("charge").idempotency_key != other.last("charge").idempotency_key
    assert Run(graph, run_id="r-1").last("charge") == one.last("charge")  # a pure function
