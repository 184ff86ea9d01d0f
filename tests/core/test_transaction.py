"""The working copy of a decision tracks every field of RunState a decision may change.

What ``Tx`` copies in and ``freeze`` compares is derived from RunState's field metadata, so
a field added to RunState is tracked without being listed; these tests hold that promise.
"""

from __future__ import annotations

import typing
from dataclasses import fields
from datetime import UTC, datetime

import pytest

from treadle.common.errors import IllegalTransition
from treadle.common.expr import TemplateEngine
from treadle.common.graph import compile_graph
from treadle.common.loader import load_workflow_text
from treadle.common.statuses import RunStatus
from treadle.scheduler.core.commands import RunStatusChanged
from treadle.scheduler.core.state import FIXED, RunState, initial_state
from treadle.scheduler.core.transaction import TRACKED, Tx

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GRAPH = compile_graph(
    load_workflow_text("ref: test.tx\ntasks:\n  - {name: a, action: core.noop}\n", "wf.yaml")
)


def tx_of(state: RunState) -> Tx:
    return Tx(state, GRAPH, T0, TemplateEngine())


def test_only_the_fields_set_when_the_run_is_created_are_untracked() -> None:
    fixed = {f.name for f in fields(RunState) if f.metadata.get(FIXED)}
    assert fixed == {"run_id", "workflow", "definition_version", "workspace", "created_at"}
    assert tuple(f.name for f in fields(RunState) if f.name not in fixed) == TRACKED


@pytest.mark.parametrize("name", TRACKED)
def test_a_tracked_field_changed_in_a_tx_reaches_the_next_state(name: str) -> None:
    state = initial_state("r", "w", T0)
    tx = tx_of(state)
    assert getattr(tx, name) is getattr(state, name)
    replacement = object()  # a new object: freeze compares by identity
    setattr(tx, name, replacement)
    after = tx.freeze()
    assert getattr(after, name) is replacement
    others = [f.name for f in fields(RunState) if f.name != name]
    assert all(getattr(after, other) is getattr(state, other) for other in others)


def test_a_tx_that_changed_nothing_freezes_to_the_very_same_state() -> None:
    state = initial_state("r", "w", T0)
    assert tx_of(state).freeze() is state


def test_the_tx_annotations_type_tracked_fields_as_run_state_does() -> None:
    state_types = typing.get_type_hints(RunState)
    tx_types = typing.get_type_hints(Tx)
    assert set(tx_types) <= set(TRACKED)
    assert {name: state_types[name] for name in tx_types} == tx_types


def test_a_run_moves_only_as_its_transition_table_allows() -> None:
    tx = tx_of(initial_state("r", "w", T0))
    tx.move_run(RunStatus.RUNNING)
    assert tx.commands == [RunStatusChanged(RunStatus.RUNNING, T0)]
    with pytest.raises(IllegalTransition, match="'running' to 'compensated'"):
        tx.move_run(RunStatus.COMPENSATED)
    assert tx.status is RunStatus.RUNNING
