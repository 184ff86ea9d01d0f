"""The shipped packs (core, examples): files well-formed, entry points present, actions behave."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from jinja2.sandbox import SandboxedEnvironment

from treadle.common.spec import ActionSpec, RunnerType
from treadle.worker.runners.python import PythonRunner

PACKS = Path(__file__).resolve().parents[2] / "packs"
YAML_FILES = sorted(PACKS.glob("*/**/*.yaml"))
WORKFLOW_FILES = sorted((PACKS / "examples" / "workflows").glob("*.yaml"))
CORE_ACTIONS = {
    "noop",
    "echo",
    "sleep",
    "fail",
    "http",
    "ask",
    "inquiry",
    "shell",
    "risk_policy",
    "notify",
    "branch",
}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _action_spec(path: Path, flat_params) -> ActionSpec:
    data = _load(path)
    pack = _load(path.parents[1] / "pack.yaml")["ref"]
    return ActionSpec(
        ref=f"{pack}.{data['name']}",
        runner_type=RunnerType(data["runner_type"]),
        entry_point=data.get("entry_point"),
        parameters=flat_params(data.get("parameters")),
        base_dir=str(path.parent),
    )


@pytest.fixture
def shipped(worker, flat_params):
    for path in sorted(PACKS.glob("*/actions/*.yaml")):
        worker.add(_action_spec(path, flat_params))
    return worker


def test_every_yaml_file_parses_and_names_itself():
    assert len(YAML_FILES) > 20
    for path in YAML_FILES:
        data = _load(path)
        if path.parent.name == "tests":  # a pack's workflow tests: a list (docs/packs.md)
            assert isinstance(data, list), path
            assert all("name" in test for test in data), path
            continue
        assert isinstance(data, dict), path
        if path.name == "pack.yaml":
            assert data["ref"] == path.parent.name
        elif path.parent.name == "actions":
            assert data["name"] == path.stem, path
            assert data["description"], path
        else:
            assert data["ref"] == f"examples.{path.stem}", path


def test_the_core_pack_has_every_documented_action():
    names = {p.stem for p in (PACKS / "core" / "actions").glob("*.yaml")}
    assert names == CORE_ACTIONS


def test_every_python_entry_point_exists_and_defines_its_function(flat_params):
    runner = PythonRunner()
    python_actions = [_action_spec(p, flat_params) for p in sorted(PACKS.glob("*/actions/*.yaml"))]
    python_actions = [a for a in python_actions if a.runner_type is RunnerType.PYTHON]
    assert len(python_actions) >= 6
    for action in python_actions:
        assert callable(runner.resolve(action)), action.ref


def test_every_template_in_the_examples_is_valid_jinja():
    env = SandboxedEnvironment()

    def templates(value: Any):
        if isinstance(value, str) and "{{" in value:
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from templates(item)
        elif isinstance(value, list):
            for item in value:
                yield from templates(item)

    found = 0
    for path in WORKFLOW_FILES:
        for template in templates(_load(path)):
            env.parse(template)
            found += 1
    assert found > 40


def test_the_examples_readme_lists_every_workflow():
    readme = (PACKS / "examples" / "README.md").read_text()
    for path in WORKFLOW_FILES:
        assert f"`{path.stem}`" in readme, path.stem
        assert path.read_text().startswith("#"), f"{path.name} should open with a comment"


def test_the_packs_load_without_issues():
    loader = pytest.importorskip("treadle.common.loader")

    catalog = loader.load_packs([str(PACKS)])

    assert [str(i) for i in catalog.issues] == []
    assert {a for a in catalog.actions if a.startswith("core.")} == {
        f"core.{n}" for n in CORE_ACTIONS
    }
    assert set(catalog.workflows) == {f"examples.{p.stem}" for p in WORKFLOW_FILES}
    assert catalog.actions["core.echo"].base_dir == str(PACKS / "core" / "actions")


def test_core_actions_do_what_the_reference_says(shipped):
    assert shipped.run("core.noop").result is None
    assert shipped.run("core.noop", {"message": "placeholder"}).result is None
    assert shipped.run("core.echo", {"message": "hi"}).result == {"message": "hi"}
    assert shipped.run("core.sleep", {"seconds": 0}).result == {"slept": 0}
    assert shipped.run("core.sleep", {"seconds": -1}).error.type == "InvalidInput"
    assert shipped.run("core.echo", {}).error.type == "InvalidInput"
    failed = shipped.run("core.fail")
    assert (failed.error.type, failed.error.message) == ("ActionFailed", "failed on purpose")
    assert shipped.run("core.fail", {"message": "boom"}).error.message == "boom"
    assert shipped.run("core.shell", {"cmd": "true"}).error.type == "ShellDisabled"
    assert shipped.run("core.ask", {"prompt": "ok?"}).error.type == "NotWorkerAction"


def test_example_actions(shipped, tmp_path):
    assert shipped.run("examples.add", {"a": 2, "b": 3}).result == {"sum": 5}
    assert shipped.run("examples.add", {"a": 2}).result == {"sum": 3}
    calls = [
        shipped.run("examples.flaky", {"key": "k", "failures": 2, "counter_dir": str(tmp_path)})
        for _ in range(3)
    ]
    assert [c.error.type if c.error else c.result for c in calls] == [
        "FlakyError",
        "FlakyError",
        {"calls": 3},
    ]
