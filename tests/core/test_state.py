"""The run state's building blocks: the chunked unit list and ``evolve``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from treadle.common.statuses import TaskStatus
from treadle.scheduler.core.state import (
    NO_UNITS,
    Execution,
    Unit,
    Units,
    evolve,
    initial_state,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def units(count: int) -> Units:
    return Units(Unit(index=i, item=i) for i in range(count))


def test_units_behave_like_an_immutable_list() -> None:
    many = units(150)
    assert len(many) == 150
    assert [u.item for u in many] == list(range(150))
    assert many[0].item == 0
    assert many[64].item == 64
    assert many[-1].item == 149
    with pytest.raises(IndexError):
        many[150]
    with pytest.raises(IndexError):
        many[-151]
    assert len(NO_UNITS) == 0
    assert list(NO_UNITS) == []


def test_units_slice_to_a_tuple_across_chunks() -> None:
    many = units(150)
    window = many[60:70]
    assert isinstance(window, tuple)
    assert [u.item for u in window] == list(range(60, 70))
    assert [u.item for u in many[::50]] == [0, 50, 100]
    assert many[200:] == ()


def test_replaced_shares_every_untouched_chunk_by_identity() -> None:
    many = units(200)  # chunks of 64: 0-63, 64-127, 128-191, 192-199
    changed = many.replaced(70, evolve(many[70], status=TaskStatus.RUNNING))
    assert changed is not many
    assert changed[70].status is TaskStatus.RUNNING
    assert many[70].status is TaskStatus.SCHEDULED  # the original is unchanged
    assert len(changed) == len(many)
    same = [a is b for a, b in zip(changed.chunks, many.chunks, strict=True)]
    assert same == [True, False, True, True]
    assert all(changed[i] is many[i] for i in range(200) if i != 70)


def test_units_equality_with_units_tuples_and_lists() -> None:
    assert units(3) == units(3)
    assert units(3) != units(4)
    assert units(3) == tuple(units(3))
    assert units(3) == list(units(3))
    assert units(3) != units(3).replaced(1, Unit(index=1, item="other"))
    assert units(2) != "not units"
    assert hash(Units([Unit(index=0)])) == hash(Units([Unit(index=0)]))


def test_evolve_changes_the_named_fields_and_keeps_the_rest() -> None:
    execution = Execution(id=1, task="t", scope=0, status=TaskStatus.SCHEDULED, started_at=T0)
    moved = evolve(execution, status=TaskStatus.RUNNING, in_flight=2)
    assert moved.status is TaskStatus.RUNNING
    assert moved.in_flight == 2
    assert (moved.id, moved.task, moved.started_at) == (1, "t", T0)
    assert execution.status is TaskStatus.SCHEDULED
    assert evolve(execution) == execution


def test_evolve_rejects_unknown_fields() -> None:
    state = initial_state("r", "wf", T0)
    with pytest.raises(TypeError, match=r"RunState has no field\(s\) \['stauts'\]"):
        evolve(state, stauts="running")
    with pytest.raises(TypeError, match="Unit has no field"):
        evolve(Unit(index=None), attempts=1)
