"""The identity diff finds exactly the units the core replaced (no database needed)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from treadle.common.statuses import TaskStatus
from treadle.scheduler.core.state import Execution, Unit, Units
from treadle.scheduler.store.execution_writer import diff_executions

T0 = datetime(2024, 5, 1, tzinfo=UTC)


@st.composite
def edits(draw: st.DrawFn) -> tuple[int, set[int], int]:
    size = draw(st.integers(0, 300))
    changed = draw(st.sets(st.integers(0, size - 1), max_size=20)) if size else set()
    appended = draw(st.integers(0, 70))
    return size, changed, appended


@given(edits())
@settings(max_examples=80)
def test_only_replaced_and_appended_units_are_written(edit: tuple[int, set[int], int]) -> None:
    size, changed, appended = edit
    old_units = Units(Unit(index=i, item=i) for i in range(size))
    units = old_units
    for position in changed:
        units = units.replaced(position, replace(units[position], status=TaskStatus.RUNNING))
    if appended:
        units = Units([*units, *(Unit(index=size + i) for i in range(appended))])
    old = Execution(1, "t", 0, TaskStatus.RUNNING, T0, units=old_units, with_items=True)
    new = replace(old, units=units, next_unit=5)
    untouched = Execution(2, "u", 0, TaskStatus.RUNNING, T0)

    changes = diff_executions("r", {1: old, 2: untouched}, {1: new, 2: untouched})

    assert sorted(row["position"] for row in changes.update_units) == sorted(changed)
    assert [row["position"] for row in changes.insert_units] == list(range(size, size + appended))
    assert [row["execution_id"] for row in changes.update_executions] == [1]
    assert changes.insert_executions == []
    assert changes.truncate_units == []


def test_removed_executions_and_shrunk_unit_lists_are_deleted() -> None:
    units = Units(Unit(index=i) for i in range(10))
    old = Execution(1, "t", 0, TaskStatus.RUNNING, T0, units=units)
    gone = Execution(2, "g", 0, TaskStatus.SUCCEEDED, T0)
    new = replace(old, units=Units(list(units)[:4]))
    changes = diff_executions("r", {1: old, 2: gone}, {1: new})
    assert changes.truncate_units == [("r", 1, 4)]
    assert changes.delete_executions == [("r", 2)]
    assert changes.update_units == []
