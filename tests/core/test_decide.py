"""``decide`` event by event: the commands it emits, and the events it must ignore.

The scenario tests check whole runs; these look at single decisions where the exact
commands matter (attempt ids, timers, inquiries, child runs) and at determinism: stale or
duplicate events change nothing and return the very same state object.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta

import pytest

from treadle.common.graph import Graph, compile_graph
from treadle.common.limits import Limits
from treadle.common.loader import load_workflow_text
from treadle.common.spec import RunnerType
from treadle.common.statuses import TASK_TRANSITIONS, RunStatus, TaskStatus, can_move
from treadle.scheduler.core.commands import (
    CancelTask,
    CloseInquiry,
    Command,
    CompleteRun,
    DispatchTask,
    EmitLifecycleEvent,
    OpenInquiry,
    ReportEndToParent,
    ScheduleTimer,
    StartChildRun,
)
from treadle.scheduler.core.decide import decide
from treadle.scheduler.core.events import (
    CancelRequested,
    Event,
    InquiryAnswered,
    RunRequested,
    TaskFailed,
    TaskSucceeded,
    TimerFired,
)
from treadle.scheduler.core.state import RunContext, RunState, TimerKind, initial_state
from treadle.scheduler.rehearsal import rehearse, scripted

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUN = "r-1"


def graph_of(text: str, kinds: dict[str, RunnerType] | None = None) -> Graph:
    spec = load_workflow_text(textwrap.dedent(text), "wf.yaml")
    return compile_graph(spec, (kinds or {}).get)


class Driver:
    """Feeds events one at a time and keeps the latest state and commands."""

    def __init__(self, graph: Graph, **context: object) -> None:
        self.graph = graph
        self.state: RunState = initial_state(RUN, graph.ref, T0)
        self.now = T0
        self.commands: tuple[Command, ...] = ()
        self.send(RunRequested(context=RunContext(**context)))  # type: ignore[arg-type]

    def send(self, event: Event, *, after: float = 0) -> tuple[Command, ...]:
        self.now += timedelta(seconds=after)
        decision = decide(self.state, event, self.graph, self.now)
        self.state, self.commands = decision.state, decision.commands
        return self.commands

    def of(self, kind: type[Command]) -> list[Command]:
        return [c for c in self.commands if isinstance(c, kind)]

    def dispatched(self) -> list[str]:
        return [c.dispatch.attempt_id for c in self.commands if isinstance(c, DispatchTask)]


ONE = """\
ref: test.one
tasks:
  - name: work
    action: core.noop
    input: {n: "{{ parameters.n }}"}
    retry: {count: 2, delay: 10}
    timeout: 30
"""


def test_a_dispatch_carries_the_rendered_input_and_a_timeout_timer() -> None:
    driver = Driver(graph_of(ONE), parameters={"n": 4})
    (dispatch,) = driver.of(DispatchTask)
    assert isinstance(dispatch, DispatchTask)
    assert dispatch.dispatch.attempt_id == "r-1/1/0/1"
    assert dispatch.dispatch.input == {"n": 4}
    assert dispatch.dispatch.timeout_seconds == 30
    assert dispatch.dispatch.item_index is None
    (timer,) = driver.of(ScheduleTimer)
    assert isinstance(timer, ScheduleTimer)
    assert timer.timer_kind is TimerKind.TIMEOUT
    assert timer.fire_at == T0 + timedelta(seconds=30)


def test_stale_and_duplicate_events_return_the_very_same_state() -> None:
    driver = Driver(graph_of(ONE), parameters={"n": 1})
    driver.send(TaskFailed(attempt_id="r-1/1/0/1", error={"type": "X", "message": "m"}))
    backoff = driver.state
    execution = backoff.executions[1]
    assert execution.status is TaskStatus.RUNNING  # running during the back-off
    ignored: list[Event] = [
        TaskSucceeded(attempt_id="r-1/1/0/1", result=1),  # its attempt already failed
        TaskSucceeded(attempt_id="r-1/1/0/2", result=1),  # not started yet (back-off)
        TaskSucceeded(attempt_id="r-2/1/0/1", result=1),  # another run
        TaskSucceeded(attempt_id="r-1/9/0/1", result=1),  # no such execution
        TaskSucceeded(attempt_id="r-1/1/5/1", result=1),  # no such unit
        TaskSucceeded(attempt_id="garbage", result=1),
        TimerFired(timer_id="r-1/1/0/1/timeout"),  # cancelled when the attempt failed
        TimerFired(timer_id="nonsense"),
        InquiryAnswered(inquiry_id="iq_nothing", response=1),
    ]
    for event in ignored:
        decision = decide(backoff, event, driver.graph, T0 + timedelta(seconds=1))
        assert decision.state is backoff, event
        assert decision.commands == (), event
    (retry,) = backoff.timers
    driver.send(TimerFired(timer_id=retry), after=10)
    assert driver.dispatched() == ["r-1/1/0/2"]
    driver.send(TaskSucceeded(attempt_id="r-1/1/0/2", result="ok"), after=1)
    assert driver.state.status is RunStatus.SUCCEEDED
    done = driver.state
    for event in (TaskSucceeded(attempt_id="r-1/1/0/2", result="again"), CancelRequested()):
        decision = decide(done, event, driver.graph, driver.now)
        assert decision.state is done
        assert decision.commands == ()


def test_a_second_run_request_changes_nothing() -> None:
    driver = Driver(graph_of(ONE), parameters={"n": 1})
    running = driver.state
    decision = decide(running, RunRequested(), driver.graph, T0)
    assert decision.state is running
    assert decision.commands == ()


def test_a_duplicate_result_changes_nothing() -> None:
    graph = graph_of(
        """\
        ref: test.two
        tasks:
          - {name: a, action: core.noop}
          - {name: b, action: core.noop}
        """
    )
    driver = Driver(graph)
    driver.send(TaskSucceeded(attempt_id="r-1/1/0/1", result=1))
    once = driver.state
    decision = decide(once, TaskSucceeded(attempt_id="r-1/1/0/1", result=2), graph, T0)
    assert decision.state is once
    assert decision.commands == ()
    assert once.executions[1].result == 1


def test_a_timeout_cancels_exactly_that_attempt() -> None:
    driver = Driver(graph_of(ONE), parameters={"n": 1})
    commands = driver.send(TimerFired(timer_id="r-1/1/0/1/timeout"), after=30)
    assert [c for c in commands if isinstance(c, CancelTask)] == [CancelTask("r-1/1/0/1")]
    unit = driver.state.executions[1].units[0]
    assert unit.status is TaskStatus.RUNNING  # back-off before the retry
    assert unit.error is not None
    assert unit.error["type"] == "Timeout"


def test_the_same_events_give_the_same_commands_and_uuid_follows_the_seed() -> None:
    graph = graph_of(
        """\
        ref: test.seeded
        tasks:
          - name: make
            action: core.noop
            input: {id: "{{ uuid() }}"}
            with_items: [1, 2]
        """
    )

    def ids(seed: int) -> list[object]:
        record = rehearse(graph, seed=seed)
        return [d.dispatch.input["id"] for d in record.dispatched]

    assert ids(1) == ids(1)
    assert ids(1) != ids(2)
    assert len(set(ids(1))) == 2
    first, second = rehearse(graph, seed=5), rehearse(graph, seed=5)
    assert first.commands == second.commands
    assert first.state == second.state


def test_an_inquiry_opens_waits_and_closes_when_answered() -> None:
    graph = graph_of(
        """\
        ref: test.ask
        tasks:
          - name: approve
            action: core.ask
            input:
              prompt: "Ship {{ parameters.v }}?"
              response_schema: {type: object}
              assigned_to: [ops]
              timeout: 600
        """
    )
    driver = Driver(graph, parameters={"v": "1.2"})
    (opened,) = driver.of(OpenInquiry)
    assert isinstance(opened, OpenInquiry)
    assert opened.prompt == "Ship 1.2?"
    assert opened.schema == {"type": "object"}
    assert opened.assigned_to == ["ops"]
    assert opened.deadline == T0 + timedelta(seconds=600)
    assert opened.attempt_id == "r-1/1/0/1"
    assert driver.state.executions[1].status is TaskStatus.WAITING
    assert driver.of(DispatchTask) == []
    driver.send(InquiryAnswered(inquiry_id=opened.inquiry_id, response={"ok": 1}), after=5)
    assert driver.of(CloseInquiry) == [CloseInquiry(opened.inquiry_id, "answered")]  # type: ignore[arg-type]
    # the answer's own fields sit beside `response` (Attune reads result.<field>)
    assert driver.state.executions[1].result == {"ok": 1, "response": {"ok": 1}}
    assert driver.state.status is RunStatus.SUCCEEDED
    again = decide(driver.state, InquiryAnswered(opened.inquiry_id, 2), graph, driver.now)
    assert again.state is driver.state


def test_an_inquiry_task_goes_from_scheduled_straight_to_waiting() -> None:
    """A single inquiry's lifecycle shows no ``running`` step before it waits."""
    graph = graph_of(
        """\
        ref: test.ask_lifecycle
        tasks:
          - {name: approve, action: core.inquiry, input: {prompt: ok?}}
        """
    )
    record = rehearse(graph, answers={"approve": True})
    moves = [
        c.status for batch in record.commands for c in batch if isinstance(c, EmitLifecycleEvent)
    ]
    assert moves == [TaskStatus.WAITING, TaskStatus.SUCCEEDED]


def test_a_skipped_task_is_an_allowed_move_from_scheduled() -> None:
    assert can_move(TASK_TRANSITIONS, TaskStatus.SCHEDULED, TaskStatus.SKIPPED)


def test_a_child_run_gets_the_rendered_input_and_reports_on_the_attempt() -> None:
    graph = graph_of(
        """\
        ref: test.parent
        tasks:
          - name: call
            action: sub.flow
            input: {n: "{{ parameters.n + 1 }}"}
        output_map:
          got: "{{ task.call.result }}"
        """,
        {"sub.flow": RunnerType.WORKFLOW},
    )
    driver = Driver(graph, parameters={"n": 1}, depth=3)
    assert driver.of(StartChildRun) == [
        StartChildRun("r-1.1.0.1", "sub.flow", {"n": 2}, "r-1/1/0/1", 4)
    ]
    assert driver.of(DispatchTask) == []
    driver.send(TaskSucceeded(attempt_id="r-1/1/0/1", result={"x": 1}))
    (complete,) = driver.of(CompleteRun)
    assert isinstance(complete, CompleteRun)
    assert complete.status is RunStatus.SUCCEEDED
    assert complete.output == {"got": {"x": 1}}
    assert driver.of(ReportEndToParent) == []  # a run without a parent tells nobody


def test_a_child_run_reports_completion_to_its_parent_attempt() -> None:
    graph = graph_of(ONE)
    driver = Driver(graph, parameters={"n": 1}, parent_attempt_id="p/1/0/1", depth=1)
    driver.send(TaskSucceeded(attempt_id="r-1/1/0/1", result=1))
    (report,) = driver.of(ReportEndToParent)
    assert isinstance(report, ReportEndToParent)
    assert report.parent_attempt_id == "p/1/0/1"
    assert report.status is RunStatus.SUCCEEDED


def test_a_delayed_task_is_scheduled_until_its_timer_fires() -> None:
    graph = graph_of(
        """\
        ref: test.delay
        tasks:
          - {name: later, action: core.noop, delay: 5m}
        """
    )
    driver = Driver(graph)
    (timer,) = driver.of(ScheduleTimer)
    assert isinstance(timer, ScheduleTimer)
    assert timer.timer_kind is TimerKind.DELAY
    assert timer.fire_at == T0 + timedelta(minutes=5)
    assert driver.state.executions[1].status is TaskStatus.SCHEDULED
    assert driver.of(DispatchTask) == []
    driver.send(TimerFired(timer_id=timer.timer_id), after=300)
    assert driver.dispatched() == ["r-1/1/0/1"]
    started = driver.state.executions[1]
    assert started.status is TaskStatus.RUNNING


def test_with_items_dispatches_one_attempt_per_item_up_to_the_concurrency() -> None:
    graph = graph_of(
        """\
        ref: test.items
        tasks:
          - name: each
            action: core.noop
            with_items: [a, b, c]
            concurrency: 2
            input: {x: "{{ item }}", i: "{{ index }}"}
        """
    )
    driver = Driver(graph)
    assert driver.dispatched() == ["r-1/1/0/1", "r-1/1/1/1"]
    driver.send(TaskSucceeded(attempt_id="r-1/1/1/1", result="B"))
    (third,) = driver.of(DispatchTask)
    assert isinstance(third, DispatchTask)
    assert (third.dispatch.attempt_id, third.dispatch.item_index) == ("r-1/1/2/1", 2)
    assert third.dispatch.input == {"x": "c", "i": 2}


@pytest.mark.parametrize("limit", [1, 3])
def test_the_execution_limit_counts_every_execution(limit: int) -> None:
    graph = graph_of(
        """\
        ref: test.chain
        tasks:
          - {name: a, action: core.noop, next: [{do: [b]}]}
          - {name: b, action: core.noop, next: [{do: [c]}]}
          - {name: c, action: core.noop}
        """
    )
    record = rehearse(graph, script=scripted({}), limits=Limits(max_task_executions=limit))
    expected = RunStatus.SUCCEEDED if limit == 3 else RunStatus.FAILED
    assert record.status is expected
    assert len(record.sequence) == limit


def test_a_child_run_may_nest_exactly_to_the_depth_limit() -> None:
    graph = graph_of(
        """\
        ref: test.deep
        tasks:
          - {name: call, action: sub.flow}
        """,
        {"sub.flow": RunnerType.WORKFLOW},
    )
    allowed = Driver(graph, depth=9)
    assert [c.depth for c in allowed.of(StartChildRun)] == [10]  # type: ignore[attr-defined]
    refused = Driver(graph, depth=2, limits=Limits(max_depth=2))
    assert refused.of(StartChildRun) == []
    assert refused.state.status is RunStatus.FAILED
    assert refused.state.error is not None
    assert "the limit is 2" in refused.state.error["message"]


def test_a_success_that_crosses_the_context_limit_is_still_recorded() -> None:
    graph = graph_of(
        """
        ref: test.context_record
        tasks:
          - {name: big, action: core.noop}
        """
    )
    result = rehearse(
        graph,
        script=scripted({"big": {"result": "y" * 2000}}),
        limits=Limits(max_context_bytes=1024),
    )
    assert result.status is RunStatus.FAILED
    assert result.state.error is not None
    assert result.state.error["type"] == "LimitExceeded"
    unit = result.state.executions[1].units[0]
    assert unit.status is TaskStatus.SUCCEEDED  # the success is kept, not turned into a cancel
    assert unit.result == "y" * 2000
    cancels = [c for batch in result.commands for c in batch if isinstance(c, CancelTask)]
    assert cancels == []  # nothing to cancel: the attempt had already finished


def test_a_failure_marked_not_retryable_skips_the_retry_policy() -> None:
    driver = Driver(graph_of(ONE), parameters={"n": 1})
    error = {"type": "DeliveryLimitExceeded", "message": "the task killed its worker 5 times"}
    driver.send(TaskFailed(attempt_id="r-1/1/0/1", error=error, retryable=False))
    assert driver.state.status is RunStatus.FAILED
    assert driver.state.executions[1].status is TaskStatus.FAILED
    assert driver.state.executions[1].error == error
    assert driver.of(DispatchTask) == []  # retry: {count: 2} was not applied


CANCELLABLE = """\
ref: test.cancel
tasks:
  - {name: work, action: core.noop, timeout: 30}
  - {name: ask, action: core.ask, input: {prompt: "go?", timeout: 600}}
  - {name: later, action: core.noop, delay: 60}
  - {name: child, action: sub.flow}
"""


def test_cancel_stops_attempts_inquiries_timers_and_child_runs() -> None:
    graph = graph_of(CANCELLABLE, {"sub.flow": RunnerType.WORKFLOW})
    driver = Driver(graph)
    (child,) = driver.of(StartChildRun)
    (opened,) = driver.of(OpenInquiry)
    assert isinstance(child, StartChildRun)
    assert isinstance(opened, OpenInquiry)
    driver.send(CancelRequested(reason="operator said so"), after=1)
    kinds = {type(c).__name__ for c in driver.commands}
    assert {"CancelTask", "CloseInquiry", "CancelChildRun", "CancelTimer", "CompleteRun"} <= kinds
    assert driver.of(CancelTask) == [CancelTask("r-1/1/0/1")]
    assert driver.of(CloseInquiry) == [CloseInquiry(opened.inquiry_id, "canceled")]  # type: ignore[arg-type]
    (done,) = driver.of(CompleteRun)
    assert isinstance(done, CompleteRun)
    assert done.status is RunStatus.CANCELED
    assert done.error == {"type": "Canceled", "message": "operator said so"}
    assert driver.state.status is RunStatus.CANCELED
    assert not driver.state.timers
    assert {e.status for e in driver.state.executions.values()} == {TaskStatus.CANCELED}
    late = decide(driver.state, TaskSucceeded(attempt_id="r-1/1/0/1", result=1), graph, driver.now)
    assert late.state is driver.state
    assert late.commands == ()
