"""``attune/install_packs.yaml``: it validates, and its recursion stops at the depth limit.

The workflow installs missing dependencies by calling itself (``core.install_packs``). The
stub ``core.get_pack_dependencies`` always reports one missing dependency, so every level
starts another until the nesting depth limit refuses: the deepest run's
``install_dependencies`` task fails with ``LimitExceeded``, the workflow's own
``on_failure`` sends it to ``cleanup_on_failure``, and every level above ends normally.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from treadle.common.catalog import Catalog
from treadle.common.limits import Limits
from treadle.common.loader import load_workflow_file
from treadle.common.settings import Settings
from treadle.common.spec import ActionSpec, WorkflowSpec
from treadle.common.validate import validate_workflow

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}"
ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"


@pytest.fixture
def spec(attune: Path) -> WorkflowSpec:
    return load_workflow_file(str(attune / "install_packs.yaml"))


@pytest.fixture
def install_catalog(
    catalog: Catalog, spec: WorkflowSpec, pack_install_actions: dict[str, ActionSpec]
) -> Catalog:
    """The stub catalog plus the ``core.*`` install actions and the workflow itself."""
    catalog.actions.update(pack_install_actions)
    catalog.workflows[spec.ref] = spec  # it calls itself: its ref must resolve
    return catalog


def test_it_validates(spec: WorkflowSpec, install_catalog: Catalog) -> None:
    assert spec.ref == "core.install_packs"
    assert [v.name for v in spec.vars] == [
        "temp_dir",
        "downloaded_packs",
        "missing_dependencies",
        "installed_pack_refs",
        "failed_packs",
        "start_time",
    ]
    assert validate_workflow(spec, install_catalog, strict=True) == []


def chain_of_runs(driver: Any, root: str) -> list[dict[str, Any]]:
    """Run documents from ``root`` down through each ``install_dependencies`` child run."""
    chain = [driver.document(root)]
    while True:
        install = [t for t in chain[-1]["tasks"] if t["name"] == "install_dependencies"]
        if not install or "child_run" not in install[-1]:
            return chain
        chain.append(driver.document(install[-1]["child_run"]))


def assert_recursion_stops_at(driver: Any, spec: WorkflowSpec, limit: int) -> None:
    top = driver.start(spec, {"packs": ["slack@1.0.0"]})
    assert top.status == "succeeded", top.document["error"]
    chain = chain_of_runs(driver, top.run_id)

    assert len(chain) == limit + 1  # depths 0 .. limit
    for parent, child in itertools.pairwise(chain):
        assert child["parent_run"] == parent["id"]
        assert child["workflow"] == "core.install_packs"
    for document in chain:
        assert document["status"] == "succeeded", document["error"]
        assert all(t["status"] != "running" for t in document["tasks"])

    deepest = chain[-1]
    [refused] = [t for t in deepest["tasks"] if t["name"] == "install_dependencies"]
    assert refused["status"] == "failed"
    assert "child_run" not in refused
    assert refused["error"]["type"] == "LimitExceeded"
    assert refused["error"]["message"] == (
        "starting workflow 'core.install_packs' from task 'install_dependencies' would nest "
        f"runs {limit + 1} deep; the limit is {limit}"
    )
    deepest_tasks = [t["name"] for t in deepest["tasks"]]
    assert deepest_tasks[-2:] == ["install_dependencies", "cleanup_on_failure"]
    assert "build_environments" not in deepest_tasks
    for document in chain[:-1]:
        names = [t["name"] for t in document["tasks"]]
        assert names[-5:] == [
            "install_dependencies",
            "build_environments",
            "run_tests",
            "register_packs",
            "cleanup_success",
        ]

    # each level asked for the dependency its parent found missing
    assert [d["parameters"]["packs"] for d in chain[:3]] == [
        ["slack@1.0.0"],
        ["dep_of_slack@1.0.0"],
        ["dep_of_dep_of_slack@1.0.0"],
    ]
    # `now()` and `uuid()` in the first task's publish: one temp dir per run
    temp_dirs = []
    for document in chain:
        state = driver.runner.state_of(document["id"])
        assert re.fullmatch(ISO_UTC, state.vars["start_time"])
        assert re.fullmatch(f"/tmp/attune-pack-install-{UUID}", state.vars["temp_dir"])
        temp_dirs.append(state.vars["temp_dir"])
    assert len(set(temp_dirs)) == len(chain)


def test_the_recursion_stops_at_the_default_depth_limit(
    spec: WorkflowSpec, install_catalog: Catalog, make_driver: Any, monkeypatch: Any
) -> None:
    monkeypatch.delenv("TREADLE_LIMITS__MAX_DEPTH", raising=False)
    settings = Settings()
    assert settings.limits.max_depth == 10
    assert_recursion_stops_at(make_driver(install_catalog, settings), spec, limit=10)


def test_a_smaller_depth_limit_from_settings(
    spec: WorkflowSpec, install_catalog: Catalog, make_driver: Any
) -> None:
    settings = Settings(limits=Limits(max_depth=3))
    assert_recursion_stops_at(make_driver(install_catalog, settings), spec, limit=3)


def test_a_smaller_depth_limit_from_the_environment(
    spec: WorkflowSpec, install_catalog: Catalog, make_driver: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("TREADLE_LIMITS__MAX_DEPTH", "2")
    assert_recursion_stops_at(make_driver(install_catalog, Settings()), spec, limit=2)
