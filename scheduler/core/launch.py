"""Starting work: new executions, task guards and delays, waits, and unit attempts.

Everything here turns the graph's intent into commands: a dispatch to a worker, a question
to a person, a child run, or a timer. Anything that ends a unit or an execution is handed to
:mod:`treadle.scheduler.core.finish`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from treadle.common.errors import ExpressionError
from treadle.common.graph import NodeKind
from treadle.common.loader.durations import DurationError
from treadle.common.spec import InquirySpec, TaskSpec
from treadle.common.statuses import TASK_TRANSITIONS, RunStatus, TaskStatus, moved
from treadle.scheduler.core import budgets, finish, waiting
from treadle.scheduler.core.commands import (
    AwaitEvent,
    DispatchTask,
    EmitLifecycleEvent,
    OpenInquiry,
    StartChildRun,
)
from treadle.scheduler.core.dispatching import sandbox_refusal, task_dispatch
from treadle.scheduler.core.errors import error_info, expression_failure
from treadle.scheduler.core.flow_claims import flow_claims, task_priority
from treadle.scheduler.core.ids import (
    attempt_id,
    child_run_id,
    execution_timer_id,
    inquiry_id,
    unit_timer_id,
)
from treadle.scheduler.core.namespaces import build_context
from treadle.scheduler.core.state import (
    Deferred,
    DeferredKind,
    Execution,
    TimerKind,
    Unit,
    Units,
    evolve,
)
from treadle.scheduler.core.transaction import StartTask, Tx


def can_start(tx: Tx, scope: int) -> bool:
    """New executions start only while the run is running and their scope is not failing."""
    return tx.status is RunStatus.RUNNING and not tx.is_failing(scope)


def start_task(tx: Tx, task: str, scope: int) -> None:
    """Create an execution of ``task`` and take it as far as it can go now."""
    if not can_start(tx, scope):
        return
    limits = tx.context.limits
    if tx.next_execution > limits.max_task_executions:
        finish.abort_run(
            tx,
            RunStatus.FAILED,
            error_info(
                "LimitExceeded",
                f"the run exceeded the maximum of {limits.max_task_executions} task executions "
                f"(starting task '{task}'); raise limits.max_task_executions or bound the loop",
            ),
        )
        return
    spec = tx.graph.node(task).spec
    execution = Execution(
        id=tx.next_execution, task=task, scope=scope, status=TaskStatus.SCHEDULED, started_at=tx.now
    )
    tx.next_execution += 1
    tx.add_execution(execution)
    if spec.when is not None:
        try:
            allowed = tx.engine.truthy(spec.when, build_context(tx, current=execution))
        except ExpressionError as exc:
            finish.execution_refused(tx, execution.id, expression_failure(exc, "when"))
            return
        if not allowed:
            finish.end_execution(tx, execution.id, TaskStatus.SKIPPED)
            return
    if spec.delay:
        timer = execution_timer_id(TimerKind.DELAY, tx.run_id, execution.id)
        tx.schedule_in(timer, TimerKind.DELAY, spec.delay, execution.id)
        tx.put(evolve(execution, timer=timer))
        _lifecycle(tx, execution.id, TaskStatus.SCHEDULED)
        return
    begin(tx, execution.id)


def begin(tx: Tx, execution_id: int) -> None:
    """Past guard and delay: wait if the task says so, else do the task's work."""
    execution = tx.execution(execution_id)
    spec = tx.graph.node(execution.task).spec
    if spec.wait_for is not None and spec.wait_for.inquiry is not None:
        _wait_for_inquiry(tx, execution, spec)
        return
    if spec.wait_for is not None and spec.wait_for.event is not None:
        waiting.wait_for_event(tx, execution, spec.wait_for.event, spec.wait_for.timeout)
        return
    run_body(tx, execution_id)


def run_body(tx: Tx, execution_id: int) -> None:
    """Start the units of an action/inquiry/workflow task, or the nested tasks of a parallel."""
    execution = tx.execution(execution_id)
    node = tx.graph.node(execution.task)
    spec = node.spec
    if node.kind is NodeKind.PARALLEL:
        running = moved(TASK_TRANSITIONS, execution.status, TaskStatus.RUNNING)
        tx.put(evolve(execution, status=running, timer=None))
        _lifecycle(tx, execution_id, TaskStatus.RUNNING)
        for child in node.entries:
            tx.agenda.append(StartTask(child, execution_id))
        tx.scopes_to_check.add(execution_id)
        return
    units = _make_units(tx, execution, spec)
    if units is None:
        return
    # A single inquiry goes straight to ``waiting`` when it opens (its lifecycle shows no
    # ``running`` step); with_items inquiries run, their units wait.
    asks = node.kind is NodeKind.INQUIRY and spec.with_items is None
    status = execution.status if asks else TaskStatus.RUNNING
    execution = tx.put(
        evolve(
            execution,
            status=moved(TASK_TRANSITIONS, execution.status, status),
            timer=None,
            units=units,
            with_items=spec.with_items is not None,
        )
    )
    if not asks:
        _lifecycle(tx, execution_id, TaskStatus.RUNNING)
    if not units:
        finish.end_execution(tx, execution_id, TaskStatus.SUCCEEDED, result=[])
        return
    fill_units(tx, execution_id)


def _make_units(tx: Tx, execution: Execution, spec: TaskSpec) -> Units | None:
    if spec.with_items is None:
        return Units((Unit(index=None),))
    try:
        if isinstance(spec.with_items, str):
            items = tx.engine.evaluate(spec.with_items, build_context(tx, current=execution))
        else:
            items = tx.engine.render(list(spec.with_items), build_context(tx, current=execution))
    except ExpressionError as exc:
        finish.execution_refused(tx, execution.id, expression_failure(exc, "with_items"))
        return None
    if isinstance(items, Mapping) or not isinstance(items, list | tuple):
        finish.execution_refused(
            tx,
            execution.id,
            error_info(
                "InvalidItems",
                f"with_items of task '{execution.task}' must give a list, "
                f"got {type(items).__name__}",
            ),
        )
        return None
    limit = tx.context.limits.max_items
    if len(items) > limit:
        finish.execution_refused(
            tx,
            execution.id,
            error_info(
                "LimitExceeded",
                f"with_items of task '{execution.task}' gave {len(items)} items; "
                f"the limit is {limit}",
            ),
        )
        return None
    if spec.batch_size:
        size = spec.batch_size
        batches = [list(items[i : i + size]) for i in range(0, len(items), size)]
        return Units(Unit(index=i, item=batch) for i, batch in enumerate(batches))
    return Units(Unit(index=i, item=value) for i, value in enumerate(items))


def concurrency_of(tx: Tx, spec: TaskSpec) -> int:
    cap = tx.context.limits.max_concurrency
    return min(spec.concurrency, cap) if spec.concurrency else cap


def may_launch(tx: Tx, execution: Execution) -> bool:
    """Attempts launch while the run runs, and compensations while it compensates."""
    if tx.status is RunStatus.RUNNING:
        return True
    return tx.status is RunStatus.COMPENSATING and execution.compensates is not None


def fill_units(tx: Tx, execution_id: int) -> None:
    """Launch waiting units while the execution is below its concurrency.

    Units are taken in order from ``next_unit``; ones that are not waiting to start (a
    retried run reopens only its failed items) are passed over. A paused run defers this.
    """
    execution = tx.execution(execution_id)
    if execution.status.is_terminal:
        return
    if tx.holding:
        tx.defer(Deferred(DeferredKind.FILL, execution=execution_id))
        return
    if not may_launch(tx, execution):
        return
    cap = concurrency_of(tx, tx.graph.node(execution.task).spec)
    while execution.in_flight < cap and execution.next_unit < len(execution.units):
        position = execution.next_unit
        if execution.units[position].status is not TaskStatus.SCHEDULED:
            execution = tx.put(evolve(execution, next_unit=position + 1))
            continue
        admission = budgets.admit(tx, execution, position, relaunch=False)
        if admission is not budgets.Admission.GO:
            if admission is budgets.Admission.STOP:  # until the run resumes
                tx.defer(Deferred(DeferredKind.FILL, execution=execution_id))
            return
        execution = tx.put(
            evolve(execution, next_unit=position + 1, in_flight=execution.in_flight + 1)
        )
        launch_attempt(tx, execution_id, position)
        execution = tx.execution(execution_id)


def launch_attempt(tx: Tx, execution_id: int, position: int) -> None:
    """Start the next attempt of one unit: render its input and emit the matching command."""
    execution = tx.execution(execution_id)
    node = tx.graph.node(execution.task)
    spec = node.spec
    unit = execution.units[position]
    attempt = unit.attempt + 1
    aid = attempt_id(tx.run_id, execution_id, position, attempt)
    unit = evolve(
        unit,
        attempt=attempt,
        status=moved(TASK_TRANSITIONS, unit.status, TaskStatus.RUNNING),
        started_at=unit.started_at or tx.now,
        timer=None,
    )
    context = build_context(tx, current=execution, item=unit.item, index=unit.index)
    try:
        raw_input = spec.input
        if node.kind is NodeKind.EVENT:  # the filter is evaluated per event, later
            raw_input = {k: v for k, v in raw_input.items() if k != "filter"}
        rendered = tx.engine.render(raw_input, context)
    except ExpressionError as exc:
        tx.put_unit(execution, position, unit)
        finish.unit_refused(tx, execution_id, position, expression_failure(exc, "input"))
        return
    parameters: dict[str, Any] = dict(rendered) if isinstance(rendered, Mapping) else {}
    if node.kind in (NodeKind.INQUIRY, NodeKind.EVENT):
        try:
            timeout = waiting.wait_timeout(parameters.get("timeout"))
        except DurationError as exc:
            tx.put_unit(execution, position, unit)
            what = "inquiry" if node.kind is NodeKind.INQUIRY else "event wait"
            message = f"the timeout of {what} task '{execution.task}': {exc}"
            finish.unit_refused(tx, execution_id, position, error_info("InvalidInput", message))
            return
        if node.kind is NodeKind.EVENT:
            waited = _await_event(
                tx, execution_id, position, unit=unit, parameters=parameters, timeout=timeout
            )
            if waited is None:
                return
            unit = waited
        else:
            unit = _open_inquiry(
                tx,
                execution_id,
                position,
                attempt=attempt,
                unit=unit,
                parameters=parameters,
                timeout=timeout,
            )
    elif node.kind is NodeKind.WORKFLOW:
        depth = tx.context.depth + 1
        if depth > tx.context.limits.max_depth:
            tx.put_unit(execution, position, unit)
            message = (
                f"starting workflow '{spec.action}' from task '{execution.task}' would nest runs "
                f"{depth} deep; the limit is {tx.context.limits.max_depth}"
            )
            finish.unit_refused(tx, execution_id, position, error_info("LimitExceeded", message))
            return
        child = child_run_id(tx.run_id, execution_id, position, attempt)
        tx.emit(StartChildRun(child, spec.action or "", parameters, aid, depth))
        unit = evolve(unit, child_run_id=child)
    else:
        refusal = budgets.ceiling_refusal(tx, spec) or sandbox_refusal(tx, node, parameters)
        if refusal is not None:
            tx.put_unit(execution, position, unit)
            finish.unit_refused(tx, execution_id, position, refusal)
            return
        try:
            claims = flow_claims(tx, spec, context, node.action_rate_limit)
        except ExpressionError as exc:
            tx.put_unit(execution, position, unit)
            finish.unit_refused(tx, execution_id, position, error_info("ExpressionError", str(exc)))
            return
        dispatch = task_dispatch(tx, execution, position, attempt, parameters)
        tx.emit(DispatchTask(dispatch, priority=task_priority(tx, spec), claims=claims))
    if spec.timeout and node.kind is not NodeKind.INQUIRY:
        timer = unit_timer_id(TimerKind.TIMEOUT, tx.run_id, execution_id, position, attempt)
        tx.schedule_in(
            timer, TimerKind.TIMEOUT, spec.timeout, execution_id, unit=position, attempt=attempt
        )
        unit = evolve(unit, timer=timer)
    tx.put_unit(tx.execution(execution_id), position, unit)


def _open_inquiry(
    tx: Tx,
    execution_id: int,
    position: int,
    *,
    attempt: int,
    unit: Unit,
    parameters: Mapping[str, Any],
    timeout: timedelta | None,
) -> Unit:
    iq = inquiry_id(tx.run_id, execution_id, position, attempt)
    execution = tx.execution(execution_id)
    schema = parameters.get("schema") or parameters.get("response_schema")
    deadline = tx.now + timeout if timeout else None
    tx.emit(
        OpenInquiry(
            inquiry_id=iq,
            attempt_id=attempt_id(tx.run_id, execution_id, position, attempt),
            task=execution.task,
            prompt=parameters.get("prompt"),
            schema=schema if isinstance(schema, Mapping) else None,
            assigned_to=parameters.get("assigned_to"),
            deadline=deadline,
        )
    )
    status = moved(TASK_TRANSITIONS, unit.status, TaskStatus.WAITING)
    unit = evolve(unit, status=status, inquiry_id=iq)
    if timeout:
        timer = unit_timer_id(TimerKind.DEADLINE, tx.run_id, execution_id, position, attempt)
        tx.schedule_in(
            timer, TimerKind.DEADLINE, timeout, execution_id, unit=position, attempt=attempt
        )
        unit = evolve(unit, timer=timer)
    asking = tx.execution(execution_id)
    if not asking.with_items:
        status = moved(TASK_TRANSITIONS, asking.status, TaskStatus.WAITING)
        tx.put(evolve(asking, status=status, inquiry_id=iq))
        _lifecycle(tx, execution_id, TaskStatus.WAITING)
    return unit


def _await_event(
    tx: Tx,
    execution_id: int,
    position: int,
    *,
    unit: Unit,
    parameters: Mapping[str, Any],
    timeout: timedelta | None,
) -> Unit | None:
    """A ``core.wait_for_event`` unit: wait for an event (its ``filter`` is not rendered
    now but for each candidate event). ``None`` when the wait could not begin."""
    execution = tx.execution(execution_id)
    raw = tx.graph.node(execution.task).spec.input
    wait = {**parameters, "filter": raw.get("filter")}
    try:
        waits = waiting.render_wait(tx, execution, wait)
    except ExpressionError as exc:
        tx.put_unit(execution, position, unit)
        finish.unit_refused(tx, execution_id, position, expression_failure(exc, "input"))
        return None
    wait_id = attempt_id(tx.run_id, execution_id, position, unit.attempt)
    deadline = tx.now + timeout if timeout else None
    tx.emit(AwaitEvent(wait_id, waits["type"], waits["subject"], deadline))
    status = moved(TASK_TRANSITIONS, unit.status, TaskStatus.WAITING)
    unit = evolve(unit, status=status, waits_for=waits)
    if timeout:
        timer = unit_timer_id(TimerKind.DEADLINE, tx.run_id, execution_id, position, unit.attempt)
        tx.schedule_in(
            timer, TimerKind.DEADLINE, timeout, execution_id, unit=position, attempt=unit.attempt
        )
        unit = evolve(unit, timer=timer)
    if not execution.with_items:
        held = tx.execution(execution_id)
        tx.put(evolve(held, status=moved(TASK_TRANSITIONS, held.status, TaskStatus.WAITING)))
        _lifecycle(tx, execution_id, TaskStatus.WAITING)
    return unit


def _wait_for_inquiry(tx: Tx, execution: Execution, spec: TaskSpec) -> None:
    """``wait_for: {inquiry: ...}``: ask (or await an existing inquiry) before running."""
    wait = spec.wait_for
    assert wait is not None
    question = wait.inquiry
    context = build_context(tx, current=execution)
    timeout = wait.timeout
    if isinstance(question, InquirySpec):
        try:
            prompt = tx.engine.render(question.prompt, context)
            assigned = tx.engine.render(question.assigned_to, context)
        except ExpressionError as exc:
            finish.execution_refused(tx, execution.id, expression_failure(exc, "wait_for"))
            return
        iq = inquiry_id(tx.run_id, execution.id, 0, 0)
        timeout = question.timeout or timeout
        tx.emit(
            OpenInquiry(
                inquiry_id=iq,
                attempt_id=attempt_id(tx.run_id, execution.id, 0, 0),
                task=execution.task,
                prompt=prompt,
                schema=question.schema_,
                assigned_to=assigned,
                deadline=tx.now + timeout if timeout else None,
            )
        )
    else:
        try:
            iq = str(tx.engine.evaluate(str(question), context))
        except ExpressionError as exc:
            finish.execution_refused(tx, execution.id, expression_failure(exc, "wait_for"))
            return
    timer = None
    if timeout:
        timer = execution_timer_id(TimerKind.DEADLINE, tx.run_id, execution.id)
        tx.schedule_in(timer, TimerKind.DEADLINE, timeout, execution.id)
    status = moved(TASK_TRANSITIONS, execution.status, TaskStatus.WAITING)
    tx.put(evolve(execution, status=status, inquiry_id=iq, timer=timer))
    _lifecycle(tx, execution.id, TaskStatus.WAITING)


def _lifecycle(tx: Tx, execution_id: int, status: TaskStatus) -> None:
    execution = tx.execution(execution_id)
    tx.emit(EmitLifecycleEvent(execution.task, execution_id, status, tx.now))
