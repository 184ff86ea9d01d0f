"""Property tests: invariants of the pure core over random workflows and random outcomes.

Hypothesis generates workflows of a few to about twelve tasks (random DAGs, optional
conditional back-edges bounded by a counter, joins, with_items, retries, timeouts, delays,
guards, inquiries, child workflows, parallel blocks, legacy failure handlers, and the odd
template that cannot be rendered) with a random script of outcomes, builds them through the
real loader and compiler, rehearses them on the fake clock, and checks what must hold for
every run: it settles, nothing starts once it has ended, attempt ids are unique, task
statuses only move as ``TASK_TRANSITIONS`` allows, and replaying the event log reproduces
the same commands and the same final state.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treadle.common.graph import Graph, compile_graph
from treadle.common.limits import Limits
from treadle.common.loader import load_workflow_text
from treadle.common.spec import RunnerType
from treadle.common.statuses import TASK_TRANSITIONS, RunStatus, TaskStatus, can_move
from treadle.scheduler.core.commands import (
    CancelChildRun,
    CancelTask,
    CancelTimer,
    CloseInquiry,
    CompleteRun,
    DispatchTask,
    EmitLifecycleEvent,
    OpenInquiry,
    StartChildRun,
)
from treadle.scheduler.core.decide import decide
from treadle.scheduler.core.ids import parse_attempt_id
from treadle.scheduler.core.state import initial_state
from treadle.scheduler.rehearsal import EPOCH, Rehearsal, rehearse, replay, scripted

RUN_ID = "r-rehearsal"
CHILD = "sub.flow"
#: What may still be said once the run has completed: only stopping and telling, no new work.
AFTER_COMPLETION = (CancelTask, CancelChildRun, CancelTimer, CloseInquiry, EmitLifecycleEvent)

TRANSITION_WHENS = (
    None,
    None,
    "{{ succeeded() }}",
    "{{ succeeded() }}",
    "{{ failed() }}",
    "{{ timed_out() }}",
    "{{ failed() or timed_out() }}",
    "{{ vars.flag }}",
    "{{ not vars.flag }}",
    "{{ result() == 1 }}",
    "{{ 1 / 0 }}",
)
GUARDS = (None, None, None, "{{ true }}", "{{ false }}", "{{ vars.flag }}", "{{ 1 / 0 }}")
PUBLISHES = (
    [{"flag": True}],
    [{"flag": False}],
    [{"flag": "{{ not vars.flag }}"}],
    [{"seen": "{{ result() }}"}, {"flag": "{{ vars.seen == 1 }}"}],
    [{"broken": "{{ 1 / 0 }}"}],
)
LEGACY_KEYS = ("on_success", "on_failure", "on_complete", "on_timeout")
STARTS_WORK = (DispatchTask, OpenInquiry, StartChildRun)
#: Why a run may end badly: a task failed, a limit was hit, it ran out of time, or a
#: variable or the output could not be rendered.
ERROR_TYPES = {"TaskFailed", "LimitExceeded", "Timeout", "ExpressionError"}


@dataclass(frozen=True)
class Case:
    """One generated workflow with everything needed to rehearse it."""

    workflow: dict[str, Any]
    results: dict[str, Any]
    answers: dict[str, Any]
    children: dict[str, Any]
    limits: Limits
    seed: int

    def graph(self) -> Graph:
        text = json.dumps(self.workflow, indent=1)  # JSON is YAML, and quick to write
        spec = load_workflow_text(text, "generated.yaml")
        return compile_graph(spec, {CHILD: RunnerType.WORKFLOW}.get)

    def rehearse(self, graph: Graph) -> Rehearsal:
        return rehearse(
            graph,
            script=scripted(self.results),
            answers=self.answers,
            child_outcomes=self.children,
            limits=self.limits,
            seed=self.seed,
            run_id=RUN_ID,
        )


def _outcome(draw: st.DrawFn, *, can_hang: bool) -> dict[str, Any]:
    kinds = ["result", "result", "error"] + (["hang"] if can_hang else [])
    kind = draw(st.sampled_from(kinds))
    seconds = draw(st.integers(0, 5))
    if kind == "hang":
        return {"hang": True}
    if kind == "error":
        return {"error": draw(st.sampled_from(["boom", "bad"])), "seconds": seconds}
    value = draw(st.sampled_from([1, 2, None, "x", True, [1, 2]]))
    return {"result": value, "seconds": seconds}


def _outcomes(draw: st.DrawFn, *, can_hang: bool) -> Any:
    """One outcome for every attempt, or a list attempt by attempt (the last repeats)."""
    if draw(st.booleans()):
        return _outcome(draw, can_hang=can_hang)
    return [_outcome(draw, can_hang=can_hang) for _ in range(draw(st.integers(1, 3)))]


def _work_fields(draw: st.DrawFn, task: dict[str, Any], *, items_ok: bool = True) -> None:
    """Optional with_items, retry, timeout, delay and guard of an action-like task."""
    if items_ok and draw(st.integers(0, 3)) == 0:
        task["with_items"] = list(range(draw(st.integers(0, 4))))
        if draw(st.booleans()):
            task["batch_size"] = draw(st.integers(1, 2))
        if draw(st.booleans()):
            task["concurrency"] = draw(st.integers(1, 2))
    if draw(st.integers(0, 2)) == 0:
        task["retry"] = {
            "count": draw(st.integers(0, 2)),
            "delay": draw(st.integers(0, 3)),
            "backoff": draw(st.sampled_from(["constant", "linear", "exponential"])),
        }
    if draw(st.integers(0, 2)) == 0:
        task["timeout"] = draw(st.integers(1, 6))
    if draw(st.integers(0, 4)) == 0:
        task["delay"] = draw(st.integers(1, 4))
    guard = draw(st.sampled_from(GUARDS))
    if guard is not None:
        task["when"] = guard


def _transitions(draw: st.DrawFn, targets: list[str]) -> list[dict[str, Any]]:
    out = []
    for _ in range(draw(st.integers(0, 3))):
        transition: dict[str, Any] = {}
        when = draw(st.sampled_from(TRANSITION_WHENS))
        if when is not None:
            transition["when"] = when
        if draw(st.integers(0, 3)) == 0:
            transition["publish"] = draw(st.sampled_from(PUBLISHES))
        if targets:
            transition["do"] = draw(st.lists(st.sampled_from(targets), max_size=2, unique=True))
        out.append(transition)
    return out


def _nested_block(
    draw: st.DrawFn, prefix: str, results: dict[str, Any], *, depth: int = 1
) -> list[dict[str, Any]]:
    """The tasks of a parallel block: actions, the odd inquiry, and one level of nesting."""
    names = [f"{prefix}_{k}" for k in range(draw(st.integers(1, 3)))]
    tasks = []
    for k, name in enumerate(names):
        kind = draw(st.sampled_from(["action"] * 5 + ["inquiry", "parallel"]))
        task: dict[str, Any] = {"name": name}
        if kind == "parallel" and depth < 2:
            task["type"] = "parallel"
            task["tasks"] = _nested_block(draw, name, results, depth=depth + 1)
        elif kind == "inquiry":
            task["action"] = "core.ask"
            task["input"] = {"prompt": "ok?", "timeout": draw(st.integers(1, 9))}
        else:
            task["action"] = "core.noop"
            _work_fields(draw, task, items_ok=False)
            results[name] = _outcomes(draw, can_hang="timeout" in task)
        nxt = _transitions(draw, names[k + 1 :])
        if nxt:
            task["next"] = nxt
        tasks.append(task)
    return tasks


@st.composite
def cases(draw: st.DrawFn) -> Case:
    count = draw(st.integers(1, 10))
    names = [f"t{i}" for i in range(count)]
    results: dict[str, Any] = {}
    answers: dict[str, Any] = {}
    children: dict[str, Any] = {}
    tasks: list[dict[str, Any]] = []
    inbound: dict[str, int] = dict.fromkeys(names, 0)
    for i, name in enumerate(names):
        kind = draw(st.sampled_from(["action"] * 6 + ["inquiry", "child", "parallel"]))
        task: dict[str, Any] = {"name": name}
        if kind == "parallel":
            task["type"] = "parallel"
            task["tasks"] = _nested_block(draw, f"p{i}", results)
        elif kind == "inquiry":
            task["action"] = draw(st.sampled_from(["core.ask", "core.inquiry"]))
            task["input"] = {"prompt": f"{name}?"}
            if draw(st.booleans()):
                task["input"]["timeout"] = draw(st.integers(1, 9))
            if draw(st.integers(0, 2)) > 0:
                answers[name] = {"ok": draw(st.booleans())}
            if draw(st.integers(0, 3)) == 0:
                task["with_items"] = list(range(draw(st.integers(0, 2))))
        elif kind == "child":
            task["action"] = CHILD
            task["input"] = {"n": i}
            _work_fields(draw, task)
            children[name] = _outcome(draw, can_hang=False)
        else:
            task["action"] = "core.noop"
            _work_fields(draw, task)
            if "with_items" in task and draw(st.booleans()):
                size = len(task["with_items"])
                results[name] = {
                    "items": [_outcomes(draw, can_hang="timeout" in task) for _ in range(size)]
                }
            else:
                results[name] = _outcomes(draw, can_hang="timeout" in task)
        forward = names[i + 1 :]
        nxt = _transitions(draw, forward)
        if nxt:
            task["next"] = nxt
        if forward and draw(st.integers(0, 3)) == 0:
            task[draw(st.sampled_from(LEGACY_KEYS))] = draw(st.sampled_from(forward))
        for transition in nxt:
            for target in transition.get("do", ()):
                inbound[target] += 1
        for key in LEGACY_KEYS:
            if key in task:
                inbound[task[key]] += 1
        tasks.append(task)
    # Conditional back-edges, bounded by a counter, only to tasks reachable by forward edges
    # (so every task stays reachable and no cycle is unconditional).
    loops = [n for n in names if inbound[n] > 0]
    if loops:
        for task in tasks:
            if draw(st.integers(0, 4)) == 0:
                task.setdefault("next", []).append(
                    {
                        "when": "{{ vars.c < 3 }}",
                        "publish": [{"c": "{{ vars.c + 1 }}"}],
                        "do": [draw(st.sampled_from(loops))],
                    }
                )
    for task in tasks:
        if inbound[task["name"]] > 0 and draw(st.integers(0, 2)) == 0:
            task["join"] = draw(st.sampled_from(["all", "all", 1, 2, 3]))
    workflow: dict[str, Any] = {
        "ref": "test.generated",
        "vars": [{"c": 0}, {"flag": draw(st.booleans())}],
        "tasks": tasks,
    }
    if draw(st.integers(0, 4)) == 0:
        workflow["timeout"] = draw(st.integers(5, 40))
    if draw(st.integers(0, 4)) == 0:
        workflow["output_map"] = {"flag": "{{ vars.flag }}", "c": "{{ vars.c }}"}
    limits = Limits(
        max_task_executions=draw(st.integers(5, 80)),
        max_concurrency=draw(st.integers(1, 4)),
    )
    return Case(workflow, results, answers, children, limits, draw(st.integers(0, 2**31)))


PROPERTY = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(cases())
def test_a_run_always_settles(case: Case) -> None:
    """The rehearsal ends; a run left non-terminal is only waiting on people."""
    record = case.rehearse(case.graph())
    state = record.state
    active = [e for e in state.executions.values() if e.is_active]
    if state.status.is_terminal:
        assert not active, f"executions still active after the run ended: {active}"
        assert not state.timers, f"timers left after the run ended: {list(state.timers)}"
        if state.status is RunStatus.SUCCEEDED:
            assert state.error is None
            assert isinstance(state.output, dict)
            graph = case.graph()
            # (a nested failure may be handled by the transitions of its parallel task)
            unhandled = [
                e.task
                for e in state.executions.values()
                if e.status.is_unsuccessful
                and graph.node(e.task).scope is None
                and not graph.node(e.task).transitions
            ]
            assert not unhandled, f"top-level failures with no transition at all: {unhandled}"
        else:
            assert state.error is not None
            assert state.error["type"] in ERROR_TYPES
        return
    assert state.status is RunStatus.RUNNING
    waiting = [
        e
        for e in active
        if e.status is TaskStatus.WAITING
        or any(u.status is TaskStatus.WAITING and u.inquiry_id for u in e.units)
    ]
    assert waiting, "the run stopped running without waiting on an inquiry"
    # The rehearsal fires every timer and delivers every result before it stops, so what
    # is left can only be people not answering.
    assert not state.timers, f"timers left unfired: {list(state.timers)}"
    stuck = [(e.task, u.index) for e in active for u in e.units if u.status is TaskStatus.RUNNING]
    assert not stuck, f"units running with nothing to report on them: {stuck}"
    assert all(e.status is not TaskStatus.SCHEDULED for e in active)


@PROPERTY
@given(cases())
def test_nothing_starts_after_the_run_completes(case: Case) -> None:
    record = case.rehearse(case.graph())
    flat = [command for batch in record.commands for command in batch]
    completions = [i for i, c in enumerate(flat) if isinstance(c, CompleteRun)]
    assert len(completions) <= 1
    if record.status.is_terminal:
        assert len(completions) == 1
        assert completions[0] == max(
            i for i, c in enumerate(flat) if not isinstance(c, AFTER_COMPLETION)
        ), "only stopping work and lifecycle events may follow CompleteRun"
        # Events after the one that completed the run produce nothing at all.
        ending = next(
            i
            for i, batch in enumerate(record.commands)
            if any(isinstance(c, CompleteRun) for c in batch)
        )
        assert all(batch == () for batch in record.commands[ending + 1 :])
    else:
        assert not completions


@PROPERTY
@given(cases())
def test_every_dispatched_attempt_id_is_unique(case: Case) -> None:
    record = case.rehearse(case.graph())
    ids = [d.dispatch.attempt_id for d in record.dispatched]
    assert len(ids) == len(set(ids))


@PROPERTY
@given(cases())
def test_task_statuses_follow_the_transition_table(case: Case) -> None:
    """Lifecycle events make only allowed moves, end where the state ends, and no work is
    started for an execution once it has ended."""
    record = case.rehearse(case.graph())
    seen: dict[int, TaskStatus] = {}
    for batch in record.commands:
        for command in batch:
            if isinstance(command, STARTS_WORK):
                owner = _execution_of(command)
                status = seen.get(owner, TaskStatus.SCHEDULED)
                assert not status.is_terminal, f"{command.kind} for ended execution {owner}"
            if not isinstance(command, EmitLifecycleEvent):
                continue
            old = seen.get(command.execution, TaskStatus.SCHEDULED)
            assert can_move(TASK_TRANSITIONS, old, command.status), (
                f"task '{command.task}' (execution {command.execution}) moved "
                f"{old.value} -> {command.status.value}"
            )
            seen[command.execution] = command.status
    for execution in record.state.executions.values():
        assert seen.get(execution.id, TaskStatus.SCHEDULED) is execution.status, execution.task


def _execution_of(command: DispatchTask | OpenInquiry | StartChildRun) -> int:
    attempt = command.dispatch.attempt_id if isinstance(command, DispatchTask) else None
    if isinstance(command, OpenInquiry):
        attempt = command.attempt_id
    elif isinstance(command, StartChildRun):
        attempt = command.parent_attempt_id
    ref = parse_attempt_id(attempt or "")
    assert ref is not None
    return ref.execution


@PROPERTY
@given(cases())
def test_replaying_the_event_log_gives_the_same_commands_and_state(case: Case) -> None:
    """Replays are exact, and ``decide`` never changes the state it is given."""
    graph = case.graph()
    record = case.rehearse(graph)
    assert replay(graph, record.events, RUN_ID, EPOCH) == record.commands
    state = initial_state(RUN_ID, graph.ref, EPOCH)
    for event, at in record.events:
        before = copy.deepcopy(state)
        following = decide(state, event, graph, at).state
        assert state == before
        state = following
    assert state == record.state
