"""Rehearse a workflow against mocked action results, with a fake clock, in memory.

This drives the pure core exactly as the services do — events in, commands out — but
answers every dispatch from a script of results instead of a worker, fires timers by moving
a fake clock, and answers inquiries from the script. No threads, no sleeps, no database.
It powers the scenario tests and the property tests, and users can rehearse their own
workflows the same way (StackStorm orquesta's idea, with typed inputs).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from treadle.common.budget import Budget
from treadle.common.graph import Graph
from treadle.common.limits import Limits
from treadle.common.statuses import InquiryPurpose, RunStatus
from treadle.scheduler.core.commands import (
    CancelTimer,
    Command,
    CompleteRun,
    DispatchTask,
    OpenInquiry,
    ScheduleTimer,
    StartChildRun,
)
from treadle.scheduler.core.decide import decide
from treadle.scheduler.core.events import (
    Event,
    InquiryAnswered,
    RunRequested,
    TaskFailed,
    TaskSucceeded,
    TimerFired,
)
from treadle.scheduler.core.state import RunContext, RunState, initial_state

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ScriptedOutcome:
    """A scripted outcome of one attempt: a result, an error, or no answer at all (hang)."""

    result: Any = None
    error: Mapping[str, Any] | None = None
    hang: bool = False
    duration: timedelta = timedelta(0)

    @classmethod
    def parse(cls, data: Any) -> ScriptedOutcome:
        """From scenario YAML: ``{result: x}``, ``{error: "msg"}``, ``{hang: true}``.

        A mapping with any other key is refused: ``{n: 1}`` meant as a result would
        otherwise quietly become a ``null`` result (write ``{result: {n: 1}}``).
        """
        if isinstance(data, ScriptedOutcome):
            return data
        if not isinstance(data, Mapping):
            return cls(result=data)
        unknown = set(data) - _OUTCOME_KEYS
        if unknown:
            raise ValueError(
                f"an outcome takes {sorted(_OUTCOME_KEYS)}, not {sorted(map(str, unknown))}; "
                "write a mapping result as {result: {...}}"
            )
        duration = timedelta(seconds=float(data.get("seconds", 0)))
        if data.get("hang") or data.get("timeout"):
            return cls(hang=True, duration=duration)
        if "error" in data:
            error = data["error"]
            if not isinstance(error, Mapping):
                error = {"type": "ActionFailed", "message": str(error)}
            return cls(error=dict(error), duration=duration)
        return cls(result=data.get("result"), duration=duration)


_OUTCOME_KEYS = frozenset({"result", "error", "hang", "timeout", "seconds"})

Script = Callable[[str, int | None, int, Mapping[str, Any]], ScriptedOutcome]
"""Answers ``(task, item_index, attempt, input) -> ScriptedOutcome`` for each dispatch."""


def scripted(results: Mapping[str, Any]) -> Script:
    """A script from scenario data.

    ``results[task]`` is one outcome (every attempt), a list (attempt by attempt; the last
    repeats), or ``{items: [...]}`` giving per-item outcomes (each one or a list).
    Unscripted tasks succeed with ``null``.
    """

    def pick(spec: Any, attempt: int) -> ScriptedOutcome:
        if isinstance(spec, list):
            if not spec:
                return ScriptedOutcome()
            return ScriptedOutcome.parse(spec[min(attempt, len(spec)) - 1])
        return ScriptedOutcome.parse(spec)

    def answer(
        task: str, item: int | None, attempt: int, _input: Mapping[str, Any]
    ) -> ScriptedOutcome:
        spec = results.get(task)
        if spec is None:
            return ScriptedOutcome()
        if isinstance(spec, Mapping) and "items" in spec:
            items = spec["items"]
            if item is None or item >= len(items):
                return ScriptedOutcome.parse(spec.get("default", {}))
            return pick(items[item], attempt)
        return pick(spec, attempt)

    return answer


@dataclass
class Rehearsal:
    """The record of a rehearsed run: final state, every event and command, and dispatches."""

    state: RunState
    events: list[tuple[Event, datetime]] = field(default_factory=list)
    commands: list[tuple[Command, ...]] = field(default_factory=list)
    dispatched: list[DispatchTask] = field(default_factory=list)
    inquiries: list[OpenInquiry] = field(default_factory=list)
    children: list[StartChildRun] = field(default_factory=list)

    @property
    def status(self) -> RunStatus:
        return self.state.status

    @property
    def sequence(self) -> list[str]:
        """Task names in the order their executions started."""
        return [self.state.executions[i].task for i in sorted(self.state.executions)]

    def task_status(self, task: str) -> str | None:
        execution = self.state.latest_execution(task)
        return None if execution is None else execution.status.value


def rehearse(
    graph: Graph,
    *,
    parameters: Mapping[str, Any] | None = None,
    script: Script | None = None,
    answers: Mapping[str, Any] | None = None,
    child_outcomes: Mapping[str, Any] | None = None,
    limits: Limits | None = None,
    seed: int = 0,
    run_id: str = "r-rehearsal",
    start: datetime = EPOCH,
    depth: int = 0,
    controls: Sequence[tuple[float, Event]] = (),
    max_steps: int = 100_000,
    config: Mapping[str, Any] | None = None,
    budget: Budget | None = None,
    budget_ceiling: Budget | None = None,
    budget_answers: Sequence[Any] = (),
) -> Rehearsal:
    """Run ``graph`` to its end (or until it only waits on people) with scripted outcomes.

    ``controls`` are events delivered at a number of seconds after the start: operator
    requests (pause, resume, cancel, retry, compensate) and outside events; the rehearsal
    goes on until they have all been delivered.

    ``answers`` maps a task name to the response its inquiry gets (omit to leave it
    waiting); ``child_outcomes`` maps a task name to the outcome of the child run it starts;
    ``config`` is the pack configuration templates read as ``config``. ``budget`` is the
    budget the start gives, ``budget_ceiling`` the workspace's ceiling, and
    ``budget_answers`` the answers, in order, to the run's budget inquiries (a budget
    inquiry past the last one stays unanswered).
    """
    answer = script or scripted({})
    clock = start
    state = initial_state(run_id, graph.ref, clock)
    record = Rehearsal(state)
    context = RunContext(
        parameters=dict(parameters or {}),
        config=dict(config or {}),
        seed=seed,
        limits=limits or Limits(),
        depth=depth,
        budget=budget,
        budget_ceiling=budget_ceiling,
    )
    pending: deque[tuple[datetime, Event]] = deque([(clock, RunRequested(context=context))])
    timers: list[tuple[datetime, int, str]] = []
    live_timers: set[str] = set()
    results: list[tuple[datetime, int, Event]] = []
    counter = 0
    for index, (seconds, control) in enumerate(controls):
        # before results due at the same time, and in the order given
        order = index - len(controls)
        heapq.heappush(results, (start + timedelta(seconds=seconds), order, control))
    budget_replies = list(budget_answers)
    undelivered = {id(control) for _, control in controls}
    steps = 0
    while True:
        steps += 1
        if steps > max_steps:
            raise RuntimeError(f"rehearsal did not settle within {max_steps} steps")
        if not pending:
            due = _next_due(timers, results, live_timers)
            if due is None:
                break
            at, event = due
            clock = max(clock, at)
            pending.append((clock, event))
        at, event = pending.popleft()
        undelivered.discard(id(event))
        decision = decide(state, event, graph, clock)
        state = decision.state
        record.events.append((event, clock))
        record.commands.append(decision.commands)
        for command in decision.commands:
            counter += 1
            if isinstance(command, DispatchTask):
                record.dispatched.append(command)
                d = command.dispatch
                outcome = answer(d.task, d.item_index, d.attempt, d.input)
                if outcome.hang:
                    continue
                done: Event
                if outcome.error is not None:
                    done = TaskFailed(attempt_id=d.attempt_id, error=dict(outcome.error))
                else:
                    done = TaskSucceeded(attempt_id=d.attempt_id, result=outcome.result)
                heapq.heappush(results, (clock + outcome.duration, counter, done))
            elif isinstance(command, ScheduleTimer):
                live_timers.add(command.timer_id)
                heapq.heappush(timers, (command.fire_at, counter, command.timer_id))
            elif isinstance(command, CancelTimer):
                live_timers.discard(command.timer_id)
            elif isinstance(command, OpenInquiry):
                record.inquiries.append(command)
                if command.purpose is InquiryPurpose.BUDGET:
                    if budget_replies:
                        reply = budget_replies.pop(0)
                        pending.append(
                            (clock, InquiryAnswered(command.inquiry_id, reply, "rehearsal"))
                        )
                elif answers is not None and command.task in answers:
                    pending.append(
                        (
                            clock,
                            InquiryAnswered(command.inquiry_id, answers[command.task], "rehearsal"),
                        )
                    )
            elif isinstance(command, StartChildRun):
                record.children.append(command)
                outcome = ScriptedOutcome.parse(
                    (child_outcomes or {}).get(_task_of(state, command), {})
                )
                if outcome.hang:
                    continue
                child: Event
                if outcome.error is not None:
                    child = TaskFailed(
                        attempt_id=command.parent_attempt_id, error=dict(outcome.error)
                    )
                else:
                    child = TaskSucceeded(
                        attempt_id=command.parent_attempt_id, result=outcome.result
                    )
                heapq.heappush(results, (clock + outcome.duration, counter, child))
            elif isinstance(command, CompleteRun):
                pass
        if state.status.is_terminal and not pending and not undelivered:
            break
    record.state = state
    return record


def _task_of(state: RunState, command: StartChildRun) -> str:
    execution = int(command.parent_attempt_id.rsplit("/", 3)[1])
    return state.executions[execution].task


def _next_due(
    timers: list[tuple[datetime, int, str]],
    results: list[tuple[datetime, int, Event]],
    live: set[str],
) -> tuple[datetime, Event] | None:
    while timers and timers[0][2] not in live:
        heapq.heappop(timers)
    timer_at = timers[0][0] if timers else None
    result_at = results[0][0] if results else None
    if result_at is not None and (timer_at is None or result_at <= timer_at):
        at, _, event = heapq.heappop(results)
        return at, event
    if timer_at is not None:
        at, _, timer_id = heapq.heappop(timers)
        live.discard(timer_id)
        return at, TimerFired(timer_id=timer_id)
    return None


def replay(
    graph: Graph, events: Sequence[tuple[Event, datetime]], run_id: str, created_at: datetime
) -> list[tuple[Command, ...]]:
    """Feed a recorded event log through ``decide`` again; returns the commands per event."""
    state = initial_state(run_id, graph.ref, created_at)
    produced: list[tuple[Command, ...]] = []
    for event, at in events:
        decision = decide(state, event, graph, at)
        state = decision.state
        produced.append(decision.commands)
    return produced
