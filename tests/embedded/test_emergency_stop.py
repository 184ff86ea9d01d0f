"""An emergency stop holds the embedded runner too: `treadle run` and `treadle api` on SQLite."""

from __future__ import annotations

from typing import Any

from treadle.scheduler.service.emergency_stop.changes import lift, set_stop
from treadle.scheduler.service.emergency_stop.guard import RECHECK_SECONDS

CHAIN = """\
ref: estop.chain
tasks:
  - name: first
    action: core.noop
    next: [{do: [second]}]
  - name: second
    action: core.noop
"""


def test_a_stop_pauses_the_run_before_it_dispatches_and_lifting_it_finishes_the_run(
    harness: Any, manual_clock: Any
) -> None:
    spec = harness.workflow(CHAIN)
    clock = manual_clock
    runner = harness.runner(clock=clock)
    with runner.store.unit_of_work() as uow:
        set_stop(uow, None, reason="bad deploy", terminate=False, by="ops", now=clock())

    run_id, followed = harness.run(runner, spec)

    assert followed.state.status == "paused"
    document = harness.document(runner, run_id)
    assert all(task["status"] != "succeeded" for task in document["tasks"])
    assert [why["reason"] for why in document["why"]] == ["emergency_stop"]

    with runner.store.unit_of_work() as uow:
        lift(uow, None, by="ops", now=clock())
    clock.advance(RECHECK_SECONDS)  # SQLite has no NOTIFY: the runner reads the stops again
    result = runner.follow(run_id)

    assert result.state.status == "succeeded"
    document = harness.document(runner, run_id)
    assert [task["status"] for task in document["tasks"]] == ["succeeded", "succeeded"]


def test_without_a_stop_the_runner_runs_as_before(harness: Any) -> None:
    spec = harness.workflow(CHAIN)
    _run_id, followed = harness.run(harness.runner(), spec)
    assert followed.state.status == "succeeded"
