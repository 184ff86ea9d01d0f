"""Operator controls of a run: pause, resume, retry, compensate (cancel is in ``finish``).

* **Pause**: the run is ``pausing``: nothing new starts (new executions, unit launches,
  retries and ended delays are *deferred*, in order), running attempts finish and their
  results are applied; once nothing is in flight the run is ``paused``. Child runs pause
  with it. **Resume** replays the deferred work, in order, and resumes the children.
* **Retry** a run that ended failed, timed out or canceled: the executions that ended
  badly without a transition handling it, and those that were cancelled, are reopened in
  place: a with_items execution re-runs only its items that did not succeed, a parallel
  block only its nested tasks that did not; succeeded work and published variables stay.
* **Retry from one task** (a retry naming it) is :mod:`treadle.scheduler.core.task_retry`;
  it reopens that task's execution the same way (:func:`reopen`).
* **Compensate** an ended run: every succeeded execution whose task names a
  ``compensate`` action is undone, one at a time, newest first (a reverse topological
  order: a task always ran after the tasks it depends on), each succeeded item of a
  with_items task included. The run ends ``compensated``, or ``failed`` naming the
  compensation that failed.
"""

from __future__ import annotations

from typing import Any

from treadle.common.graph import NodeKind
from treadle.common.statuses import (
    TASK_RETRY_TRANSITIONS,
    TASK_TRANSITIONS,
    RunStatus,
    TaskStatus,
    moved,
)
from treadle.scheduler.core import completion
from treadle.scheduler.core.commands import (
    EmitLifecycleEvent,
    PauseChildRun,
    ReportPausedToParent,
    ResumeChildRun,
)
from treadle.scheduler.core.errors import error_info
from treadle.scheduler.core.state import (
    ROOT_SCOPE,
    Deferred,
    DeferredKind,
    Execution,
    TimerKind,
    Unit,
    Units,
    evolve,
)
from treadle.scheduler.core.transaction import (
    AgendaItem,
    Begin,
    FillUnits,
    Relaunch,
    StartTask,
    Tx,
)

_BAD = (TaskStatus.FAILED, TaskStatus.TIMED_OUT, TaskStatus.CANCELED)

# -- pause and resume ----------------------------------------------------------------------


def pause(tx: Tx) -> None:
    if tx.status is not RunStatus.RUNNING:
        return
    tx.move_run(RunStatus.PAUSING)
    for child in _child_runs(tx):
        tx.emit(PauseChildRun(child))


def resume(tx: Tx) -> None:
    if not tx.holding:
        return
    tx.move_run(RunStatus.RUNNING)
    for item in tx.deferred:
        tx.agenda.append(_agenda_item(item))
    tx.deferred = ()
    tx.paused_children = ()
    for child in _child_runs(tx):
        tx.emit(ResumeChildRun(child))
    tx.scopes_to_check.add(ROOT_SCOPE)


def defer(tx: Tx, item: AgendaItem) -> None:
    """Hold back a piece of work while the run is pausing or paused."""
    if isinstance(item, StartTask):
        tx.defer(Deferred(DeferredKind.START, task=item.task, scope=item.scope))
    elif isinstance(item, FillUnits):
        tx.defer(Deferred(DeferredKind.FILL, execution=item.execution))
    elif isinstance(item, Relaunch):
        tx.defer(Deferred(DeferredKind.RELAUNCH, execution=item.execution, position=item.position))
    else:
        tx.defer(Deferred(DeferredKind.BEGIN, execution=item.execution))


def _agenda_item(item: Deferred) -> AgendaItem:
    if item.kind is DeferredKind.START:
        return StartTask(item.task, item.scope)
    if item.kind is DeferredKind.FILL:
        return FillUnits(item.execution)
    if item.kind is DeferredKind.RELAUNCH:
        return Relaunch(item.execution, item.position)
    return Begin(item.execution)


def settle_pause(tx: Tx) -> None:
    """A pausing run becomes ``paused`` once no attempt and no running child run is in
    flight; a child run of a run pausing with it tells its parent when it is paused."""
    if tx.status is RunStatus.PAUSING and not _in_flight(tx):
        tx.move_run(RunStatus.PAUSED)
        parent = tx.context.parent_run_id
        if parent is not None:
            tx.emit(ReportPausedToParent(parent))


def child_paused(tx: Tx, child_run_id: str) -> None:
    """A child run reports it is paused: while this run pauses, its work counts as done."""
    if not tx.holding or child_run_id in tx.paused_children:
        return  # paused on its own (an operator paused only the child): nothing to settle
    if child_run_id in _child_runs(tx):
        tx.paused_children = (*tx.paused_children, child_run_id)


def _in_flight(tx: Tx) -> bool:
    held = {(d.execution, d.position) for d in tx.deferred if d.kind is DeferredKind.RELAUNCH}
    paused = set(tx.paused_children)
    for execution in tx.executions.values():
        if not execution.is_active:
            continue
        for position, unit in enumerate(execution.units):
            if unit.status is not TaskStatus.RUNNING or (execution.id, position) in held:
                continue
            if unit.child_run_id is not None and unit.child_run_id in paused:
                continue
            timer = tx.timers.get(unit.timer) if unit.timer else None
            if timer is None or timer.kind is not TimerKind.RETRY:
                return True
    return False


def _child_runs(tx: Tx) -> list[str]:
    children = []
    for execution in tx.executions.values():
        if not execution.is_active:
            continue
        if tx.graph.node(execution.task).kind is not NodeKind.WORKFLOW:
            continue
        for unit in execution.units:
            if unit.status is TaskStatus.RUNNING and unit.child_run_id is not None:
                children.append(unit.child_run_id)
    return children


# -- retry ---------------------------------------------------------------------------------


def retry(tx: Tx) -> None:
    """Reopen what ended badly and was not handled, and what was cancelled."""
    if tx.status not in (RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.CANCELED):
        return
    unhandled = {f.execution for failures in tx.failures.values() for f in failures}
    again = sorted(
        e.id
        for e in tx.executions.values()
        if e.compensates is None and (e.id in unhandled or e.status is TaskStatus.CANCELED)
    )
    for scope in list(tx.failures):
        tx.clear_failures(scope)
    tx.finished_at = None
    tx.error = None
    tx.output = None
    tx.move_run(RunStatus.RUNNING)
    for execution_id in again:
        reopen(tx, tx.execution(execution_id))
    tx.scopes_to_check.add(ROOT_SCOPE)


def reopen(tx: Tx, execution: Execution) -> None:
    """Run an execution that ended badly again, in place: a parallel block goes on (its
    nested executions are reopened on their own), a task cancelled before its work began
    starts again, any other re-runs its units that did not succeed (attempts keep
    counting; each gets its whole retry policy again)."""
    node = tx.graph.node(execution.task)
    tx.activate(execution.scope)
    fresh: dict[str, Any] = {"finished_at": None, "result": None, "error": None, "timer": None}
    if node.kind is NodeKind.PARALLEL:
        running = moved(TASK_RETRY_TRANSITIONS, execution.status, TaskStatus.RUNNING)
        tx.put(evolve(execution, status=running, **fresh))
        tx.scopes_to_check.add(execution.id)
        return
    if not execution.units:  # cancelled before its work began (delay, wait_for)
        scheduled = moved(TASK_RETRY_TRANSITIONS, execution.status, TaskStatus.SCHEDULED)
        tx.put(evolve(execution, status=scheduled, inquiry_id=None, **fresh))
        tx.agenda.append(Begin(execution.id))
        return
    units = list(execution.units)
    reset = [p for p, unit in enumerate(units) if unit.status in _BAD]
    for position in reset:
        old = units[position]
        units[position] = Unit(
            index=old.index,
            item=old.item,
            status=moved(TASK_RETRY_TRANSITIONS, old.status, TaskStatus.SCHEDULED),
            attempt=old.attempt,
            retry_base=old.attempt,
        )
    tx.put(
        evolve(
            execution,
            status=moved(TASK_RETRY_TRANSITIONS, execution.status, TaskStatus.RUNNING),
            units=Units(units),
            done=sum(1 for unit in units if unit.status.is_terminal),
            in_flight=0,
            next_unit=min(reset, default=len(units)),
            **fresh,
        )
    )
    tx.emit(EmitLifecycleEvent(execution.task, execution.id, TaskStatus.RUNNING, tx.now))
    tx.agenda.append(FillUnits(execution.id))


# -- compensation --------------------------------------------------------------------------


def compensate(tx: Tx) -> None:
    """Start undoing an ended run's succeeded work, newest first."""
    if not tx.status.is_terminal or tx.status is RunStatus.COMPENSATED:
        return
    plan = tuple(
        e.id
        for e in sorted(tx.executions.values(), key=lambda e: e.id, reverse=True)
        if e.compensates is None
        and e.task in tx.graph.compensation_of
        and any(u.status is TaskStatus.SUCCEEDED for u in e.units)
    )
    tx.finished_at = None
    tx.move_run(RunStatus.COMPENSATING)
    tx.compensation = plan
    next_compensation(tx)


def next_compensation(tx: Tx) -> None:
    if not tx.compensation:
        error = None if tx.error is None else dict(tx.error)
        completion.finalize_run(tx, RunStatus.COMPENSATED, output=tx.output, error=error)
        return
    original = tx.execution(tx.compensation[0])
    tx.compensation = tx.compensation[1:]
    units = Units(
        Unit(index=u.index, item=u.item) for u in original.units if u.status is TaskStatus.SUCCEEDED
    )
    undo = Execution(
        id=tx.next_execution,
        task=tx.graph.compensation_of[original.task],
        scope=ROOT_SCOPE,
        status=TaskStatus.RUNNING,
        started_at=tx.now,
        units=units,
        with_items=original.with_items,
        compensates=original.id,
    )
    tx.next_execution += 1
    tx.add_execution(undo)
    tx.emit(EmitLifecycleEvent(undo.task, undo.id, TaskStatus.RUNNING, tx.now))
    tx.agenda.append(FillUnits(undo.id))


def compensation_ended(tx: Tx, execution: Execution) -> None:
    """A compensation execution ended: mark what it undid, then the next, or fail the run."""
    assert execution.compensates is not None
    original = tx.execution(execution.compensates)
    if execution.status is TaskStatus.SUCCEEDED:
        undone = {u.index for u in execution.units}
        units = Units(
            evolve(u, status=moved(TASK_TRANSITIONS, u.status, TaskStatus.COMPENSATED))
            if u.status is TaskStatus.SUCCEEDED and u.index in undone
            else u
            for u in original.units
        )
        status = original.status  # one that did not succeed as a whole keeps its status
        if status is TaskStatus.SUCCEEDED:
            status = moved(TASK_TRANSITIONS, status, TaskStatus.COMPENSATED)
        tx.put(evolve(original, units=units, status=status))
        tx.emit(EmitLifecycleEvent(original.task, original.id, status, tx.now))
        next_compensation(tx)
        return
    what = "timed out" if execution.status is TaskStatus.TIMED_OUT else "failed"
    detail = (execution.error or {}).get("message")
    message = f"compensation of task '{original.task}' {what}" + (f": {detail}" if detail else "")
    tx.compensation = ()
    completion.finalize_run(
        tx,
        RunStatus.FAILED,
        error=error_info("CompensationFailed", message, task=original.task),
    )
