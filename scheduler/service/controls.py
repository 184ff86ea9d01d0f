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
from treadle.common.errors import ParameterError
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
    "apply_control",
    "apply_control_in",
    "refusal",
]


def events_for(
    control: Control,
    reason: str | None = None,
    by: str | None = None,
    budget: Budget | None = None,
) -> list[Event]:
    """The core events that carry out ``control`` (asked for by ``by``; a resume with new
    budget limits sets them first)."""
    if control is Control.PAUSE:
        return [PauseRequested(reason=reason, by=by)]
    if control is Control.RESUME and budget is not None:
        return [BudgetChanged(budget=budget, reason=reason, by=by), ResumeRequested(reason, by)]
    if control is Control.RESUME:
        return [ResumeRequested(reason=reason, by=by)]
    if control is Control.CANCEL:
        return [CancelRequested(reason=reason, by=by)]
    if control is Control.RETRY:
        return [RetryRequested(reason=reason, by=by)]
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
) -> RunState:
    """Check and apply ``control`` to ``run_id`` in one transaction; returns the new state.

    Raises NotFound for an unknown run and :class:`ControlRefused` (storing nothing) when
    the control does not apply to the run's status. Whatever the control starts (attempts,
    child-run controls) is written to the outbox for a relay to carry out. ``budget``
    (resume only) sets new limits of the run's budget before it resumes.
    """
    with runs.store.unit_of_work() as uow:
        apply_control_in(uow, runs, run_id, control, reason=reason, by=by, budget=budget)
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
    events = events_for(control, reason, by, budget)
    runs.apply_in(uow, [(run_id, event) for event in events])
    child_control = _for_child_runs(control, run_id) if cascade else None
    if child_control is not None:
        event, wanted = child_control
        children = _descendants(uow, run_id, wanted)
        runs.apply_in(uow, [(child, event) for child in children])


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
