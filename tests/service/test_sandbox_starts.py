"""The sandbox on real starts (embedded runner, SQLite): refusals store nothing, and the
``treadle_sandbox_*`` metrics count every start and every dispatch it checked.

``RunMetrics`` is registered as every process that saves runs registers it; the starts
go through the one start path (``RunStarter``), so the CLI, clients, the API, schedules
and rules are refused the same way.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from treadle.common.catalog import Catalog
from treadle.common.dialects import import_aos
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.metrics import Metrics
from treadle.common.metrics_catalog import MetricSource
from treadle.common.sandbox_report import Reason, SandboxRefusal
from treadle.common.settings import Settings
from treadle.common.statuses import RunStatus
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.service.run_metrics import RunMetrics
from treadle.scheduler.store import RunFilter

PACKS = Path(__file__).resolve().parents[2] / "packs"

GREET = """\
ref: gov.greet
parameters:
  name: {type: string}
tasks:
  - name: hello
    action: core.echo
    input: {message: "hello {{ parameters.name }}"}
"""

BUILT = """\
ref: gov.built
tasks:
  - name: climb
    action: core.echo
    input: {message: "{{ '..' ~ '/' ~ '..' }}"}
"""


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_packs([PACKS])


class World:
    def __init__(self, url: str, catalog: Catalog, policy: str | None) -> None:
        self.runner = EmbeddedRunner(Settings(database_url=url, sandbox_policy=policy), catalog)
        self.metrics = Metrics([MetricSource.RUNS])
        self.runner.runs.observers.append(RunMetrics(self.metrics, self.runner.definitions))

    def start(self, text: str, **parameters: str) -> str:
        spec = load_workflow_text(textwrap.dedent(text), "wf.yaml")
        run_id = self.runner.start(spec, parameters)
        self.runner.follow(run_id)
        return run_id

    def runs(self) -> int:
        with self.runner.store.unit_of_work() as uow:
            return len(uow.list_runs_page(RunFilter(), limit=100).runs)

    def value(self, metric: str, /, **labels: str) -> float:
        found = self.metrics.registry.get_sample_value(metric, labels)
        return 0.0 if found is None else found


@pytest.fixture
def make_world(tmp_path: Path, catalog: Catalog) -> Iterator[Callable[..., World]]:
    made: list[World] = []

    def make(policy: str | None = None) -> World:
        made.append(World(f"sqlite:///{tmp_path / f'{len(made)}.db'}", catalog, policy))
        return made[-1]

    yield make
    for world in made:
        world.runner.close()


def test_starts_and_dispatches_are_checked_refused_and_counted(make_world) -> None:
    world = make_world(json.dumps({"workflows": {}}))

    clean = world.start(GREET, name="Ada")
    with pytest.raises(SandboxRefusal) as refused:
        world.start(GREET, name="{{ config.secret }}")
    built = world.start(BUILT)

    assert world.runner.state_of(clean).status is RunStatus.SUCCEEDED
    assert [f.reason for f in refused.value.report.violations] == [Reason.TEMPLATE_INJECTION]
    assert world.runs() == 2  # the refused start stored nothing
    failed = world.runner.state_of(built)
    assert failed.status is RunStatus.FAILED
    error = failed.latest_execution("climb").error
    assert error is not None
    assert error["type"] == "SandboxViolation"
    # three starts checked, two attempts: one dispatched, one refused
    assert world.value("treadle_sandbox_checks_total") == 5
    refusals = "treadle_sandbox_refusals_total"
    assert world.value(refusals, reason="template_injection") == 1
    assert world.value(refusals, reason="path_traversal") == 1
    assert world.value(refusals, reason="forbidden_action") == 0


def test_without_a_policy_workflows_are_not_checked(make_world) -> None:
    world = make_world()
    run_id = world.start(BUILT)
    assert world.runner.state_of(run_id).status is RunStatus.SUCCEEDED
    assert world.value("treadle_sandbox_checks_total") == 0


PLAN = {
    "plan": {
        "steps": [
            {"step_id": "s1", "skill": "core.echo", "params": {"message": "hi"}},
            {"step_id": "s2", "skill": "shell_exec", "params": {"cmd": "id"}, "depends_on": ["s1"]},
        ]
    }
}


def test_aos_plans_are_always_checked(make_world) -> None:
    world = make_world()  # no TREADLE_SANDBOX_POLICY: AOS plans still get the AOS policy
    spec = import_aos(json.dumps(PLAN), "plan.json")

    with pytest.raises(SandboxRefusal) as refused:
        world.runner.start(spec, {})

    assert [(f.task, f.reason) for f in refused.value.report.violations] == [
        ("s2", Reason.FORBIDDEN_ACTION)
    ]
    assert str(refused.value).endswith(
        "task 's2' calls 'aos.shell_exec', which the sandbox policy forbids"
    )
    assert world.runs() == 0
    assert world.value("treadle_sandbox_refusals_total", reason="forbidden_action") == 1
