"""``treadle_budget_stops_total{kind}``, ``treadle_cost_usd_total{workflow}`` and
``treadle_step_cost_usd{action}``, read from what a transaction saved.

A budget stop is a run whose state gained a hard stop (``RunState.budget.stop``: kind
``cost_usd``, ``wall_time``, ``attempts`` or ``items``); a step failed by its cost ceiling
counts as kind ``step_cost_usd``. Cost is what each action's attempt that ended in the
change reports (``cost_usd``, or ``cost_cents`` / 100; a step over its ceiling reports it
in its error). :class:`~treadle.scheduler.service.run_metrics.RunMetrics` holds one and
counts through it, once the transaction commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from treadle.common.budget import result_cost_usd
from treadle.common.graph import Node, NodeKind
from treadle.common.metrics import Metrics
from treadle.common.statuses import TaskStatus
from treadle.scheduler.core.budgets import COST_CEILING_EXCEEDED
from treadle.scheduler.core.state import Execution, RunState, Unit
from treadle.scheduler.store import RunChange

Count = tuple[Callable[[float], None], float]
#: The node of a run's task (``None`` when its definition is gone).
NodeOf = Callable[[RunState, str], Node | None]
#: The ``kind`` a step failed by its cost ceiling is counted under.
STEP_CEILING = "step_cost_usd"


class BudgetCounts:
    """The budget and cost metrics, fed by saved changes."""

    def __init__(self, metrics: Metrics) -> None:
        self._stops = metrics.counter("treadle_budget_stops")
        self._cost = metrics.counter("treadle_cost_usd")
        self._step_cost = metrics.histogram("treadle_step_cost_usd")

    def count(self, change: RunChange, counts: list[Count], node_of: NodeOf) -> None:
        """The budget stops and the costs of ``change`` (``node_of``: a task's node)."""
        new, old = change.new, change.old
        stop = None if new.budget is None else new.budget.stop
        before = None if old is None or old.budget is None else old.budget.stop
        if stop is not None and not stop.soft and stop != before:
            counts.append((self._stops.labels(stop.kind.value).inc, 1.0))
        before_executions = old.executions if old is not None else {}
        for execution_id, execution in new.executions.items():
            was = before_executions.get(execution_id)
            if was is execution:
                continue
            for cost, ceiling in _costs(was, execution):
                if cost <= 0 and not ceiling:
                    continue
                node = node_of(new, execution.task)
                if node is None or node.kind is not NodeKind.ACTION:
                    continue
                if ceiling:
                    counts.append((self._stops.labels(STEP_CEILING).inc, 1.0))
                if cost > 0:
                    action = node.spec.action or node.name
                    counts.append((self._cost.labels(new.workflow).inc, cost))
                    counts.append((self._step_cost.labels(action).observe, cost))


def _costs(old: Execution | None, new: Execution) -> Iterator[tuple[float, bool]]:
    """``(cost, over its ceiling)`` of each unit of ``new`` that ended in this change (chunk
    by chunk: the chunks of a big with_items execution that did not change are skipped)."""
    old_chunks = old.units.chunks if old is not None else ()
    for index, chunk in enumerate(new.units.chunks):
        was_chunk = old_chunks[index] if index < len(old_chunks) else ()
        if was_chunk is chunk:
            continue
        for position, unit in enumerate(chunk):
            was = was_chunk[position] if position < len(was_chunk) else None
            if was is unit or not unit.status.is_terminal:
                continue
            if was is not None and was.status is unit.status and was.attempt == unit.attempt:
                continue
            yield _ended_cost(unit)


def _ended_cost(unit: Unit) -> tuple[float, bool]:
    if unit.status is TaskStatus.SUCCEEDED and unit.child_run_id is None:
        return result_cost_usd(unit.result), False
    error: Any = unit.error or {}
    if error.get("type") == COST_CEILING_EXCEEDED:
        return result_cost_usd(error.get("details") or {}), True
    return 0.0, False
