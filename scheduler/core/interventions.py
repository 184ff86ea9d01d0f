"""An operator acting on one step of a run: failing or skipping a task that waits.

The workflows/v1 plan's ``TransitionStep`` lets an operator complete, fail or skip a step.
Completing a waiting human task is answering its inquiry (``InquiryAnswered``, checked
against the inquiry's schema by the service). Failing a waiting step is here:

* :func:`waiting_step` says which execution of a task waits now, so the service can refuse
  a transition that does not apply, precisely and before anything is stored;
* :func:`fail_step` (``StepFailRequested``) closes what the step waits on (its inquiry is
  canceled, its event wait dropped) and fails it with the operator's reason, as any other
  failure: no retry, and its transitions (``failed()``) decide what follows.

* :func:`skip_step` (``StepSkipRequested``) closes what the step waits on the same way
  and ends it ``skipped``, with no result and no error, exactly as a task whose ``when``
  guard is false ends: its transitions see a skipped task and decide what follows. Only a
  step that waits may be skipped (the status table allows ``waiting -> skipped``); a step
  whose work runs cannot be, since its action may already have done what it does.
"""

from __future__ import annotations

from treadle.common.statuses import InquiryStatus, TaskStatus
from treadle.scheduler.core import finish, waiting
from treadle.scheduler.core.commands import CloseInquiry, StopAwaitingEvent
from treadle.scheduler.core.errors import error_info
from treadle.scheduler.core.events import StepFailRequested, StepSkipRequested
from treadle.scheduler.core.ids import inquiry_id
from treadle.scheduler.core.queries import RunView
from treadle.scheduler.core.state import Execution
from treadle.scheduler.core.transaction import Tx

__all__ = ["fail_step", "skip_step", "waiting_step"]


def waiting_step(run: RunView, task: str) -> Execution | None:
    """The execution of ``task`` that waits now on a person or an outside event, if any.

    That is its latest execution, if it has not ended and either waits at its own level (a
    ``wait_for`` guard, before its work) or is a single unit that waits (``core.ask``,
    ``core.wait_for_event``). A with_items task waits item by item: None (answer or fail
    the items' inquiries one by one instead). None as well once the run has ended.
    """
    if run.status.is_terminal:
        return None
    ids = [e.id for e in run.executions.values() if e.task == task]
    if not ids:
        return None
    execution = run.executions[max(ids)]
    if not execution.is_active or execution.status is not TaskStatus.WAITING:
        return None
    if not execution.units:
        return execution if execution.inquiry_id or execution.waits_for is not None else None
    if execution.with_items or len(execution.units) != 1:
        return None
    return execution if execution.units[0].status is TaskStatus.WAITING else None


def fail_step(tx: Tx, event: StepFailRequested) -> None:
    """Fail ``event.task`` if it waits (see :func:`waiting_step`); else change nothing."""
    execution = waiting_step(tx, event.task)
    if execution is None:
        return
    message = event.reason or f"task '{event.task}' was failed by an operator"
    error = error_info("FailedByOperator", message)
    if execution.units:
        finish.stop_unit(tx, execution, 0, timed_out=False)  # closes its inquiry or wait
        finish.unit_failed(tx, execution.id, 0, TaskStatus.FAILED, error, retry=False)
        return
    _stop_waiting(tx, execution)
    finish.end_execution(tx, execution.id, TaskStatus.FAILED, error=error)


def skip_step(tx: Tx, event: StepSkipRequested) -> None:
    """Skip ``event.task`` if it waits (see :func:`waiting_step`); else change nothing."""
    execution = waiting_step(tx, event.task)
    if execution is None:
        return
    if execution.units:
        finish.stop_unit(tx, execution, 0, timed_out=False)  # closes its inquiry or wait
        finish.unit_skipped(tx, execution.id, 0)
        return
    _stop_waiting(tx, execution)
    finish.end_execution(tx, execution.id, TaskStatus.SKIPPED)


def _stop_waiting(tx: Tx, execution: Execution) -> None:
    """Close what an execution waits on at its own level (before its work)."""
    own = inquiry_id(tx.run_id, execution.id, 0, 0)
    if execution.inquiry_id == own:  # the guard's own question (not one it only awaits)
        tx.emit(CloseInquiry(own, InquiryStatus.CANCELED))
    if execution.waits_for is not None:
        tx.emit(StopAwaitingEvent(waiting.execution_wait_id(tx, execution.id)))
