"""Each run's span, exported by the process that saves the run's end.

A :class:`RunSpans` observes a :class:`~treadle.scheduler.service.runs.RunService`
(``runs.observers``) in a process with tracing on (:func:`observe_run_spans` adds none
otherwise). When a saved change holds a run's ``CompleteRun``, it hands tracing, once the
transaction commits, the run's span: ``run <workflow>``, from the run's start to its end,
with the ids every process derives alone (:mod:`treadle.common.tracing`), so the dispatch
spans published earlier and the workers' attempt spans hang under it. A child run's span
is the child of its parent's attempt that started it; that attempt's span (``child run
<workflow>``, from the child's creation to its end) is exported with it, the child of the
parent run's span. Attributes: the run id, workflow, version and status, the parent run,
and the error's type when it failed: never parameters, outputs or error messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from treadle.common.statuses import RunStatus
from treadle.common.trace_ids import trace_id_of
from treadle.common.tracing import (
    AttributeValue,
    FinishedSpan,
    Tracing,
    active_tracing,
    attempt_span_id,
    parent_attempt_of,
    run_of_attempt,
    run_span_id,
)
from treadle.scheduler.core.commands import CompleteRun
from treadle.scheduler.core.state import RunState
from treadle.scheduler.store import EndedAttempt, RunChange, SavedRuns, UnitOfWork

__all__ = ["RunSpans", "observe_run_spans", "run_spans"]

_FAILED = (RunStatus.FAILED, RunStatus.TIMED_OUT)


def observe_run_spans(runs: Any) -> None:
    """Export the spans of the runs ``runs`` (a ``RunService``) ends, if tracing is on."""
    tracing = active_tracing()
    if tracing.enabled:
        runs.observers.append(RunSpans(tracing))


class RunSpans:
    """Hands tracing the spans of the runs a transaction ended, after it commits."""

    def __init__(self, tracing: Tracing) -> None:
        self.tracing = tracing

    def saved(self, uow: UnitOfWork, changes: Sequence[RunChange], saved: SavedRuns) -> None:
        spans: list[FinishedSpan] = []
        for change in changes:
            for command in change.commands:
                if isinstance(command, CompleteRun):
                    spans.extend(run_spans(change.new, command, change.events))
        if spans:
            uow.after_commit(lambda: self.tracing.record(spans))

    def ended(self, uow: UnitOfWork, attempts: Sequence[EndedAttempt]) -> None:
        """Attempts' spans come from the workers (and the parents of child runs from
        :meth:`saved`)."""


def run_spans(
    state: RunState, end: CompleteRun, events: Sequence[tuple[Any, datetime]]
) -> list[FinishedSpan]:
    """The span of the run ``state`` that ``end`` ended (and, for a child run, its parent
    attempt's)."""
    run_id = state.run_id
    trace_id = trace_id_of(run_id)
    finished = state.finished_at or (events[-1][1] if events else None)
    started = state.started_at or state.created_at or finished
    if finished is None or started is None:
        return []
    parent_attempt = state.context.parent_attempt_id or parent_attempt_of(run_id)
    attributes: dict[str, AttributeValue] = {
        "treadle.run_id": run_id,
        "treadle.workflow": state.workflow,
        "treadle.status": end.status.value,
    }
    if state.definition_version is not None:
        attributes["treadle.workflow_version"] = state.definition_version
    error_type = None
    if end.status in _FAILED:
        error = end.error or {}
        error_type = str(error.get("type") or end.status.value)
    spans: list[FinishedSpan] = []
    parent_span = None
    if parent_attempt is not None:
        parent_run = state.context.parent_run_id or run_of_attempt(parent_attempt)
        parent_span = attempt_span_id(parent_attempt)
        attributes["treadle.parent_run_id"] = parent_run or ""
        spans.append(
            FinishedSpan(
                name=f"child run {state.workflow}",
                trace_id=trace_id,
                span_id=parent_span,
                parent_span_id=run_span_id(parent_run) if parent_run else None,
                start=state.created_at or started,
                end=finished,
                attributes={
                    "treadle.run_id": parent_run or "",
                    "treadle.attempt_id": parent_attempt,
                    "treadle.child_run_id": run_id,
                },
                error_type=error_type,
            )
        )
    spans.append(
        FinishedSpan(
            name=f"run {state.workflow}",
            trace_id=trace_id,
            span_id=run_span_id(run_id),
            parent_span_id=parent_span,
            start=started,
            end=finished,
            attributes=attributes,
            error_type=error_type,
        )
    )
    return spans
