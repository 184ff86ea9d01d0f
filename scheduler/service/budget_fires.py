"""A schedule's fire skipped because its previous run is stopped by its budget.

Budgets are per run (``docs/governance.md#budgets``), so a budget never refuses a fire's
start by itself. But a run its budget stopped stays paused, still going: under the
``skip`` overlap policy the next fires find it and are skipped. They are recorded as
``skipped_budget``, naming the run and the limit it reached, rather than as an ordinary
overlap: the schedule does not run because a budget holds it.
"""

from __future__ import annotations

from collections.abc import Iterable

from treadle.common.errors import NotFound
from treadle.scheduler.store import UnitOfWork

__all__ = ["budget_hold"]


def budget_hold(uow: UnitOfWork, run_ids: Iterable[str | None]) -> str | None:
    """Why a budget holds one of these runs of a schedule, in words (``None``: none is)."""
    for run_id in run_ids:
        if run_id is None:
            continue
        try:
            state = uow.load_run_overview(run_id, failures=0).state
        except NotFound:
            continue
        stop = None if state.budget is None else state.budget.stop
        if stop is not None:
            return f"run {run_id} of the schedule is stopped by its {stop.kind.value} budget: " + (
                stop.message
            )
    return None
