"""Escalation: a task whose retries are exhausted turns to people instead of failing.

The kOS spec's error recovery is "retry, then escalate to manual intervention". A task
declares it with ``escalate``:

* ``notify``: the input of a ``core.notify`` attempt sent when the task escalates (rendered
  like the task's input; ``message``, ``run_id`` and ``task`` default to what happened);
* ``ask``: an inquiry (``prompt``, ``assigned_to``, ``timeout``) whose answer is
  ``{"decision": "retry" | "skip" | "fail", "output"?: ...}``; the unit waits for it.

Only failures the retry policy governs escalate (an action's error or timeout, a child
run's failure): not a template error, a sandbox refusal or an operator failing the step,
and not in a scope that is already failing. Without ``ask``, the task fails as it would
have once the notification is sent. Applying the answer is
:mod:`treadle.scheduler.core.escalation_answers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

from treadle.common.errors import ExpressionError
from treadle.common.graph import NodeKind
from treadle.common.messages import TaskDispatch
from treadle.common.spec import EscalationSpec, RunnerType
from treadle.common.statuses import (
    TASK_TRANSITIONS,
    InquiryPurpose,
    RunStatus,
    TaskStatus,
    moved,
)
from treadle.scheduler.core.commands import DispatchTask, EmitLifecycleEvent, OpenInquiry
from treadle.scheduler.core.errors import expression_failure
from treadle.scheduler.core.ids import attempt_id, inquiry_id, unit_timer_id
from treadle.scheduler.core.namespaces import build_context
from treadle.scheduler.core.state import Execution, TimerKind, Unit, evolve
from treadle.scheduler.core.transaction import Tx

#: The action an escalation's ``notify`` sends. Its attempt is numbered as the failed
#: attempt with the unit's position plus ``NOTIFY_POSITION``: it is recorded like any
#: attempt, and the core never takes its result for a unit's (no unit is there).
NOTIFY_ACTION: Final = "core.notify"
NOTIFY_POSITION: Final = 1_000_000_000


class Decision(StrEnum):
    """What a person decides for an escalated task."""

    RETRY = "retry"
    SKIP = "skip"
    FAIL = "fail"


#: What an escalation inquiry accepts.
ANSWER_SCHEMA: Final[Mapping[str, Any]] = {
    "type": "object",
    "properties": {"decision": {"enum": [d.value for d in Decision]}, "output": {}},
    "required": ["decision"],
    "additionalProperties": False,
}


def is_escalated(tx: Tx, execution: Execution, unit: Unit) -> bool:
    """Whether ``unit`` waits on its escalation's inquiry (an inquiry task's own question
    is not an escalation)."""
    if unit.inquiry_id is None or unit.status is not TaskStatus.WAITING:
        return False
    return tx.graph.node(execution.task).kind is not NodeKind.INQUIRY


def escalate(
    tx: Tx, execution_id: int, position: int, status: TaskStatus, error: dict[str, Any]
) -> dict[str, Any] | None:
    """The unit's last attempt failed (``status``, ``error``): escalate it if its task says
    so. Returns ``None`` when the unit now waits for a person, else the error it ends with
    (the failure's, or a template error of the escalation itself)."""
    execution = tx.execution(execution_id)
    spec = tx.graph.node(execution.task).spec.escalate
    if spec is None or execution.compensates is not None or tx.is_failing(execution.scope):
        return error
    if tx.status not in (RunStatus.RUNNING, RunStatus.PAUSING, RunStatus.PAUSED):
        return error
    unit = execution.units[position]
    context = build_context(tx, current=execution, item=unit.item, index=unit.index)
    try:
        notify = _notify_input(tx, spec, context, execution.task, error)
        question = _question(tx, spec, context, (execution.task, unit.attempt), error)
    except ExpressionError as exc:
        return expression_failure(exc, "escalate")
    aid = attempt_id(tx.run_id, execution_id, position, unit.attempt)
    if notify is not None:
        dispatch = TaskDispatch(
            attempt_id=attempt_id(
                tx.run_id, execution_id, NOTIFY_POSITION + position, unit.attempt
            ),
            run_id=tx.run_id,
            task=execution.task,
            execution=execution_id,
            item_index=unit.index,
            attempt=unit.attempt,
            action_ref=NOTIFY_ACTION,
            input=notify,
            runner=RunnerType.PYTHON,
        )
        tx.emit(DispatchTask(dispatch))
    if question is None:
        return error
    prompt, assigned = question
    iq = inquiry_id(tx.run_id, execution_id, position, unit.attempt)
    ask = spec.ask
    timeout = None if ask is None else ask.timeout
    tx.emit(
        OpenInquiry(
            inquiry_id=iq,
            attempt_id=aid,
            task=execution.task,
            prompt=prompt,
            schema=ANSWER_SCHEMA,
            assigned_to=assigned,
            deadline=tx.now + timeout if timeout else None,
            purpose=InquiryPurpose.ESCALATION,
        )
    )
    timer = None
    if timeout:
        timer = unit_timer_id(TimerKind.DEADLINE, tx.run_id, execution_id, position, unit.attempt)
        tx.schedule_in(
            timer, TimerKind.DEADLINE, timeout, execution_id, unit=position, attempt=unit.attempt
        )
    details = dict(error.get("details") or {})
    details["escalation"] = {"status": status.value, "inquiry": iq}
    waiting = evolve(
        unit,
        status=moved(TASK_TRANSITIONS, unit.status, TaskStatus.WAITING),
        error={**error, "details": details},
        inquiry_id=iq,
        timer=timer,
    )
    execution = tx.put_unit(execution, position, waiting)
    if not execution.with_items and execution.status is TaskStatus.RUNNING:
        tx.put(
            evolve(execution, status=moved(TASK_TRANSITIONS, execution.status, TaskStatus.WAITING))
        )
        tx.emit(EmitLifecycleEvent(execution.task, execution_id, TaskStatus.WAITING, tx.now))
    return None


def _notify_input(
    tx: Tx,
    spec: EscalationSpec,
    context: dict[str, Any],
    task: str,
    error: Mapping[str, Any],
) -> dict[str, Any] | None:
    if spec.notify is None:
        return None
    rendered = tx.engine.render(dict(spec.notify), context)
    given = dict(rendered) if isinstance(rendered, Mapping) else {}
    given.setdefault("message", _summary(task, error))
    given.setdefault("run_id", tx.run_id)
    given.setdefault("task", task)
    return given


def _question(
    tx: Tx,
    spec: EscalationSpec,
    context: dict[str, Any],
    failed: tuple[str, int],
    error: Mapping[str, Any],
) -> tuple[Any, Any] | None:
    """The prompt and assignees of the question (``failed``: the task and its attempts)."""
    task, attempt = failed
    ask = spec.ask
    if ask is None:
        return None
    prompt = tx.engine.render(ask.prompt, context) if ask.prompt is not None else None
    if prompt is None:
        tries = "attempt" if attempt == 1 else f"{attempt} attempts"
        prompt = (
            f"{_summary(task, error)} (after {tries}): retry it, skip it (with an output) or "
            "fail it?"
        )
    assigned = tx.engine.render(ask.assigned_to, context) if ask.assigned_to is not None else None
    return prompt, assigned


def _summary(task: str, error: Mapping[str, Any]) -> str:
    detail = error.get("message")
    return f"task '{task}' failed" + (f": {detail}" if detail else "")
