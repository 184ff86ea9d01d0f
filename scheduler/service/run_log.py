"""The run events as log lines: what the Attune plan's logging standards name.

A :class:`RunLog` observes a :class:`~treadle.scheduler.service.runs.RunService`
(``runs.observers``): from each saved change (the state before and after, and the
commands decided) it makes these lines, written once the transaction commits (a
decision rolled back logs nothing), on the ``treadle.runs`` logger:

=========================  =======  ============================================================
event                      level    when, and its own fields
=========================  =======  ============================================================
``workflow.start``         info     the run moved from pending to running (``version``,
                                    ``parent_run`` of a child run)
``workflow.task.schedule`` info     an attempt dispatched to a worker (``action``, ``queue``) or
                                    a child run started; a with_items execution once, with
                                    ``items``, each item's dispatch at debug
``workflow.task.retry``    warning  an attempt failed and the task's retry policy runs it again
                                    (``attempt`` the next one, ``delay_s``, ``error_type``,
                                    ``error``); items' retries at debug
``workflow.task.complete`` info     an execution ended well (``status``: succeeded, skipped,
                                    canceled, compensated; ``duration_s``)
``workflow.task.failed``   error    an execution failed or timed out (``status``,
                                    ``duration_s``, ``error_type``, ``error``)
``workflow.vars.publish``  info     variables were set (``vars``: their names, never values)
``workflow.complete``      info     the run ended (``status``, ``duration_s``, and
                           /error   ``error_type``, ``error`` when it failed)
=========================  =======  ============================================================

Every line carries ``run``, ``workflow``, ``trace_id`` and, when about a task, ``task``,
``execution`` and ``attempt``. The run's secret values travel with each record
(``secrets``) so the formatter blanks them out; no input, parameter or result is logged.
Nothing is built when the logger would drop it (``isEnabledFor``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from treadle.common.statuses import RunStatus, TaskStatus
from treadle.common.trace_ids import trace_id_of
from treadle.scheduler.core.commands import (
    Command,
    CompleteRun,
    DispatchTask,
    EmitLifecycleEvent,
    RunStatusChanged,
    ScheduleTimer,
    StartChildRun,
)
from treadle.scheduler.core.ids import parse_attempt_id
from treadle.scheduler.core.state import Execution, RunState, TimerKind, Unit
from treadle.scheduler.service.run_document import run_secrets
from treadle.scheduler.store import EndedAttempt, RunChange, SavedRuns, UnitOfWork

RUN_LOGGER: Final = "treadle.runs"
log = logging.getLogger(RUN_LOGGER)
# A process that configured no logging (a library user, `treadle run`) prints nothing of
# these: without a handler on the way, Python would print warnings and errors bare.
log.addHandler(logging.NullHandler())

START = "workflow.start"
SCHEDULE = "workflow.task.schedule"
RETRY = "workflow.task.retry"
TASK_COMPLETE = "workflow.task.complete"
TASK_FAILED = "workflow.task.failed"
VARS = "workflow.vars.publish"
COMPLETE = "workflow.complete"

#: An error's message is cut to this many characters in a line.
MAX_ERROR_CHARS = 1000
_BAD_TASK = (TaskStatus.FAILED, TaskStatus.TIMED_OUT)
_BAD_RUN = (RunStatus.FAILED, RunStatus.TIMED_OUT)


@dataclass(frozen=True, slots=True)
class Line:
    """One line to log: its level, event, message and fields."""

    level: int
    event: str
    message: str
    fields: Mapping[str, Any]


class RunLog:
    """Logs the run events of what a run service saves (register with :meth:`observe`)."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self.logger = logger

    def observe(self, runs: Any) -> RunLog:
        """Observe ``runs`` (a ``RunService``); returns self."""
        runs.observers.append(self)
        return self

    def ended(self, uow: UnitOfWork, attempts: Sequence[EndedAttempt]) -> None:
        """Attempt endings are logged from the executions they end (see :meth:`saved`)."""

    def saved(self, uow: UnitOfWork, changes: Sequence[RunChange], saved: SavedRuns) -> None:
        logger = self.logger
        if not changes or not logger.isEnabledFor(logging.WARNING):
            return
        levels = Levels(logger.isEnabledFor(logging.INFO), logger.isEnabledFor(logging.DEBUG))
        batch: list[tuple[Sequence[Line], tuple[str, ...]]] = []
        for change in changes:
            lines = run_lines(change, levels)
            if lines:
                state = change.new
                secrets = run_secrets(state) if state.context.secrets else ()
                batch.append((lines, secrets))
        if batch:
            uow.after_commit(lambda: self.write(batch))

    def write(self, batch: Sequence[tuple[Sequence[Line], tuple[str, ...]]]) -> None:
        for lines, secrets in batch:
            for line in lines:
                extra = {"event": line.event, **line.fields}
                if secrets:
                    extra["secrets"] = secrets
                self.logger.log(line.level, line.message, extra=extra)


@dataclass(frozen=True, slots=True)
class Levels:
    info: bool
    debug: bool


def run_lines(change: RunChange, levels: Levels) -> list[Line]:
    """The lines of one saved change of one run, in the order its commands were decided."""
    old, new = change.old, change.new
    base = {"run": new.run_id, "workflow": new.workflow, "trace_id": trace_id_of(new.run_id)}
    now = change.events[-1][1] if change.events else None
    published = _published(old, new) if levels.info else ()
    vars_task = _vars_task(change.commands) if published else None
    lines: list[Line] = []
    for command in change.commands:
        if isinstance(command, DispatchTask):
            _dispatched(lines, base, old, new, command, levels=levels)
        elif isinstance(command, EmitLifecycleEvent):
            execution = new.executions.get(command.execution)
            if execution is None:
                continue
            if command.status.is_terminal:
                lines.append(_task_ended(base, execution, command))
                if published and command.task == vars_task:
                    lines.append(_vars_line(base, published, command.task))
                    published = ()
            elif command.status is TaskStatus.RUNNING and execution.with_items and levels.info:
                lines.append(_items_scheduled(base, execution))
        elif isinstance(command, ScheduleTimer) and command.timer_kind is TimerKind.RETRY:
            retry = _delayed_retry(base, new, command, now, levels)
            if retry is not None:
                lines.append(retry)
        elif isinstance(command, StartChildRun) and levels.info:
            lines.append(_child_started(base, new, command))
        elif isinstance(command, RunStatusChanged):
            if command.status is RunStatus.RUNNING and levels.info and _starting(old):
                lines.append(_started(base, new))
                if published and vars_task is None:
                    lines.append(_vars_line(base, published, None))
                    published = ()
        elif isinstance(command, CompleteRun):
            if published:  # set by several tasks ending at once, or on the way to the end
                lines.append(_vars_line(base, published, None))
                published = ()
            if levels.info or command.status in _BAD_RUN:
                lines.append(_completed(base, new, command))
    if published:
        lines.append(_vars_line(base, published, None))
    return lines


# -- each event ------------------------------------------------------------------------------


def _starting(old: RunState | None) -> bool:
    return old is None or old.status is RunStatus.PENDING


def _started(base: Mapping[str, Any], new: RunState) -> Line:
    parent = new.context.parent_run_id
    fields = {**base, "version": new.definition_version, "parent_run": parent}
    message = f"run {new.run_id} of {new.workflow} started"
    return Line(logging.INFO, START, message, fields)


def _dispatched(
    lines: list[Line],
    base: Mapping[str, Any],
    old: RunState | None,
    new: RunState,
    command: DispatchTask,
    *,
    levels: Levels,
) -> None:
    dispatch = command.dispatch
    item = dispatch.item_index
    if dispatch.attempt > 1 and (item is None or levels.debug):
        retry = _immediate_retry(base, old, new, command)
        if retry is not None:
            lines.append(retry)
    if not (levels.debug if item is not None else levels.info):
        return
    fields = {
        **base,
        "task": dispatch.task,
        "attempt": dispatch.attempt,
        "execution": dispatch.execution,
        "item": item,
        "action": dispatch.action_ref,
        "queue": dispatch.queue,
        "attempt_id": dispatch.attempt_id,
    }
    what = f"task {dispatch.task}" if item is None else f"task {dispatch.task} item {item}"
    message = f"{what} scheduled (attempt {dispatch.attempt}, {dispatch.action_ref})"
    lines.append(Line(logging.INFO if item is None else logging.DEBUG, SCHEDULE, message, fields))


def _items_scheduled(base: Mapping[str, Any], execution: Execution) -> Line:
    count = len(execution.units)
    fields = {**base, "task": execution.task, "execution": execution.id, "items": count}
    return Line(logging.INFO, SCHEDULE, f"task {execution.task} scheduled: {count} items", fields)


def _child_started(base: Mapping[str, Any], new: RunState, command: StartChildRun) -> Line:
    ref = parse_attempt_id(command.parent_attempt_id)
    execution = None if ref is None else new.executions.get(ref.execution)
    fields = {
        **base,
        "task": None if execution is None else execution.task,
        "attempt": None if ref is None else ref.attempt,
        "execution": None if ref is None else ref.execution,
        "action": command.workflow,
        "attempt_id": command.parent_attempt_id,
    }
    message = f"child run {command.child_run_id} of {command.workflow} scheduled"
    return Line(logging.INFO, SCHEDULE, message, fields)


def _immediate_retry(
    base: Mapping[str, Any], old: RunState | None, new: RunState, command: DispatchTask
) -> Line | None:
    """A retry without delay: the unit's previous attempt failed in this same change (not
    lost, not after a retry timer, which was logged when it was set, not an operator's)."""
    dispatch = command.dispatch
    ref = parse_attempt_id(dispatch.attempt_id)
    if old is None or ref is None:
        return None
    before = _unit(old, ref.execution, ref.position)
    after = _unit(new, ref.execution, ref.position)
    if before is None or after is None or after.error is None:
        return None
    if before.attempt != dispatch.attempt - 1 or before.retry_base != after.retry_base:
        return None
    timer = old.timers.get(before.timer) if before.timer else None
    if timer is not None and timer.kind is TimerKind.RETRY:
        return None
    return _retry_line(
        base, dispatch.task, ref.execution, item=dispatch.item_index, unit=after, delay=None
    )


def _delayed_retry(
    base: Mapping[str, Any],
    new: RunState,
    command: ScheduleTimer,
    now: datetime | None,
    levels: Levels,
) -> Line | None:
    timer = new.timers.get(command.timer_id)
    if timer is None or timer.unit is None:
        return None
    execution = new.executions.get(timer.execution)
    if execution is None or timer.unit >= len(execution.units):
        return None
    unit = execution.units[timer.unit]
    if unit.index is not None and not levels.debug:
        return None
    delay = (command.fire_at - now).total_seconds() if now is not None else 0.0
    return _retry_line(base, execution.task, execution.id, item=unit.index, unit=unit, delay=delay)


def _retry_line(
    base: Mapping[str, Any],
    task: str,
    execution: int,
    *,
    item: int | None,
    unit: Unit,
    delay: float | None,
) -> Line:
    """``delay`` None: the next attempt is dispatched already (``unit`` is at it)."""
    error_type, error = _error(unit.error)
    next_attempt = unit.attempt if delay is None else unit.attempt + 1
    fields = {
        **base,
        "task": task,
        "attempt": next_attempt,
        "execution": execution,
        "item": item,
        "delay_s": round(max(delay or 0.0, 0.0), 3),
        "error_type": error_type,
        "error": error,
    }
    when = f"in {delay:g}s" if delay else "now"
    message = (
        f"task {task} attempt {next_attempt - 1} failed ({error_type}); "
        f"attempt {next_attempt} {when}"
    )
    return Line(logging.WARNING if item is None else logging.DEBUG, RETRY, message, fields)


def _task_ended(base: Mapping[str, Any], execution: Execution, command: EmitLifecycleEvent) -> Line:
    ended_at = execution.finished_at or command.at
    duration = round((ended_at - execution.started_at).total_seconds(), 3)
    units = execution.units
    fields: dict[str, Any] = {
        **base,
        "task": execution.task,
        "attempt": units[0].attempt or None if units and not execution.with_items else None,
        "execution": execution.id,
        "items": len(units) if execution.with_items else None,
        "status": command.status.value,
        "duration_s": duration,
    }
    if command.status in _BAD_TASK:
        error_type, error = _error(execution.error)
        fields.update(error_type=error_type, error=error)
        message = f"task {execution.task} {command.status.value} after {duration:g}s: {error_type}"
        return Line(logging.ERROR, TASK_FAILED, message, fields)
    message = f"task {execution.task} {command.status.value} in {duration:g}s"
    return Line(logging.INFO, TASK_COMPLETE, message, fields)


def _vars_line(base: Mapping[str, Any], names: Sequence[str], task: str | None) -> Line:
    fields = {**base, "task": task, "vars": list(names)}
    return Line(logging.INFO, VARS, f"variables published: {', '.join(names)}", fields)


def _completed(base: Mapping[str, Any], new: RunState, command: CompleteRun) -> Line:
    duration = None
    if new.started_at is not None and new.finished_at is not None:
        duration = round((new.finished_at - new.started_at).total_seconds(), 3)
    fields: dict[str, Any] = {**base, "status": command.status.value, "duration_s": duration}
    level = logging.INFO
    if command.error is not None:
        error_type, error = _error(command.error)
        fields.update(error_type=error_type, error=error)
    if command.status in _BAD_RUN:
        level = logging.ERROR
    took = f" in {duration:g}s" if duration is not None else ""
    return Line(level, COMPLETE, f"run {new.run_id} {command.status.value}{took}", fields)


# -- helpers ---------------------------------------------------------------------------------


def _published(old: RunState | None, new: RunState) -> tuple[str, ...]:
    """The names of the variables this change set (compared by identity: the core copies
    only what it changes)."""
    if old is not None and old.vars is new.vars:
        return ()
    before = old.vars if old is not None else {}
    missing = object()
    return tuple(name for name, value in new.vars.items() if before.get(name, missing) is not value)


def _vars_task(commands: Sequence[Command]) -> str | None:
    """The task that published, when exactly one execution ended in the change."""
    ended = [c.task for c in commands if isinstance(c, EmitLifecycleEvent) and c.status.is_terminal]
    return ended[0] if len(ended) == 1 else None


def _unit(state: RunState, execution_id: int, position: int) -> Unit | None:
    execution = state.executions.get(execution_id)
    if execution is None or position >= len(execution.units):
        return None
    return execution.units[position]


def _error(error: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    if not error:
        return None, None
    message = error.get("message")
    text = None if message is None else str(message)[:MAX_ERROR_CHARS]
    error_type = error.get("type")
    return (None if error_type is None else str(error_type)), text
