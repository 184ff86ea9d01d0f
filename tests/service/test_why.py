"""Why a run does not move, case by case: states made by the real core, stored facts as the
store gives them, and the sentence a person reads.

Each case drives a workflow with ``decide`` to the point where it waits, then asks
:func:`explain` with the facts the store would hold at that moment.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

from treadle.common.graph import Graph, compile_graph
from treadle.common.loader import load_workflow_text
from treadle.common.spec import RunnerType
from treadle.common.statuses import AttemptStatus, InquiryStatus, RunStatus
from treadle.scheduler.core.commands import Command, DispatchTask
from treadle.scheduler.core.decide import decide
from treadle.scheduler.core.events import (
    Event,
    PauseRequested,
    RunRequested,
    TaskFailed,
    TaskSucceeded,
)
from treadle.scheduler.core.state import RunContext, RunState, initial_state
from treadle.scheduler.service.why import Reason, StoredFacts, WaitReason, explain
from treadle.scheduler.store import AttemptEntry, InquiryEntry
from treadle.scheduler.store.event_repo import EventWaitEntry
from treadle.scheduler.store.flow_repo import FlowWait
from treadle.scheduler.store.observation_repo import QueueObservation, WorkerObservation

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(seconds=40)


class Run:
    """A run driven by the real core, one event at a time."""

    def __init__(self, text: str, kinds: dict[str, RunnerType] | None = None, **context: Any):
        spec = load_workflow_text(textwrap.dedent(text), "wf.yaml")
        self.graph: Graph = compile_graph(spec, (kinds or {}).get)
        self.state: RunState = initial_state("r-1", self.graph.ref, T0)
        self.commands: tuple[Command, ...] = ()
        self.send(RunRequested(context=RunContext(**context)))

    def send(self, event: Event) -> None:
        decision = decide(self.state, event, self.graph, T0)
        self.state, self.commands = decision.state, decision.commands

    def dispatched(self) -> list[str]:
        return [c.dispatch.attempt_id for c in self.commands if isinstance(c, DispatchTask)]

    def why(self, **facts: Any) -> list[Reason]:
        return explain(self.state, StoredFacts(**facts))


def attempt(attempt_id: str, *, status: AttemptStatus, worker: str | None = None) -> AttemptEntry:
    return AttemptEntry(
        attempt_id=attempt_id,
        run_id="r-1",
        execution_id=1,
        position=0,
        attempt=1,
        action_ref="core.noop",
        queue="treadle.tasks",
        status=status,
        worker=worker,
        dispatched_at=T0,
        started_at=T0 + timedelta(seconds=5) if status is AttemptStatus.RUNNING else None,
        finished_at=None,
        deadline=None,
        error=None,
        reason=None,
    )


ONE = "ref: t.one\ntasks:\n  - {name: work, action: core.noop}\n"


def only(reasons: list[Reason]) -> Reason:
    [reason] = reasons
    return reason


def test_queued_says_for_how_long_and_whether_anything_consumes_the_queue() -> None:
    run = Run(ONE)
    [aid] = run.dispatched()
    queued = attempt(aid, status=AttemptStatus.QUEUED)
    plain = only(run.why(attempts={aid: queued}))
    assert (plain.task, plain.reason) == ("work", WaitReason.QUEUED)
    assert (
        plain.message
        == "queued on 'treadle.tasks' since 2026-01-01T12:00:00Z: no worker has taken it yet"
    )
    nobody = QueueObservation("treadle.tasks", 12, 0, NOW)
    assert only(run.why(attempts={aid: queued}, queues={"treadle.tasks": nobody})).message == (
        "queued on 'treadle.tasks' since 2026-01-01T12:00:00Z: no worker has taken it yet; "
        "nothing consumes 'treadle.tasks' (no worker listens to it)"
    )
    busy = QueueObservation("treadle.tasks", 300, 2, NOW)
    assert only(run.why(attempts={aid: queued}, queues={"treadle.tasks": busy})).details == {
        "queue": "treadle.tasks",
        "attempt": aid,
        "messages": 300,
        "consumers": 2,
    }


def test_running_names_the_worker_since_when_and_when_it_was_last_heard_from() -> None:
    run = Run(ONE)
    [aid] = run.dispatched()
    running = attempt(aid, status=AttemptStatus.RUNNING, worker="w1@host")
    seen = WorkerObservation("w1@host", NOW - timedelta(seconds=3))
    reason = only(run.why(attempts={aid: running}, workers={"w1@host": seen}))
    assert reason.reason is WaitReason.RUNNING
    assert reason.message == (
        "running on w1@host since 2026-01-01T12:00:05Z; last heard from at 2026-01-01T12:00:37Z"
    )


def test_a_retry_waits_for_its_timer() -> None:
    run = Run(
        "ref: t.r\ntasks:\n  - {name: flaky, action: core.noop, retry: {count: 2, delay: 5m}}\n"
    )
    [aid] = run.dispatched()
    run.send(TaskFailed(attempt_id=aid, error={"type": "X", "message": "m"}))
    reason = only(run.why())
    assert reason.reason is WaitReason.RETRY
    assert reason.message == "waits for a retry at 2026-01-01T12:05:00Z (attempt 2)"


def test_a_delayed_task_waits_for_its_delay() -> None:
    run = Run("ref: t.d\ntasks:\n  - {name: later, action: core.noop, delay: 1h}\n")
    reason = only(run.why())
    assert (reason.reason, reason.message) == (
        WaitReason.DELAYED,
        "waits for its delay until 2026-01-01T13:00:00Z",
    )


INQUIRY = """\
ref: t.ask
tasks:
  - name: approve
    action: core.ask
    input: {prompt: "Ship it?", assigned_to: ops}
"""


def test_an_inquiry_names_itself_and_who_should_answer() -> None:
    run = Run(INQUIRY, {"core.ask": RunnerType.INQUIRY})
    [unit] = run.state.executions[1].units
    assert unit.inquiry_id is not None
    entry = InquiryEntry(
        id=unit.inquiry_id,
        run_id="r-1",
        attempt_id="r-1/1/0/1",
        task="approve",
        status=InquiryStatus.PENDING,
        prompt="Ship it?",
        schema=None,
        assigned_to="ops",
        deadline=None,
        response=None,
        responder=None,
        created_at=T0,
        answered_at=None,
    )
    reason = only(run.why(inquiries={entry.id: entry}))
    assert (reason.reason, reason.message) == (
        WaitReason.INQUIRY,
        f"waits for inquiry {unit.inquiry_id} (assigned to ops)",
    )


def test_an_event_wait_names_the_type_and_since_when() -> None:
    run = Run(
        """\
        ref: t.ev
        tasks:
          - name: hear
            action: core.noop
            wait_for: {event: {type: deploy.done, subject: "svc-*"}}
        """
    )
    waits = {"w": EventWaitEntry("w", "r-1", "deploy.done", "svc-*", None, T0)}
    reason = only(run.why(event_waits=waits))
    assert (reason.reason, reason.message) == (
        WaitReason.EVENT,
        "waits for an event of type 'deploy.done' (subject svc-*) since 2026-01-01T12:00:00Z",
    )


def test_a_join_names_the_branches_it_waits_on_and_a_pause_holds_the_rest() -> None:
    run = Run(
        """\
        ref: t.join
        tasks:
          - {name: start, action: core.noop, next: [{do: [a, b]}]}
          - {name: a, action: core.noop, next: [{do: both}]}
          - {name: b, action: core.noop, next: [{do: both}]}
          - {name: both, action: core.noop, join: all}
        """
    )
    [start] = run.dispatched()
    run.send(TaskSucceeded(attempt_id=start, result=None))
    a_id, b_id = run.dispatched()
    run.send(TaskSucceeded(attempt_id=a_id, result=None))
    missing = dict.fromkeys(run.state.joins, ("b",))
    reasons = run.why(
        attempts={b_id: attempt(b_id, status=AttemptStatus.QUEUED)}, join_missing=missing
    )
    assert [(r.task, r.reason) for r in reasons] == [
        ("b", WaitReason.QUEUED),
        ("both", WaitReason.JOIN),
    ]
    assert reasons[1].message == "a join waiting on 'b'"

    run.send(PauseRequested())
    run.send(TaskSucceeded(attempt_id=b_id, result=None))
    assert run.state.status is RunStatus.PAUSED
    assert [(r.task, r.reason, r.message) for r in run.why()] == [
        ("both", WaitReason.PAUSED, "paused: starts when the run resumes")
    ]


def test_with_items_are_counted_per_reason_with_the_oldest_first() -> None:
    run = Run(
        """\
        ref: t.items
        tasks:
          - name: each
            action: core.noop
            with_items: "{{ range(5) | list }}"
            concurrency: 2
            concurrency_key: {key: k, limit: 1}
        """
    )
    first, second = run.dispatched()
    wait = FlowWait(
        second, "r-1", "waits for concurrency key 'k' (limit 1 tasks): 1 held", T0, 5, "k",
        holders=(first,),
    )  # fmt: skip
    reasons = run.why(
        attempts={first: attempt(first, status=AttemptStatus.RUNNING, worker="w1")},
        flow_waits={second: wait},
    )
    assert [(r.reason, r.count) for r in reasons] == [
        (WaitReason.RUNNING, 1),
        (WaitReason.CONCURRENCY, 1),
        (WaitReason.ITEMS_CAP, 3),
    ]
    assert reasons[1].message == (
        f"waits for concurrency key 'k' (limit 1 tasks): 1 held; held by {first}"
    )
    assert reasons[2].message == "3 items: waits for the task's own concurrency (2 in flight)"


def test_a_rate_limited_dispatch_says_until_when() -> None:
    run = Run(ONE)
    [aid] = run.dispatched()
    until = T0 + timedelta(minutes=1)
    wait = FlowWait(aid, "r-1", "waits for rate limit 'api' (1 per 60 s)", T0, 5, "api", until)
    reason = only(run.why(flow_waits={aid: wait}))
    assert reason.reason is WaitReason.RATE_LIMITED
    assert reason.message.startswith("rate limited until 2026-01-01T12:01:00Z")


def test_a_child_run_is_named_with_its_status_and_an_ended_run_waits_for_nothing() -> None:
    run = Run(
        "ref: t.parent\ntasks:\n  - {name: sub, action: t.child}\n",
        {"t.child": RunnerType.WORKFLOW},
    )
    [unit] = run.state.executions[1].units
    child = unit.child_run_id
    assert child is not None
    reason = only(run.why(child_status={child: RunStatus.PAUSED}))
    assert (reason.reason, reason.message) == (
        WaitReason.CHILD_RUN,
        f"waits for child run {child} (paused)",
    )
    ended = Run(ONE)
    [aid] = ended.dispatched()
    ended.send(TaskSucceeded(attempt_id=aid, result=None))
    assert ended.state.status is RunStatus.SUCCEEDED
    assert ended.why() == []


def test_items_sharing_a_reason_with_and_without_a_time_are_counted_from_the_dated_one() -> None:
    from treadle.scheduler.service.why import _grouped

    undated = Reason("t", WaitReason.STARTING, "starting", 1)
    dated = Reason("t", WaitReason.STARTING, "starting", 1, T0)
    [merged] = _grouped([undated, dated])
    assert (merged.count, merged.since, merged.message) == (2, T0, "2 items: starting")
