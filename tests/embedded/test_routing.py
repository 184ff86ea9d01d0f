"""Where a task's attempts go is pinned with the definition version it runs.

The queue comes from the task's own ``queue``, else its action's ``queue``, else the
deployment's default; changing an action's queue publishes a new version, and runs of the
old version keep routing the old way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from treadle.common.spec import ActionSpec, RunnerType
from treadle.scheduler.service.definitions import Definitions

FLOW = """\
ref: tests.routed
tasks:
  - {name: plain, action: core.noop}
  - {name: heavy, action: tests.crunch}
  - {name: pinned, action: tests.crunch, queue: gpu.urgent}
"""


def _dispatch_queues(harness: Any, runner: Any, run_id: str) -> dict[str, str | None]:
    with runner.store.unit_of_work() as uow:
        rows = uow.list_attempts(run_id)
    return {row.action_ref + ":" + str(row.execution_id): row.queue for row in rows}


def test_queues_come_from_task_then_action_then_default_and_are_pinned(harness: Any) -> None:
    crunch = ActionSpec(
        ref="tests.crunch",
        runner_type=RunnerType.PYTHON,
        entry_point="noop.py:run",
        base_dir=str(harness.catalog.actions["core.noop"].base_dir),
        queue="gpu",
    )
    harness.catalog.actions["tests.crunch"] = crunch
    runner = harness.runner(default_queue="general")
    spec = harness.workflow(FLOW)
    at = datetime.now(UTC)
    first = runner.definitions.publish(spec, at=at)
    assert first.routes["tests.crunch"].queue == "gpu"
    run_id = runner.start(spec, {})
    assert _dispatch_queues(harness, runner, run_id) == {
        "core.noop:1": "general",
        "tests.crunch:2": "gpu",
        "tests.crunch:3": "gpu.urgent",
    }

    # The action moves to another pool: a new version; the first version keeps its route.
    harness.catalog.actions["tests.crunch"] = crunch.model_copy(update={"queue": "cpu"})
    second = runner.definitions.publish(spec, at=at)
    assert second.version == first.version + 1
    fresh = Definitions(runner.store, harness.catalog)  # a process that never saw version 1
    assert fresh.pinned(spec.ref, first.version).graph.node("heavy").queue == "gpu"
    assert fresh.pinned(spec.ref, second.version).graph.node("heavy").queue == "cpu"
