"""The span ids every process derives from a run or attempt id alone, and the run spans."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from treadle.common.statuses import RunStatus
from treadle.common.trace_ids import trace_id_of
from treadle.common.tracing import (
    NO_TRACING,
    SpanParent,
    active_tracing,
    attempt_span_id,
    parent_attempt_of,
    run_of_attempt,
    run_span_id,
)
from treadle.scheduler.core.commands import CompleteRun
from treadle.scheduler.core.ids import attempt_id, child_run_id
from treadle.scheduler.core.state import RunContext, RunState
from treadle.scheduler.service.run_spans import observe_run_spans, run_spans

HEX16 = re.compile(r"[0-9a-f]{16}")
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_span_ids_are_16_hex_derived_from_the_id_alone() -> None:
    run = "r-5f1c2a9e0b7d4c13"
    assert HEX16.fullmatch(run_span_id(run))
    assert run_span_id(run) == run_span_id(run)
    assert run_span_id(run) != run_span_id(run + "x")
    # A run and an attempt never share a span id, even for the same text.
    assert run_span_id(run) != attempt_span_id(run)
    assert SpanParent.run(run) == SpanParent(trace_id_of(run), run_span_id(run))


def test_a_child_run_id_names_the_attempt_that_started_it() -> None:
    root = "r-5f1c2a9e0b7d4c13"
    child = child_run_id(root, 3, 0, 2)
    assert parent_attempt_of(child) == attempt_id(root, 3, 0, 2)
    grandchild = child_run_id(child, 1, 4, 1)
    assert parent_attempt_of(grandchild) == attempt_id(child, 1, 4, 1)
    assert run_of_attempt(attempt_id(child, 1, 4, 1)) == child
    assert parent_attempt_of(root) is None
    assert parent_attempt_of("a.b.c.d") is None
    assert run_of_attempt("not-an-attempt") is None
    # The whole tree is one trace.
    assert trace_id_of(grandchild) == trace_id_of(root)


def _ended(run_id: str, context: RunContext, status: RunStatus) -> RunState:
    return RunState(
        run_id=run_id,
        workflow="examples.hello_world",
        definition_version=3,
        status=status,
        context=context,
        created_at=T0,
        started_at=T0 + timedelta(seconds=1),
        finished_at=T0 + timedelta(seconds=5),
    )


def test_a_top_level_runs_span_is_the_root_of_its_trace() -> None:
    state = _ended("r-top", RunContext(parameters={"token": "s3cret"}), RunStatus.SUCCEEDED)
    [span] = run_spans(state, CompleteRun(status=RunStatus.SUCCEEDED, output={"x": 1}), ())
    assert span.name == "run examples.hello_world"
    assert (span.trace_id, span.span_id) == (trace_id_of("r-top"), run_span_id("r-top"))
    assert span.parent_span_id is None
    assert (span.start, span.end) == (state.started_at, state.finished_at)
    assert span.attributes == {
        "treadle.run_id": "r-top",
        "treadle.workflow": "examples.hello_world",
        "treadle.workflow_version": 3,
        "treadle.status": "succeeded",
    }
    assert span.error_type is None


def test_a_child_runs_span_hangs_under_its_parents_attempt() -> None:
    parent_attempt = attempt_id("r-top", 1, 0, 1)
    child = child_run_id("r-top", 1, 0, 1)
    context = RunContext(parent_run_id="r-top", parent_attempt_id=parent_attempt)
    end = CompleteRun(status=RunStatus.FAILED, error={"type": "QuotaExceeded", "message": "m"})
    attempt, run = run_spans(_ended(child, context, RunStatus.FAILED), end, ())
    assert attempt.span_id == attempt_span_id(parent_attempt)
    assert attempt.parent_span_id == run_span_id("r-top")
    assert attempt.attributes["treadle.attempt_id"] == parent_attempt
    assert attempt.start == T0  # the child run's creation
    assert run.parent_span_id == attempt.span_id
    assert run.trace_id == attempt.trace_id == trace_id_of("r-top")
    assert run.attributes["treadle.parent_run_id"] == "r-top"
    # The error's type only: a message may hold what a span must not.
    assert run.error_type == attempt.error_type == "QuotaExceeded"
    assert "m" not in run.attributes.values()


def test_without_tracing_no_observer_is_added() -> None:
    class Runs:
        observers: list[object] = []

    assert active_tracing() is NO_TRACING
    runs = Runs()
    observe_run_spans(runs)
    assert runs.observers == []
