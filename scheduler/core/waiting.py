"""Waiting for outside events: ``wait_for: {event: ...}`` guards and ``core.wait_for_event``.

A wait records the event it expects (type and subject patterns, rendered when the wait
begins, and a ``filter`` template evaluated against each candidate event) and tells the
service through :class:`AwaitEvent`, so the service can route matching events here. Only
events that arrive after the wait began can release it: nothing is remembered from before.
Patterns use shell-style wildcards (``crm.*``); a missing subject pattern matches any.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from treadle.common.errors import ExpressionError
from treadle.common.loader.durations import parse_duration
from treadle.common.patterns import event_matches
from treadle.common.spec import EventWaitSpec
from treadle.common.statuses import TASK_TRANSITIONS, TaskStatus, moved
from treadle.scheduler.core import finish
from treadle.scheduler.core.commands import AwaitEvent, EmitLifecycleEvent, StopAwaitingEvent
from treadle.scheduler.core.errors import expression_failure
from treadle.scheduler.core.events import EventReceived
from treadle.scheduler.core.ids import attempt_id, execution_timer_id
from treadle.scheduler.core.namespaces import build_context
from treadle.scheduler.core.state import Execution, TimerKind, evolve
from treadle.scheduler.core.transaction import Tx


def wait_timeout(value: Any) -> timedelta | None:
    """A wait's ``timeout`` input (an inquiry's or an event wait's): seconds or a duration
    text; absent or 0 = no deadline. Raises DurationError for anything else."""
    if value is None:
        return None
    duration = parse_duration(value)
    return duration if duration.total_seconds() > 0 else None


def event_payload(event: EventReceived) -> dict[str, Any]:
    """How an event appears to templates and as a task's result."""
    return {"id": event.event_id, "type": event.type, "subject": event.subject, "data": event.data}


def execution_wait_id(tx: Tx, execution_id: int) -> str:
    """The wait id of a ``wait_for`` guard (its execution, unit 0, attempt 0)."""
    return attempt_id(tx.run_id, execution_id, 0, 0)


def render_wait(tx: Tx, execution: Execution, wait: Mapping[str, Any]) -> dict[str, Any]:
    """The patterns of a wait, rendered now; the filter stays a template for later."""
    context = build_context(tx, current=execution)
    event_type = tx.engine.render(wait.get("type"), context)
    subject = tx.engine.render(wait.get("subject"), context)
    if not isinstance(event_type, str) or not event_type:
        raise ExpressionError(f"the event type to wait for must be text, got {event_type!r}")
    return {
        "type": event_type,
        "subject": None if subject is None else str(subject),
        "filter": wait.get("filter"),
    }


def wait_for_event(
    tx: Tx, execution: Execution, wait: EventWaitSpec, timeout: timedelta | None
) -> None:
    """Hold ``execution`` (before its work) until a matching event or the timeout."""
    try:
        waits = render_wait(tx, execution, wait.model_dump())
    except ExpressionError as exc:
        finish.execution_refused(tx, execution.id, expression_failure(exc, "wait_for"))
        return
    timer = None
    deadline = tx.now + timeout if timeout else None
    if timeout:
        timer = execution_timer_id(TimerKind.DEADLINE, tx.run_id, execution.id)
        tx.schedule_in(timer, TimerKind.DEADLINE, timeout, execution.id)
    status = moved(TASK_TRANSITIONS, execution.status, TaskStatus.WAITING)
    tx.put(evolve(execution, status=status, waits_for=waits, timer=timer))
    tx.emit(
        AwaitEvent(execution_wait_id(tx, execution.id), waits["type"], waits["subject"], deadline)
    )
    tx.emit(EmitLifecycleEvent(execution.task, execution.id, TaskStatus.WAITING, tx.now))


def matches(tx: Tx, execution: Execution, waits: Mapping[str, Any], event: EventReceived) -> bool:
    """Whether ``event`` releases a wait (raises ExpressionError from its filter)."""
    subject = waits.get("subject")
    if not event_matches(
        event.type,
        event.subject,
        type_pattern=str(waits.get("type", "")),
        subject_pattern=None if subject is None else str(subject),
    ):
        return False
    condition = waits.get("filter")
    if condition is None:
        return True
    context = build_context(tx, current=execution)
    context["event"] = event_payload(event)
    return tx.engine.truthy(str(condition), context)


def on_event(tx: Tx, event: EventReceived) -> None:
    """Release every wait of the run that ``event`` matches."""
    for execution in list(tx.executions.values()):
        if not execution.is_active:
            continue
        if execution.status is TaskStatus.WAITING and execution.waits_for and not execution.units:
            _release_execution(tx, execution, event)
            continue
        for position, unit in enumerate(execution.units):
            if unit.status is TaskStatus.WAITING and unit.waits_for:
                _release_unit(tx, tx.execution(execution.id), position, event)


def _release_execution(tx: Tx, execution: Execution, event: EventReceived) -> None:
    from treadle.scheduler.core import launch

    assert execution.waits_for is not None
    try:
        if not matches(tx, execution, execution.waits_for, event):
            return
    except ExpressionError as exc:
        tx.emit(StopAwaitingEvent(execution_wait_id(tx, execution.id)))
        finish.execution_refused(tx, execution.id, expression_failure(exc, "wait_for filter"))
        return
    tx.cancel_timer(execution.timer)
    tx.emit(StopAwaitingEvent(execution_wait_id(tx, execution.id)))
    tx.put(evolve(execution, released_with={"event": event_payload(event)}, timer=None))
    launch.run_body(tx, execution.id)


def _release_unit(tx: Tx, execution: Execution, position: int, event: EventReceived) -> None:
    unit = execution.units[position]
    assert unit.waits_for is not None
    wait_id = attempt_id(tx.run_id, execution.id, position, unit.attempt)
    try:
        if not matches(tx, execution, unit.waits_for, event):
            return
    except ExpressionError as exc:
        tx.emit(StopAwaitingEvent(wait_id))
        finish.unit_refused(tx, execution.id, position, expression_failure(exc, "filter"))
        return
    tx.emit(StopAwaitingEvent(wait_id))
    payload = event_payload(event)
    finish.unit_succeeded(tx, execution.id, position, payload, 0)
