"""``RunMetrics``, the run service observer behind the ``runs`` metrics, on real runs.

An embedded runner (SQLite, the shipped packs) runs real workflows through the same
:class:`~treadle.scheduler.service.runs.RunService` every process uses, with a
:class:`RunMetrics` registered as the scheduler registers it (sources ``scheduler`` and
``runs``). Covered: a run started and finished (by workflow and status, its duration and
context size), retries by action, attempt durations by action and outcome, a template
that fails to render, dispatches held back by a concurrency key (counted by kind), and
nothing counted from a transaction that rolls back.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from treadle.common.catalog import Catalog
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.metrics import Metrics
from treadle.common.metrics_catalog import MetricSource
from treadle.common.settings import Settings
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.core.events import RunRequested
from treadle.scheduler.core.state import initial_state
from treadle.scheduler.service.run_metrics import RunMetrics

PACKS = Path(__file__).resolve().parents[2] / "packs"

BROKEN_TEMPLATE = """
ref: metrics.broken
tasks:
  - name: echo
    action: core.echo
    input:
      message: "{{ 1 // 0 }}"
"""

KEYED = """
ref: metrics.keyed
tasks:
  - name: slow
    action: core.sleep
    concurrency_key: {key: one-at-a-time, limit: 1}
    input: {seconds: 0.2}
"""


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_packs([PACKS])


class World:
    def __init__(self, url: str, catalog: Catalog) -> None:
        self.runner = EmbeddedRunner(Settings(database_url=url), catalog)
        self.metrics = Metrics([MetricSource.SCHEDULER, MetricSource.RUNS])
        self.runner.runs.observers.append(
            RunMetrics(self.metrics, self.runner.definitions, hostname="h", default_queue="q")
        )

    def run(self, text: str | None = None, ref: str | None = None, **parameters: Any) -> str:
        if text is not None:
            spec = load_workflow_text(textwrap.dedent(text), "wf.yaml")
        else:
            assert ref is not None
            spec = self.runner.catalog.workflows[ref]
        run_id = self.runner.start(spec, parameters)
        self.runner.follow(run_id)
        return run_id

    def value(self, metric: str, /, **labels: str) -> float:
        found = self.metrics.registry.get_sample_value(metric, labels)
        return 0.0 if found is None else found


@pytest.fixture
def world(tmp_path: Path, catalog: Catalog) -> Iterator[World]:
    made = World(f"sqlite:///{tmp_path / 'metrics.db'}", catalog)
    try:
        yield made
    finally:
        made.runner.close()


def test_runs_and_attempts_are_counted_by_workflow_action_and_outcome(
    world: World, tmp_path: Path
) -> None:
    world.run(ref="examples.hello_world", name="Ada")
    world.run(ref="examples.retry_backoff", failures=1, counter_dir=str(tmp_path))
    world.run(ref="examples.retry_backoff", failures=9, counter_dir=str(tmp_path))

    assert world.value("treadle_runs_started_total", workflow="examples.hello_world") == 1
    assert world.value("treadle_runs_started_total", workflow="examples.retry_backoff") == 2
    finished = "treadle_runs_finished_total"
    assert world.value(finished, workflow="examples.hello_world", status="succeeded") == 1
    assert world.value(finished, workflow="examples.retry_backoff", status="succeeded") == 1
    assert world.value(finished, workflow="examples.retry_backoff", status="failed") == 1
    durations = "treadle_run_duration_seconds_count"
    assert world.value(durations, workflow="examples.retry_backoff", status="failed") == 1
    assert world.value("treadle_context_bytes_count", workflow="examples.hello_world") == 1
    assert world.value("treadle_context_bytes_sum", workflow="examples.hello_world") > 0

    assert world.value("treadle_task_retries_total", action="examples.flaky") == 1 + 3
    retried = {"name": "treadle.run.python", "hostname": "h", "queue_name": "q"}
    assert world.value("celery_task_retried_total", **retried) == 1 + 3
    tasks = "treadle_task_duration_seconds_count"
    assert world.value(tasks, action="examples.flaky", status="failed") == 1 + 4
    assert world.value(tasks, action="examples.flaky", status="succeeded") == 1
    assert world.value(tasks, action="core.echo", status="succeeded") == 1 + 1
    assert world.value("treadle_template_errors_total", workflow="examples.hello_world") == 0


def test_a_template_that_fails_to_render_is_counted(world: World) -> None:
    world.run(BROKEN_TEMPLATE)
    assert world.value("treadle_template_errors_total", workflow="metrics.broken") == 1
    assert (
        world.value("treadle_runs_finished_total", workflow="metrics.broken", status="failed") == 1
    )


def test_dispatches_held_back_by_a_concurrency_key_are_counted_by_kind(world: World) -> None:
    spec = load_workflow_text(textwrap.dedent(KEYED), "wf.yaml")
    first = world.runner.start(spec, {})
    second = world.runner.start(spec, {})
    assert world.value("treadle_flow_waits_total", kind="concurrency") == 1
    world.runner.follow_all([first, second])
    assert world.value("treadle_flow_waits_total", kind="rate") == 0
    assert (
        world.value("treadle_runs_finished_total", workflow="metrics.keyed", status="succeeded")
        == 2
    )


def test_nothing_is_counted_from_a_transaction_that_rolls_back(world: World) -> None:
    runs = world.runner.runs
    spec = world.runner.catalog.workflows["examples.hello_world"]
    pinned = world.runner.definitions.publish(spec, at=runs.clock())

    def start_then_fail() -> None:
        with runs.store.unit_of_work() as uow:
            state = initial_state("run-rolled-back", spec.ref, runs.clock(), pinned.version)
            uow.insert_run(state)
            runs.apply_new(uow, state, RunRequested())
            raise RuntimeError("the transaction fails after the save")

    with pytest.raises(RuntimeError):
        start_then_fail()
    assert world.value("treadle_runs_started_total", workflow="examples.hello_world") == 0
    with runs.store.unit_of_work() as uow:  # the same, committed: counted
        state = initial_state("run-committed", spec.ref, runs.clock(), pinned.version)
        uow.insert_run(state)
        runs.apply_new(uow, state, RunRequested())
    assert world.value("treadle_runs_started_total", workflow="examples.hello_world") == 1
