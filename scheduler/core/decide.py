"""``decide(state, event, graph, now) -> Decision``: the whole scheduler core in one call.

Each event handler changes a :class:`Tx` working copy; :func:`_settle` then runs the agenda
(starting tasks, launching units, relaunching retries), releases joins and ends idle scopes
until nothing more follows from the event. The result is the next frozen state and the
commands for the service to carry out, in a deterministic order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from treadle.common.errors import ExpressionError
from treadle.common.expr import TemplateEngine
from treadle.common.graph import Graph
from treadle.common.payload import json_size
from treadle.common.statuses import InquiryStatus, RunStatus, TaskStatus
from treadle.scheduler.core import (
    budgets,
    completion,
    escalation,
    escalation_answers,
    finish,
    interventions,
    launch,
    lifecycle,
    queries,
    scopes,
    task_retry,
    waiting,
)
from treadle.scheduler.core.commands import CloseInquiry, Command, StopAwaitingEvent
from treadle.scheduler.core.errors import error_info, expression_failure
from treadle.scheduler.core.events import (
    AttemptLost,
    BudgetChanged,
    CancelRequested,
    ChildRunPaused,
    CompensateRequested,
    Event,
    EventReceived,
    InquiryAnswered,
    PauseRequested,
    ResumeRequested,
    RetryRequested,
    RunRequested,
    StepFailRequested,
    StepSkipRequested,
    TaskFailed,
    TaskSucceeded,
    TaskTimedOut,
    TimerFired,
)
from treadle.scheduler.core.ids import inquiry_id, run_timer_id
from treadle.scheduler.core.namespaces import build_context
from treadle.scheduler.core.state import (
    ROOT_SCOPE,
    Deferred,
    DeferredKind,
    Execution,
    RunState,
    TimerKind,
    evolve,
)
from treadle.scheduler.core.transaction import Begin, FillUnits, Relaunch, StartTask, Tx


class Decision(NamedTuple):
    """The next state of the run and what the outside world must do."""

    state: RunState
    commands: tuple[Command, ...]


@lru_cache(maxsize=1)
def default_engine() -> TemplateEngine:
    """The template engine the core renders with (stateless apart from its caches)."""
    return TemplateEngine()


def decide(
    state: RunState,
    event: Event,
    graph: Graph,
    now: datetime,
    engine: TemplateEngine | None = None,
) -> Decision:
    """Apply ``event`` to ``state``. Pure: same inputs, same decision; inputs are not changed."""
    if state.status.is_terminal and not isinstance(event, RetryRequested | CompensateRequested):
        return Decision(state, ())
    handler = _HANDLERS.get(type(event))
    if handler is None:
        return Decision(state, ())
    tx = Tx(state, graph, now, engine or default_engine())
    handler(tx, event)
    budgets.release_held(tx)  # what waited for running attempts' estimates looks again
    _settle(tx)
    return Decision(tx.freeze(), tuple(tx.commands))


def _settle(tx: Tx) -> None:
    while True:
        while tx.agenda:
            item = tx.agenda.popleft()
            if tx.holding:
                lifecycle.defer(tx, item)
            elif isinstance(item, StartTask):
                launch.start_task(tx, item.task, item.scope)
            elif isinstance(item, FillUnits):
                launch.fill_units(tx, item.execution)
            elif isinstance(item, Relaunch):
                _relaunch(tx, item.execution, item.position)
            elif isinstance(item, Begin):
                _begin(tx, item.execution)
        if not tx.scopes_to_check:
            lifecycle.settle_pause(tx)
            return
        # Innermost scopes first: a parallel block ends before its enclosing scope is judged.
        scope = max(tx.scopes_to_check)
        tx.scopes_to_check.discard(scope)
        scopes.settle_scope(tx, scope)


def _relaunch(tx: Tx, execution_id: int, position: int) -> None:
    execution = tx.execution(execution_id)
    unit = execution.units[position]
    if (
        execution.is_active
        and unit.status is TaskStatus.RUNNING
        and launch.may_launch(tx, execution)
    ):
        if budgets.admit(tx, execution, position, relaunch=True) is not budgets.Admission.GO:
            tx.defer(Deferred(DeferredKind.RELAUNCH, execution=execution_id, position=position))
            return
        launch.launch_attempt(tx, execution_id, position)


def _begin(tx: Tx, execution_id: int) -> None:
    execution = tx.execution(execution_id)
    if execution.status is TaskStatus.SCHEDULED and tx.status is RunStatus.RUNNING:
        launch.begin(tx, execution_id)


# -- handlers -------------------------------------------------------------------------------


def _on_run_requested(tx: Tx, event: RunRequested) -> None:
    if tx.status is not RunStatus.PENDING:
        return
    tx.context = event.context
    tx.move_run(RunStatus.RUNNING)
    tx.started_at = tx.now
    workflow = tx.graph.workflow
    budgets.begin(tx, workflow.budget)
    for variable in workflow.vars:
        try:
            value = tx.engine.render(variable.value, build_context(tx))
        except ExpressionError as exc:
            completion.finalize_run(
                tx, RunStatus.FAILED, error=expression_failure(exc, f"vars.{variable.name}")
            )
            return
        tx.set_var(variable.name, value)
    if workflow.timeout:
        tx.schedule_in(
            run_timer_id(TimerKind.DEADLINE, tx.run_id), TimerKind.DEADLINE, workflow.timeout, 0
        )
    for entry in tx.graph.entries:
        tx.agenda.append(StartTask(entry, ROOT_SCOPE))
    tx.scopes_to_check.add(ROOT_SCOPE)


def _current_unit(tx: Tx, attempt: str) -> tuple[Execution, int] | None:
    """The execution and unit position the attempt belongs to, if it is still current."""
    return queries.current_unit(tx, attempt)


def _on_task_succeeded(tx: Tx, event: TaskSucceeded) -> None:
    found = _current_unit(tx, event.attempt_id)
    if found is None:
        return
    execution, position = found
    over_ceiling = budgets.charge(tx, execution, event.result)
    if over_ceiling is not None:
        finish.unit_refused(tx, execution.id, position, over_ceiling)
        return
    size = event.result_bytes if event.result_bytes is not None else json_size(event.result)
    finish.unit_succeeded(tx, execution.id, position, event.result, size)


def _on_task_failed(tx: Tx, event: TaskFailed | TaskTimedOut) -> None:
    found = _current_unit(tx, event.attempt_id)
    if found is None:
        return
    execution, position = found
    status = TaskStatus.TIMED_OUT if isinstance(event, TaskTimedOut) else TaskStatus.FAILED
    error = dict(event.error) or error_info(status.value, f"task '{execution.task}' {status.value}")
    retry = not isinstance(event, TaskFailed) or event.retryable
    finish.unit_failed(tx, execution.id, position, status, error, retry=retry)


def _on_attempt_lost(tx: Tx, event: AttemptLost) -> None:
    found = _current_unit(tx, event.attempt_id)
    if found is None:
        return
    execution, position = found
    finish.unit_lost(tx, execution.id, position, dict(event.error))


def _on_cancel(tx: Tx, event: CancelRequested) -> None:
    """Stop the run: revoke attempts, close inquiries and timers, cancel child runs."""
    reason = event.reason or "canceled on request"
    finish.abort_run(tx, RunStatus.CANCELED, error_info("Canceled", reason))


def _on_timer(tx: Tx, event: TimerFired) -> None:
    timer = tx.pop_timer(event.timer_id)
    if timer is None:
        return
    if timer.execution == 0:  # the run's own deadline
        timeout = tx.graph.workflow.timeout
        message = f"the run exceeded its timeout of {timeout.total_seconds() if timeout else 0:g}s"
        finish.abort_run(tx, RunStatus.TIMED_OUT, error_info("Timeout", message))
        return
    execution = tx.executions.get(timer.execution)
    if execution is None or execution.status.is_terminal:
        return
    if timer.unit is None:
        _on_execution_timer(tx, execution, timer.kind)
        return
    position = timer.unit
    unit = execution.units[position]
    if unit.attempt != timer.attempt or unit.timer != timer.id:
        return
    execution = tx.put_unit(execution, position, evolve(unit, timer=None))
    if timer.kind is TimerKind.RETRY:
        tx.agenda.append(Relaunch(execution.id, position))  # deferred if the run is paused
    elif timer.kind is TimerKind.TIMEOUT:
        timeout = tx.graph.node(execution.task).spec.timeout
        seconds = timeout.total_seconds() if timeout else 0
        finish.stop_unit(tx, execution, position, timed_out=True)
        message = (
            f"attempt {unit.attempt} of task '{execution.task}' "
            f"exceeded its timeout of {seconds:g}s"
        )
        finish.unit_failed(
            tx, execution.id, position, TaskStatus.TIMED_OUT, error_info("Timeout", message)
        )
    elif timer.kind is TimerKind.DEADLINE and escalation.is_escalated(tx, execution, unit):
        escalation_answers.timed_out(tx, execution, position)
    elif timer.kind is TimerKind.DEADLINE:
        finish.stop_unit(tx, execution, position, timed_out=True)
        message = f"nobody answered the inquiry of task '{execution.task}' in time"
        finish.unit_failed(
            tx,
            execution.id,
            position,
            TaskStatus.TIMED_OUT,
            error_info("Timeout", message),
            retry=False,
        )


def _on_execution_timer(tx: Tx, execution: Execution, kind: TimerKind) -> None:
    execution = tx.put(evolve(execution, timer=None))
    if kind is TimerKind.DELAY and execution.status is TaskStatus.SCHEDULED:
        tx.agenda.append(Begin(execution.id))  # deferred if the run is paused
    elif kind is TimerKind.DEADLINE and execution.status is TaskStatus.WAITING:
        own = inquiry_id(tx.run_id, execution.id, 0, 0)
        if execution.inquiry_id == own:
            tx.emit(CloseInquiry(own, InquiryStatus.TIMED_OUT))
        if execution.waits_for is not None:
            tx.emit(StopAwaitingEvent(waiting.execution_wait_id(tx, execution.id)))
        message = f"task '{execution.task}' waited past its timeout"
        finish.end_execution(
            tx, execution.id, TaskStatus.TIMED_OUT, error=error_info("Timeout", message)
        )


def _on_inquiry_answered(tx: Tx, event: InquiryAnswered) -> None:
    if budgets.answered(tx, event):
        return
    for execution in tx.executions.values():
        if not execution.is_active:
            continue
        if execution.status is TaskStatus.WAITING and not execution.units:
            if execution.inquiry_id == event.inquiry_id:
                tx.cancel_timer(execution.timer)
                tx.emit(CloseInquiry(event.inquiry_id, InquiryStatus.ANSWERED))
                released = {"response": event.response}
                tx.put(evolve(execution, released_with=released, timer=None))
                launch.run_body(tx, execution.id)
                return
            continue
        for position, unit in enumerate(execution.units):
            if unit.inquiry_id == event.inquiry_id and escalation.is_escalated(tx, execution, unit):
                escalation_answers.answered(tx, execution, position, event)
                return
            if unit.inquiry_id == event.inquiry_id and unit.status is TaskStatus.WAITING:
                tx.emit(CloseInquiry(event.inquiry_id, InquiryStatus.ANSWERED))
                result = inquiry_result(event.response)
                finish.unit_succeeded(tx, execution.id, position, result, json_size(result))
                return


def inquiry_result(response: Any) -> Any:
    """An answered inquiry's result: ``{"response": answer}``, plus the answer's own fields.

    Attune workflows read ``task.ask.result.approved``; the issue's contract is
    ``result.response``. Both work: a mapping answer's keys are merged in beside
    ``response`` (which always holds the whole answer).
    """
    if isinstance(response, Mapping):
        return {**response, "response": response}
    return {"response": response}


def _on_resume(tx: Tx, _event: ResumeRequested) -> None:
    budgets.resumed(tx)
    lifecycle.resume(tx)


def _on_retry(tx: Tx, event: RetryRequested) -> None:
    if event.task is None:
        lifecycle.retry(tx)
    else:
        task_retry.retry_task(tx, event.task)


def _on_event(tx: Tx, event: EventReceived) -> None:
    if not tx.status.is_terminal:
        waiting.on_event(tx, event)


_HANDLERS: dict[type[Event], Callable[[Tx, Any], None]] = {
    PauseRequested: lambda tx, _e: lifecycle.pause(tx),
    ResumeRequested: _on_resume,
    BudgetChanged: budgets.changed,
    RetryRequested: _on_retry,
    CompensateRequested: lambda tx, _e: lifecycle.compensate(tx),
    EventReceived: _on_event,
    ChildRunPaused: lambda tx, e: lifecycle.child_paused(tx, e.child_run_id),
    RunRequested: _on_run_requested,
    TaskSucceeded: _on_task_succeeded,
    TaskFailed: _on_task_failed,
    TaskTimedOut: _on_task_failed,
    AttemptLost: _on_attempt_lost,
    TimerFired: _on_timer,
    InquiryAnswered: _on_inquiry_answered,
    CancelRequested: _on_cancel,
    StepFailRequested: interventions.fail_step,
    StepSkipRequested: interventions.skip_step,
}
