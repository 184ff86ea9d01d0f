"""The transition tables are the only way a status moves: ``moved`` enforces each one."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treadle.common.errors import IllegalTransition, TreadleError
from treadle.common.statuses import (
    RUN_TRANSITIONS,
    TASK_RETRY_TRANSITIONS,
    TASK_TRANSITIONS,
    RunStatus,
    TaskStatus,
    can_move,
    moved,
)

TABLES: dict[str, tuple[type[StrEnum], Mapping[Any, frozenset[Any]]]] = {
    "RUN_TRANSITIONS": (RunStatus, RUN_TRANSITIONS),
    "TASK_TRANSITIONS": (TaskStatus, TASK_TRANSITIONS),
    "TASK_RETRY_TRANSITIONS": (TaskStatus, TASK_RETRY_TRANSITIONS),
}


@st.composite
def moves(draw: st.DrawFn) -> tuple[str, StrEnum, StrEnum]:
    """A table and any pair of its statuses, legal or not."""
    name = draw(st.sampled_from(sorted(TABLES)))
    statuses = list(TABLES[name][0])
    return name, draw(st.sampled_from(statuses)), draw(st.sampled_from(statuses))


@given(moves())
@settings(max_examples=600)  # 262 pairs in all: enough draws to meet nearly every one
def test_moved_accepts_exactly_the_moves_its_table_allows(
    move: tuple[str, StrEnum, StrEnum],
) -> None:
    name, old, new = move
    table = TABLES[name][1]
    if old is new or new in table[old]:
        assert moved(table, old, new) is new
        assert can_move(table, old, new)
    else:
        with pytest.raises(IllegalTransition) as refused:
            moved(table, old, new)
        assert (refused.value.old, refused.value.new) == (old, new)
        assert not can_move(table, old, new)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_status_has_a_row_that_names_only_statuses_of_its_kind(name: str) -> None:
    kind, table = TABLES[name]
    assert set(table) == set(kind)
    assert all(isinstance(new, kind) for targets in table.values() for new in targets)


def test_an_illegal_move_is_a_treadle_error_naming_both_statuses() -> None:
    with pytest.raises(TreadleError, match="RunStatus may not move from 'succeeded' to 'paused'"):
        moved(RUN_TRANSITIONS, RunStatus.SUCCEEDED, RunStatus.PAUSED)


def test_an_ended_task_stays_ended_except_when_the_run_is_retried() -> None:
    for status in TaskStatus:
        if status.is_terminal and status is not TaskStatus.SUCCEEDED:
            assert TASK_TRANSITIONS[status] == frozenset()
        if status.is_terminal:
            assert moved(TASK_RETRY_TRANSITIONS, status, TaskStatus.RUNNING) is TaskStatus.RUNNING
        else:
            assert TASK_RETRY_TRANSITIONS[status] == frozenset()
