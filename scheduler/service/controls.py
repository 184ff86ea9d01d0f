"""Lifecycle controls of a run: which statuses each applies to, and applying one safely.

The core ignores a control that does not fit the run (resuming a run that is not paused
changes nothing), which is right for an event log but useless to the person who asked:
they must be told why nothing happened. So the client and the CLI check first, and the
check and the change happen in one transaction with the run locked: a run that ends
between the check and the change cannot slip through, and a refused control stores
nothing at all.

Pause, resume and cancel reach the run's child runs (and theirs) in that same
transaction. The core also writes them to the outbox for the relay, but a relayed pause
comes late: a child task that ends in between would start its successor after the
operator was told nothing new starts. The relayed copy then finds the child already
paused (or resumed, or ended) and changes nothing.
"""

from __future__ import annotations

from sqlalchemy import select

from treadle.common.budget import Budget
from treadle.common.errors import NotFound, ParameterError
from treadle.common.statuses import RunStatus
from treadle.scheduler.core.events import (
    BudgetChanged,
    CancelRequested,
    CompensateRequested,
    Event,
    PauseRequested,
    ResumeRequested,
    RetryRequested,
)
from treadle.scheduler.core.state import RunState
from treadle.scheduler.core.task_retry import RETRYABLE_TASKS, enclosing, retry_target
from treadle.scheduler.service.budget_controls import budget_refusal
from treadle.scheduler.service.control_rules import (
    APPLIES_TO,
    STILL_GOING,
    Control,
    ControlRefused,
    refusal,
)
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.store.models import runs as runs_table
from treadle.scheduler.store.uow import UnitOfWork

__all__ = [
    "APPLIES_TO",
    "Control",
    "ControlRefused",
    "UnknownTask",
    "apply_control",
    "apply_control_in",
    "check_retry_task",
    "refusal",
]


class UnknownTask(NotFound):
    """A retry names a task the run's definition does not have (a 404, as an unknown run)."""


def events_for(
    control: Control,
    reason: str | None = None,
    by: str | None = None,
    budget: Budget | None = None,
    task: str | None = None,
) -> list[Event]:
    """The core events that carry out ``control`` (asked for by ``by``; a resume with new
    budget limits sets them first; a retry naming ``task`` retries from that task)."""
    if control is Control.PAUSE:
        return [PauseRequested(reason=reason, by=by)]
    if control is Control.RESUME and budget is not None:
        return [BudgetChanged(budget=budget, reason=reason, by=by), ResumeRequested(reason, by)]
    if control is Control.RESUME:
        return [ResumeRequested(reason=reason, by=by)]
    if control is Control.CANCEL:
        return [CancelRequested(reason=reason, by=by)]
    if control is Control.RETRY:
        return [RetryRequested(reason=reason, by=by, task=task)]
    return [
        CancelRequested(reason=reason or "canceled to compensate", by=by),
        CompensateRequested(reason=reason, by=by),
    ]


def apply_control(
    runs: RunService,
    run_id: str,
    control: Control,
    *,
    reason: str | None = None,
    by: str | None = None,
    budget: Budget | None = None,
    task: str | None = None,
) -> RunState:
    """Check and apply ``control`` to ``run_id`` in one transaction; returns the new state.

    Raises NotFound for an unknown run and :class:`ControlRefused` (storing nothing) when
    the control does not apply to the run's status. Whatever the control starts (attempts,
    child-run controls) is written to the outbox for a relay to carry out. ``budget``
    (resume only) sets new limits of the run's budget before it resumes; ``task`` (retry
    only) retries from that task (:func:`check_retry_task`).
    """
    with runs.store.unit_of_work() as uow:
        apply_control_in(uow, runs, run_id, control, reason=reason, by=by, budget=budget, task=task)
    cached = runs.cached(run_id)
    return cached if cached is not None else runs.load(run_id)


def apply_control_in(
    uow: UnitOfWork,
    runs: RunService,
    run_id: str,
    control: Control,
    *,
    reason: str | None = None,
    by: str | None = None,
    cascade: bool = True,
    budget: Budget | None = None,
    task: str | None = None,
) -> None:
    """:func:`apply_control` in the caller's transaction (the relay carries out the
    core's child-run controls this way, with ``cascade=False``: each child's own commands
    reach its children, and a child its budget stopped resumes to stop again)."""
    uow.lock_run(run_id)  # NotFound for an unknown run
    status = RunStatus(
        uow.connection.execute(
            select(runs_table.c.status).where(runs_table.c.id == run_id)
        ).scalar_one()
    )
    if task is not None and control is not Control.RETRY:
        raise ParameterError([f"only a retry names a task, not {control.value}"], subject="task")
    if task is not None:
        check_retry_task(uow, runs, run_id, task, status)
    why = refusal(control, run_id, status)
    if why is not None:
        raise ControlRefused(why, run_id=run_id, control=control, status=status)
    if budget is not None and control is not Control.RESUME:
        problem = "new budget limits are given only when resuming a run"
        raise ParameterError([problem], subject="budget")
    if control is Control.RESUME and cascade:
        stopped = budget_refusal(uow, runs, run_id, budget)
        if stopped is not None:
            raise ControlRefused(stopped, run_id=run_id, control=control, status=status)
    events = events_for(control, reason, by, budget, task)
    runs.apply_in(uow, [(run_id, event) for event in events])
    child_control = _for_child_runs(control, run_id) if cascade else None
    if child_control is not None:
        event, wanted = child_control
        children = _descendants(uow, run_id, wanted)
        runs.apply_in(uow, [(child, event) for child in children])


def check_retry_task(
    uow: UnitOfWork, runs: RunService, run_id: str, task: str, status: RunStatus
) -> None:
    """Refuse a retry from ``task`` that cannot be: :class:`UnknownTask` (a NotFound)
    when the run's definition has no task by that name; :class:`ControlRefused` when the run has not
    ended failed, timed out or canceled, or the task's latest execution did not end so
    (``scheduler/core/task_retry.py`` :func:`retry_target`)."""
    state = uow.load_run(run_id)
    graph = runs.definitions.pinned(
        state.workflow, state.definition_version, uow, workspace=state.workspace
    ).graph
    node = graph.nodes.get(task)
    if node is None or node.hidden:
        raise UnknownTask(f"run {run_id} has no task '{task}'")
    why = refusal(Control.RETRY, run_id, status)
    if why is None and retry_target(state, task) is None:
        why = (
            f"task '{task}' of run {run_id} did not fail: {_how_it_ended(state, task)}; only "
            "a task whose latest execution failed, timed out or was canceled can be retried"
        )
    if why is not None:
        raise ControlRefused(why, run_id=run_id, control=Control.RETRY, status=status)


def _how_it_ended(state: RunState, task: str) -> str:
    """Why :func:`retry_target` found nothing to retry, in words."""
    latest = state.latest_execution(task)
    if latest is None:
        return "it has not run"
    if latest.status in RETRYABLE_TASKS:  # then a block around it did not end badly
        block = next(b for b in enclosing(state, latest) if b.status not in RETRYABLE_TASKS)
        return f"the parallel block '{block.task}' around it is {block.status.value}"
    return f"it is {latest.status.value}"


def _for_child_runs(control: Control, run_id: str) -> tuple[Event, frozenset[RunStatus]] | None:
    """The event a control carries down to child runs, and the child statuses it acts on."""
    if control is Control.PAUSE:
        return PauseRequested(), frozenset({RunStatus.RUNNING})
    if control is Control.RESUME:
        return ResumeRequested(), frozenset({RunStatus.PAUSING, RunStatus.PAUSED})
    if control in (Control.CANCEL, Control.COMPENSATE):
        # as the relay words it when it carries out the core's CancelChildRun
        return CancelRequested(reason=f"its parent run {run_id} canceled it"), STILL_GOING
    return None


def _descendants(uow: UnitOfWork, run_id: str, wanted: frozenset[RunStatus]) -> list[str]:
    """The child runs under ``run_id`` (at any depth) that have not ended and are in one of
    ``wanted``, in id order (a child's id extends its parent's, so runs lock top-down)."""
    found: list[str] = []
    level = [run_id]
    while level:
        rows = uow.connection.execute(
            select(runs_table.c.id, runs_table.c.status).where(
                runs_table.c.parent_run_id.in_(level)
            )
        ).all()
        going = [(child, RunStatus(status)) for child, status in rows]
        going = [(child, status) for child, status in going if status in STILL_GOING]
        found.extend(child for child, status in going if status in wanted)
        level = [child for child, _status in going]
    return sorted(found)
