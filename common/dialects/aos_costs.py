"""The AOS policy enforcer's cost fields, read from a plan as dollars.

AOS counts money in cents: a plan may give ``workflow_ceiling_cents`` (the run's budget)
and ``step_ceiling_cents`` (every step's ceiling), a step its own ``step_ceiling_cents``
and ``estimated_cost_cents``. Treadle counts in US dollars, so each is divided by 100 as it
is read: ``budget.cost_usd``, ``budget.step_cost_usd``, ``cost_ceiling_usd`` and
``cost_estimate_usd`` (``docs/governance.md#budgets``). A skill's result may report
``cost_cents``; the core converts that when it counts it.
"""

from __future__ import annotations

from typing import Any, Final

from treadle.common.budget import Budget
from treadle.common.loader.guard_fields import read_usd
from treadle.common.loader.reader import Reader
from treadle.common.source import Path

#: The plan's cost fields, and each step's.
PLAN_COST_FIELDS: Final = ("workflow_ceiling_cents", "step_ceiling_cents")
STEP_COST_FIELDS: Final = ("estimated_cost_cents", "step_ceiling_cents")


def plan_budget(reader: Reader, plan: Any, path: Path) -> Budget | None:
    """The run's budget a plan declares (``None`` when it declares none)."""
    if not isinstance(plan, dict):
        return None
    cost = _dollars(reader, plan, path, "workflow_ceiling_cents")
    step = _dollars(reader, plan, path, "step_ceiling_cents")
    if cost is None and step is None:
        return None
    return Budget(cost_usd=cost, step_cost_usd=step)


def step_costs(reader: Reader, step: dict[str, Any], path: Path) -> dict[str, float]:
    """A step's ``cost_estimate_usd`` and ``cost_ceiling_usd``, those it gives."""
    found = {
        "cost_estimate_usd": _dollars(reader, step, path, "estimated_cost_cents"),
        "cost_ceiling_usd": _dollars(reader, step, path, "step_ceiling_cents"),
    }
    return {key: value for key, value in found.items() if value is not None}


def _dollars(reader: Reader, entry: dict[str, Any], path: Path, key: str) -> float | None:
    cents = read_usd(reader, entry.get(key), (*path, key), f"'{key}'", unit="cents")
    return None if cents is None else round(cents / 100, 6)
