"""Ending the run itself: its outcome, its ``output_map`` and the commands that report it.

Split from :mod:`treadle.scheduler.core.finish` so that every way a run ends (the top level
going idle, an abort, a compensation, a failed ``vars`` template) finalizes it in one
place. This module needs nothing else that ends work, so ``finish``, ``scopes``,
``lifecycle`` and ``decide`` can all import it without an import cycle.
"""

from __future__ import annotations

from typing import Any

from treadle.common.errors import ExpressionError
from treadle.common.statuses import InquiryStatus, RunStatus, TaskStatus
from treadle.scheduler.core.commands import CloseInquiry, CompleteRun, ReportEndToParent
from treadle.scheduler.core.errors import error_info, expression_failure
from treadle.scheduler.core.namespaces import build_context
from treadle.scheduler.core.state import ROOT_SCOPE, Failure, evolve
from treadle.scheduler.core.transaction import Tx

#: How a failure reads; a cancelled execution is one only while a retry from one task held
#: it (``scheduler/core/task_retry.py``).
_WHAT = {TaskStatus.TIMED_OUT: "timed out", TaskStatus.CANCELED: "canceled"}


def failure_summary(failures: tuple[Failure, ...], kind: str) -> tuple[TaskStatus, dict[str, Any]]:
    """One status and error for a scope's unhandled failures (``timed_out`` if all were)."""
    status = (
        TaskStatus.TIMED_OUT
        if all(f.status is TaskStatus.TIMED_OUT for f in failures)
        else TaskStatus.FAILED
    )
    parts = []
    for failure in failures:
        what = _WHAT.get(failure.status, "failed")
        detail = (failure.error or {}).get("message")
        parts.append(f"task '{failure.task}' {what}" + (f": {detail}" if detail else ""))
    error = error_info(kind, "; ".join(parts), task=failures[0].task)
    return status, error


def complete_run(tx: Tx) -> None:
    """The top level is idle: the run succeeded (render ``output_map``) or failed."""
    if tx.status.is_terminal:
        return
    tx.restore_failures(ROOT_SCOPE)
    failures = tx.failures.get(ROOT_SCOPE, ())
    if failures and all(f.status is TaskStatus.CANCELED for f in failures):
        # only what an earlier cancel stopped is left (after a retry from one task)
        _status, error = failure_summary(failures, "Canceled")
        finalize_run(tx, RunStatus.CANCELED, error=error)
        return
    if failures:
        status, error = failure_summary(failures, "TaskFailed")
        run_status = RunStatus.TIMED_OUT if status is TaskStatus.TIMED_OUT else RunStatus.FAILED
        finalize_run(tx, run_status, error=error)
        return
    output: dict[str, Any] = {}
    context = build_context(tx)
    for key, template in tx.graph.workflow.output_map.items():
        try:
            output[key] = tx.engine.render(template, context)
        except ExpressionError as exc:
            finalize_run(tx, RunStatus.FAILED, error=expression_failure(exc, f"output_map.{key}"))
            return
    finalize_run(tx, RunStatus.SUCCEEDED, output=output)


def finalize_run(
    tx: Tx, status: RunStatus, *, output: Any = None, error: dict[str, Any] | None = None
) -> None:
    """Record the run's end: cancel its timers, drop pending work, report the outcome."""
    tx.restore_failures()  # what a retry from one task held counts again for a later retry
    for timer_id in list(tx.timers):
        tx.cancel_timer(timer_id)
    tx.move_run(status)
    tx.finished_at = tx.now
    tx.output = output
    tx.error = error
    tx.deferred = ()
    tx.compensation = ()
    tx.agenda.clear()
    budget = tx.budget
    if budget is not None and budget.stop is not None:  # the run ended while stopped
        if budget.stop.inquiry_id is not None:
            tx.emit(CloseInquiry(budget.stop.inquiry_id, InquiryStatus.CANCELED))
        tx.budget = evolve(budget, stop=None)
    parent_attempt = tx.context.parent_attempt_id
    if parent_attempt is not None:
        tx.emit(ReportEndToParent(parent_attempt, status, output, error))
    tx.emit(CompleteRun(status, output, error))
