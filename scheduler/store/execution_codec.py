"""Task executions and their units as ``task_executions`` and ``task_units`` rows.

Pure conversions with an exact inverse, as the rest of :mod:`treadle.scheduler.store.codec`
(which re-exports them): a run's executions are rows of their own, each unit too, so a
change to one item of a big with_items task writes one row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from treadle.common.statuses import TaskStatus
from treadle.scheduler.core.state import Execution, Unit, Units

JSONDict = dict[str, Any]


def _opt_dict(value: Mapping[str, Any] | None) -> JSONDict | None:
    return None if value is None else dict(value)


def execution_to_row(run_id: str, execution: Execution) -> JSONDict:
    """The ``task_executions`` row of ``execution`` (its units are rows of their own)."""
    return {
        "run_id": run_id,
        "execution_id": execution.id,
        "task": execution.task,
        "scope": execution.scope,
        "status": execution.status.value,
        "started_at": execution.started_at,
        "finished_at": execution.finished_at,
        "with_items": execution.with_items,
        "next_unit": execution.next_unit,
        "in_flight": execution.in_flight,
        "done": execution.done,
        "unit_count": len(execution.units),
        "result": execution.result,
        "error": _opt_dict(execution.error),
        "timer": execution.timer,
        "inquiry_id": execution.inquiry_id,
        "released_with": execution.released_with,
        "waits_for": _opt_dict(execution.waits_for),
        "compensates": execution.compensates,
    }


def unit_to_row(run_id: str, execution_id: int, position: int, unit: Unit) -> JSONDict:
    """The ``task_units`` row of the unit at ``position`` in its execution's ``units``."""
    return {
        "run_id": run_id,
        "execution_id": execution_id,
        "position": position,
        "item_index": unit.index,
        "item": unit.item,
        "status": unit.status.value,
        "attempt": unit.attempt,
        "result": unit.result,
        "error": _opt_dict(unit.error),
        "started_at": unit.started_at,
        "finished_at": unit.finished_at,
        "timer": unit.timer,
        "inquiry_id": unit.inquiry_id,
        "child_run_id": unit.child_run_id,
        "result_bytes": unit.result_bytes,
        "waits_for": _opt_dict(unit.waits_for),
        "retry_base": unit.retry_base,
    }


def unit_from_row(row: Mapping[Any, Any]) -> Unit:
    return Unit(
        index=row["item_index"],
        item=row["item"],
        status=TaskStatus(row["status"]),
        attempt=row["attempt"],
        result=row["result"],
        error=row["error"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        timer=row["timer"],
        inquiry_id=row["inquiry_id"],
        child_run_id=row["child_run_id"],
        result_bytes=row["result_bytes"],
        waits_for=row["waits_for"],
        retry_base=row["retry_base"],
    )


def execution_from_row(row: Mapping[Any, Any], units: Iterable[Unit]) -> Execution:
    return Execution(
        id=row["execution_id"],
        task=row["task"],
        scope=row["scope"],
        status=TaskStatus(row["status"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        units=Units(units),
        with_items=row["with_items"],
        next_unit=row["next_unit"],
        in_flight=row["in_flight"],
        done=row["done"],
        result=row["result"],
        error=row["error"],
        timer=row["timer"],
        inquiry_id=row["inquiry_id"],
        released_with=row["released_with"],
        waits_for=row["waits_for"],
        compensates=row["compensates"],
    )


__all__ = ["execution_from_row", "execution_to_row", "unit_from_row", "unit_to_row"]
