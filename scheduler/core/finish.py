"""Ending work: units, retries, executions and transitions; failing scopes; aborting the run.

The rules implemented here are the ones ``docs/language.md`` states:

* a unit that fails is retried per the task's ``retry`` policy; expression errors are not
  retried (they would fail the same way);
* an execution ends when all its units have; with_items fails if any item failed;
* transitions are evaluated in order, each fired transition publishes before the next
  ``when`` is evaluated, and every transition that holds fires;
* a failure no fired transition handles makes its scope *failing*: nothing new starts there,
  delayed and waiting tasks are cancelled, running ones finish, then the scope fails.

Releasing joins and ending idle scopes is :mod:`treadle.scheduler.core.scopes`; recording
the run's end is :mod:`treadle.scheduler.core.completion`.
"""

from __future__ import annotations

from typing import Any

from treadle.common.backoff import retry_delay
from treadle.common.errors import ExpressionError
from treadle.common.graph import NodeKind
from treadle.common.statuses import TASK_TRANSITIONS, InquiryStatus, RunStatus, TaskStatus, moved
from treadle.scheduler.core import escalation
from treadle.scheduler.core.commands import (
    CancelChildRun,
    CancelTask,
    CloseInquiry,
    EmitLifecycleEvent,
    StopAwaitingEvent,
)
from treadle.scheduler.core.completion import finalize_run
from treadle.scheduler.core.errors import error_info, expression_failure
from treadle.scheduler.core.ids import attempt_id, inquiry_id, unit_timer_id
from treadle.scheduler.core.lifecycle import compensation_ended
from treadle.scheduler.core.namespaces import build_context, execution_result
from treadle.scheduler.core.queries import in_retry_backoff
from treadle.scheduler.core.state import (
    ROOT_SCOPE,
    Execution,
    Failure,
    TimerKind,
    Unit,
    Units,
    evolve,
)
from treadle.scheduler.core.transaction import FillUnits, Relaunch, StartTask, Tx

_ACTIVE_UNIT = (TaskStatus.RUNNING, TaskStatus.WAITING)


# -- units -------------------------------------------------------------------------------


def unit_succeeded(tx: Tx, execution_id: int, position: int, result: Any, size: int) -> None:
    execution = tx.execution(execution_id)
    unit = execution.units[position]
    tx.cancel_timer(unit.timer)
    limits = tx.context.limits
    if size > limits.max_payload_bytes:
        message = (
            f"the result of task '{execution.task}' is {size} bytes; "
            f"the limit is {limits.max_payload_bytes} bytes"
        )
        unit_failed(
            tx,
            execution_id,
            position,
            TaskStatus.FAILED,
            error_info("PayloadTooLarge", message),
            retry=False,
        )
        return
    done = evolve(
        unit,
        status=moved(TASK_TRANSITIONS, unit.status, TaskStatus.SUCCEEDED),
        result=result,
        error=None,
        finished_at=tx.now,
        timer=None,
        result_bytes=size,
    )
    tx.context_bytes += size - unit.result_bytes
    if tx.context_bytes > limits.max_context_bytes:
        # Keep the record of this success, then stop the run: nothing more may be added.
        tx.put_unit(
            execution, position, done, in_flight=execution.in_flight - 1, done=execution.done + 1
        )
        abort_run(
            tx,
            RunStatus.FAILED,
            error_info(
                "LimitExceeded",
                f"the run's task results exceed {limits.max_context_bytes} bytes "
                f"(after task '{execution.task}')",
            ),
        )
        return
    _unit_ended(tx, execution, position, done)


def unit_failed(
    tx: Tx,
    execution_id: int,
    position: int,
    status: TaskStatus,
    error: dict[str, Any],
    *,
    retry: bool = True,
) -> None:
    """End a unit's attempt badly; retry it if the policy allows, else end the unit."""
    execution = tx.execution(execution_id)
    unit = execution.units[position]
    tx.cancel_timer(unit.timer)
    policy = tx.graph.node(execution.task).spec.retry
    tries = unit.attempt - unit.retry_base  # since the last manual retry of the run
    if retry and policy is not None and tries <= policy.count:
        delay = retry_delay(policy, tries)
        timer = None
        if delay.total_seconds() > 0:
            timer = unit_timer_id(TimerKind.RETRY, tx.run_id, execution_id, position, unit.attempt)
            tx.schedule_in(
                timer, TimerKind.RETRY, delay, execution_id, unit=position, attempt=unit.attempt
            )
        running = moved(TASK_TRANSITIONS, unit.status, TaskStatus.RUNNING)
        tx.put_unit(execution, position, evolve(unit, status=running, error=error, timer=timer))
        if timer is None:
            tx.agenda.append(Relaunch(execution_id, position))
        return
    if retry:  # retries exhausted: the task may turn to people (``escalate``)
        ending = escalation.escalate(tx, execution_id, position, status, error)
        if ending is None:
            return
        error = ending
        execution = tx.execution(execution_id)
    status = moved(TASK_TRANSITIONS, unit.status, status)
    ended = evolve(unit, status=status, error=error, finished_at=tx.now, timer=None)
    _unit_ended(tx, execution, position, ended)


def unit_skipped(tx: Tx, execution_id: int, position: int, *, result: Any = None) -> None:
    """End a waiting unit ``skipped`` (an operator, or the answer to its escalation, skipped
    its step): no error, and ``result`` (none unless an escalation's answer gave one)."""
    execution = tx.execution(execution_id)
    unit = execution.units[position]
    tx.cancel_timer(unit.timer)
    status = moved(TASK_TRANSITIONS, unit.status, TaskStatus.SKIPPED)
    ended = evolve(unit, status=status, error=None, result=result, finished_at=tx.now, timer=None)
    _unit_ended(tx, execution, position, ended)


def unit_lost(tx: Tx, execution_id: int, position: int, error: dict[str, Any]) -> None:
    """The unit's attempt was lost with its worker: run it again at once as a new attempt.

    Not the action's fault, so the task's retry policy does not count it (``retry_base``
    moves up by one); the service bounds how often an attempt is lost (the delivery limit).
    """
    execution = tx.execution(execution_id)
    unit = execution.units[position]
    tx.cancel_timer(unit.timer)  # the lost attempt's timeout
    lost = evolve(unit, error=error, timer=None, retry_base=unit.retry_base + 1)
    tx.put_unit(execution, position, lost)
    tx.agenda.append(Relaunch(execution_id, position))


def unit_refused(tx: Tx, execution_id: int, position: int, error: dict[str, Any]) -> None:
    """Fail a unit for good: trying again would fail the same way (no retry)."""
    unit_failed(tx, execution_id, position, TaskStatus.FAILED, error, retry=False)


def execution_refused(tx: Tx, execution_id: int, error: dict[str, Any]) -> None:
    """End an execution failed before its work began (a guard, wait or item problem)."""
    end_execution(tx, execution_id, TaskStatus.FAILED, error=error)


def _unit_ended(tx: Tx, execution: Execution, position: int, unit: Unit) -> None:
    execution = tx.put_unit(
        execution, position, unit, in_flight=execution.in_flight - 1, done=execution.done + 1
    )
    if execution.done < len(execution.units):
        tx.agenda.append(FillUnits(execution.id))
        return
    _end_from_units(tx, execution)


def _end_from_units(tx: Tx, execution: Execution) -> None:
    units = execution.units
    if not execution.with_items:
        only = units[0]
        end_execution(tx, execution.id, only.status, result=only.result, error=_dict(only.error))
        return
    result = execution_result(execution)
    bad = [u for u in units if u.status.is_unsuccessful]
    if not bad:
        end_execution(tx, execution.id, TaskStatus.SUCCEEDED, result=result)
        return
    status = (
        TaskStatus.TIMED_OUT
        if all(u.status is TaskStatus.TIMED_OUT for u in bad)
        else TaskStatus.FAILED
    )
    first = bad[0]
    first_message = (first.error or {}).get("message", first.status.value)
    message = (
        f"{len(bad)} of {len(units)} items of task '{execution.task}' did not succeed; "
        f"first: item {first.index}: {first_message}"
    )
    end_execution(tx, execution.id, status, result=result, error=error_info("ItemsFailed", message))


def stop_unit(tx: Tx, execution: Execution, position: int, *, timed_out: bool) -> None:
    """Tell the outside world to stop whatever the unit's current attempt is doing."""
    unit = execution.units[position]
    if unit.status not in _ACTIVE_UNIT or unit.attempt == 0:
        return
    kind = tx.graph.node(execution.task).kind
    if unit.inquiry_id is not None:  # an inquiry task's question, or an escalation's
        status = InquiryStatus.TIMED_OUT if timed_out else InquiryStatus.CANCELED
        tx.emit(CloseInquiry(unit.inquiry_id, status))
    elif kind is NodeKind.WORKFLOW and unit.child_run_id is not None:
        tx.emit(CancelChildRun(unit.child_run_id))
    elif kind is NodeKind.EVENT and unit.waits_for is not None:
        tx.emit(StopAwaitingEvent(attempt_id(tx.run_id, execution.id, position, unit.attempt)))
    elif not in_retry_backoff(tx, unit):
        tx.emit(CancelTask(attempt_id(tx.run_id, execution.id, position, unit.attempt)))


# -- executions and transitions ------------------------------------------------------------


def end_execution(
    tx: Tx,
    execution_id: int,
    status: TaskStatus,
    *,
    result: Any = None,
    error: dict[str, Any] | None = None,
) -> None:
    """Finish an execution, fire its transitions, and note an unhandled failure."""
    execution = tx.execution(execution_id)
    if execution.status.is_terminal:
        return
    tx.cancel_timer(execution.timer)
    status = moved(TASK_TRANSITIONS, execution.status, status)
    execution = tx.put(
        evolve(execution, status=status, finished_at=tx.now, result=result, error=error, timer=None)
    )
    tx.deactivate(execution.scope)
    tx.emit(EmitLifecycleEvent(execution.task, execution.id, status, tx.now))
    if status is TaskStatus.CANCELED:
        return
    if execution.compensates is not None:
        compensation_ended(tx, execution)
        return
    fired = fire_transitions(tx, execution)
    if status.is_unsuccessful and not fired:
        fail_scope(tx, execution.scope, Failure(execution.task, execution.id, status, error))


def fire_transitions(tx: Tx, execution: Execution) -> bool:
    """Evaluate the task's transitions in order; True if any fired."""
    node = tx.graph.node(execution.task)
    fired = False
    for index, transition in enumerate(node.transitions):
        context = build_context(tx, current=execution)
        try:
            holds = tx.engine.truthy(transition.when, context)
        except ExpressionError as exc:
            _transition_error(tx, execution, index, exc, "when")
            continue
        if not holds:
            continue
        fired = True
        for publish in transition.publish:
            try:
                value = tx.engine.render(publish.value, context)
            except ExpressionError as exc:
                _transition_error(tx, execution, index, exc, f"publish '{publish.name}'")
                continue
            tx.set_var(publish.name, value)
        for edge_id in node.out_edges[index]:
            follow_edge(tx, edge_id, execution.scope)
    return fired


def _transition_error(
    tx: Tx, execution: Execution, index: int, exc: ExpressionError, part: str
) -> None:
    error = expression_failure(exc, f"transition {index + 1} of task '{execution.task}', {part}")
    fail_scope(tx, execution.scope, Failure(execution.task, execution.id, TaskStatus.FAILED, error))


def follow_edge(tx: Tx, edge_id: int, scope: int) -> None:
    if tx.is_failing(scope):
        # Nothing new starts in a failing scope, so a join arrival there counts for nothing;
        # recording it would leave a join that is released into a start that never happens.
        return
    edge = tx.graph.edges[edge_id]
    target = tx.graph.node(edge.target)
    if target.spec.join is None:
        tx.agenda.append(StartTask(target.name, scope))
    else:
        tx.record_join(join_key(scope, target.name), edge_id)
        tx.scopes_to_check.add(scope)


def join_key(scope: int, task: str) -> str:
    return f"{scope}:{task}"


def fail_scope(tx: Tx, scope: int, failure: Failure) -> None:
    """Record an unhandled failure; the first one winds the scope down."""
    if not tx.add_failure(scope, failure):
        return
    for key in [k for k in tx.joins if k.startswith(f"{scope}:")]:
        tx.drop_join(key)
    for execution in list(tx.executions.values()):
        if execution.scope != scope or not execution.is_active:
            continue
        # Delayed and waiting tasks are cancelled; so are with_items inquiries, whose items
        # wait on people: a failing scope ends once running work has ended, not people.
        asking = tx.graph.node(execution.task).kind is NodeKind.INQUIRY
        if execution.status in (TaskStatus.SCHEDULED, TaskStatus.WAITING) or asking:
            cancel_execution(tx, execution)
    tx.scopes_to_check.add(scope)


def cancel_execution(tx: Tx, execution: Execution) -> None:
    """Stop an execution and everything it has in flight; it ends ``canceled``."""
    node = tx.graph.node(execution.task)
    if node.kind is NodeKind.PARALLEL:
        for child in list(tx.executions.values()):
            if child.scope == execution.id and child.is_active:
                cancel_execution(tx, child)
    own_inquiry = inquiry_id(tx.run_id, execution.id, 0, 0)
    if execution.inquiry_id == own_inquiry and not execution.units:
        tx.emit(CloseInquiry(own_inquiry, InquiryStatus.CANCELED))
    if execution.waits_for is not None and not execution.units:
        tx.emit(StopAwaitingEvent(attempt_id(tx.run_id, execution.id, 0, 0)))
    units = list(execution.units)
    for position, unit in enumerate(units):
        if unit.status in _ACTIVE_UNIT:
            stop_unit(tx, execution, position, timed_out=False)
            tx.cancel_timer(unit.timer)
            canceled = moved(TASK_TRANSITIONS, unit.status, TaskStatus.CANCELED)
            units[position] = evolve(unit, status=canceled, finished_at=tx.now, timer=None)
        elif unit.status is TaskStatus.SCHEDULED:
            canceled = moved(TASK_TRANSITIONS, unit.status, TaskStatus.CANCELED)
            units[position] = evolve(unit, status=canceled)
    tx.put(evolve(execution, units=Units(units), in_flight=0))
    end_execution(tx, execution.id, TaskStatus.CANCELED)


# -- the run ---------------------------------------------------------------------------------


def abort_run(tx: Tx, status: RunStatus, error: dict[str, Any] | None) -> None:
    """End the run now: stop everything in flight, cancel timers, record ``status``."""
    for execution in sorted(tx.executions.values(), key=lambda e: e.id):
        current = tx.execution(execution.id)
        if current.is_active and current.scope == ROOT_SCOPE:
            cancel_execution(tx, current)
    for key in list(tx.joins):
        tx.drop_join(key)
    finalize_run(tx, status, error=error)


def _dict(value: Any) -> dict[str, Any] | None:
    return None if value is None else dict(value)
