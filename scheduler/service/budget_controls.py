"""Resuming a run its budget stopped: checked before anything is stored.

``treadle runs resume ID --budget cost_usd=50`` (the API's resume with ``budget``,
``Client.resume(budget=...)``) sets new limits and resumes in one transaction
(:func:`~treadle.scheduler.service.controls.apply_control_in`). Two things are refused
first, with what to do instead: a limit above the workspace's ceiling
(``TREADLE_BUDGET_LIMITS``; a ParameterError naming it), and a resume that would stop again
at once because the limit the run reached was not raised enough (a ControlRefused saying
which limit, and a value that would do).
"""

from __future__ import annotations

from treadle.common.budget import Budget
from treadle.common.errors import ParameterError
from treadle.scheduler.core.budgets import still_stopped
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.store.uow import UnitOfWork

__all__ = ["budget_refusal"]


def budget_refusal(
    uow: UnitOfWork, runs: RunService, run_id: str, budget: Budget | None
) -> str | None:
    """Why resuming ``run_id`` with ``budget`` cannot go on (``None``: it can). Raises
    ParameterError for a limit above the workspace's ceiling."""
    state = uow.load_run_overview(run_id, failures=0).state
    if budget is not None:
        above = budget.above(state.context.budget_ceiling)
        if above:
            raise ParameterError(above, subject=f"budget of run {run_id}")
    if state.budget is None or state.budget.stop is None:
        return None
    return still_stopped(state, budget, runs.clock())
