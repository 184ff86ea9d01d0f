"""A run's budget as people read it: in the run document, and in "why is it stuck".

Shape of the run document's ``budget`` (present only for a run with a budget)::

    {limits: {cost_usd?, wall_time?, attempts?, items?, soft_ratio?, step_cost_usd?},
     spent: {cost_usd, attempts, items},
     stopped: {kind, soft, message, inquiry} | null}

``wall_time`` is in seconds. ``stopped`` says why the budget paused the run: a hard limit
reached (resume it with a higher one: ``treadle runs resume ID --budget cost_usd=50``), or
a soft ratio passed (``inquiry`` is the question to answer ``{"continue": true}``).
"""

from __future__ import annotations

from typing import Any

from treadle.common.budget import BudgetKind
from treadle.scheduler.core.state import RunState

__all__ = ["budget_document", "budget_stop_message"]


def budget_document(state: RunState) -> dict[str, Any] | None:
    """The ``budget`` of the run document (``None`` for a run without a budget)."""
    budget = state.budget
    if budget is None:
        return None
    stop = budget.stop
    return {
        "limits": budget.limits().as_json(),
        "spent": {
            BudgetKind.COST.value: budget.spent_usd,
            BudgetKind.ATTEMPTS.value: budget.attempts_made,
            BudgetKind.ITEMS.value: budget.items_started,
        },
        "stopped": None
        if stop is None
        else {
            "kind": stop.kind.value,
            "soft": stop.soft,
            "message": stop.message,
            "inquiry": stop.inquiry_id,
        },
    }


def budget_stop_message(state: RunState) -> str | None:
    """Why the budget holds the run, and what to do, in words (``None``: it does not)."""
    budget = state.budget
    stop = None if budget is None else budget.stop
    if stop is None:
        return None
    if stop.soft:
        return (
            f"stopped by its budget: {stop.message} Answer inquiry {stop.inquiry_id} with "
            '{"continue": true} to go on (or false to cancel the run)'
        )
    return (
        f"stopped by its {stop.kind.value} budget: {stop.message}; resume it with a higher "
        f"limit: treadle runs resume {state.run_id} --budget {stop.kind.value}=..."
    )
