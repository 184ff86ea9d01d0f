"""Caches only hold what was committed: a rolled-back save must not be reused.

After a rollback another scheduler may reach the same run version (or definition version
number) with different content; a cache holding the rolled-back data would then apply
events to the wrong state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from treadle.scheduler.core.events import CancelRequested
from treadle.scheduler.service.controls import Control, apply_control


def _rolled_back(runner: Any, work: Callable[[Any], object]) -> None:
    """Run ``work`` in a unit of work that then fails, so it rolls back."""
    with runner.store.unit_of_work() as uow:
        work(uow)
        raise RuntimeError("the transaction is rolled back after the work")


FLOW = """\
ref: tests.visible
tasks:
  - {name: wait_a_bit, action: core.noop, delay: 3600}
"""


def test_a_rolled_back_run_state_is_not_cached(harness: Any) -> None:
    runner = harness.runner()
    spec = harness.workflow(FLOW)
    run_id = runner.start(spec, {})
    committed = runner.runs.cached(run_id)
    assert committed is not None
    with pytest.raises(RuntimeError, match="rolled back"):
        _rolled_back(
            runner, lambda uow: runner.runs.apply_in(uow, [(run_id, CancelRequested("x"))])
        )
    assert runner.runs.cached(run_id) is committed
    assert runner.runs.load(run_id).status.value == "running"
    # The next decision starts from the committed state, not the rolled-back one.
    canceled = apply_control(runner.runs, run_id, Control.CANCEL, reason="for real")
    assert canceled.status.value == "canceled"
    assert canceled.error == {"type": "Canceled", "message": "for real"}


def test_a_rolled_back_definition_version_is_not_pinned(harness: Any) -> None:
    runner = harness.runner()
    spec = harness.workflow(FLOW)
    at = datetime.now(UTC)
    published: list[Any] = []
    with pytest.raises(RuntimeError, match="rolled back"):
        _rolled_back(
            runner, lambda uow: published.append(runner.definitions.publish(spec, at=at, uow=uow))
        )
    (first,) = published
    changed = spec.model_copy(update={"description": "another workflow under the same ref"})
    again = runner.definitions.publish(changed, at=at)
    assert again.version == first.version  # the number was free again
    assert runner.definitions.pinned(spec.ref, again.version).spec.description == (
        "another workflow under the same ref"
    )
