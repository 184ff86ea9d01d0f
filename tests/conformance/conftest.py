"""Fixtures for running the Attune conformance fixtures through the real embedded runner.

The fixtures live outside the repository (``../shared/conformance/attune/``); every test
module here skips when that folder is absent. Actions the fixtures call that Treadle does
not ship come from the stub pack in ``stubs/conformance_stubs`` (one pack, many namespaces:
each action file gives its full ref). The ``core.*`` pack-installation actions of
``install_packs.yaml`` cannot be a second ``core`` pack, so :func:`pack_install_actions`
adds them to a loaded catalog one by one.

Runs use a real SQLite file under the test's temporary folder and the real worker code on
the embedded thread pool; nothing is mocked.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from treadle.common.catalog import Catalog
from treadle.common.loader import load_packs
from treadle.common.settings import Settings
from treadle.common.spec import ActionSpec, ParameterSpec, RunnerType, WorkflowSpec
from treadle.embedded import EmbeddedRunner
from treadle.embedded.runner import FollowResult
from treadle.scheduler.service.run_document import stored_run_document
from treadle.scheduler.service.starting import RunOptions
from treadle.testing.cli import TreadleCli
from treadle.testing.processes import treadle_environment

REPO = Path(__file__).resolve().parents[2]
ATTUNE = REPO.parent / "shared" / "conformance" / "attune"
SHIPPED_PACKS = REPO / "packs"
STUBS = Path(__file__).resolve().parent / "stubs"
PACK_INSTALL = STUBS / "pack_install.py"
DOCKER_REGISTRY = "registry.example.test"
IDENTITY = {"login": "conformance-tester"}


@pytest.fixture
def attune() -> Path:
    """The Attune fixture folder; the test is skipped when it is absent."""
    if not ATTUNE.is_dir():
        pytest.skip(f"Attune conformance fixtures not found at {ATTUNE}")
    return ATTUNE


@pytest.fixture
def pack_install_actions() -> dict[str, ActionSpec]:
    """``core.download_packs`` ... as python actions calling ``stubs/pack_install.py``.

    Each action declares the parameters of its stub function, so inputs are checked as
    they would be for an action file.
    """
    spec = importlib.util.spec_from_file_location("conformance_pack_install", PACK_INSTALL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    actions: dict[str, ActionSpec] = {}
    for name in (
        "download_packs",
        "get_pack_dependencies",
        "build_pack_envs",
        "run_pack_tests",
        "register_packs",
    ):
        signature = inspect.signature(getattr(module, name))
        parameters = tuple(
            ParameterSpec(
                name=param,
                required=info.default is inspect.Parameter.empty,
                has_default=info.default is not inspect.Parameter.empty,
                default=None if info.default is inspect.Parameter.empty else info.default,
            )
            for param, info in signature.parameters.items()
        )
        ref = f"core.{name}"
        actions[ref] = ActionSpec(
            ref=ref,
            runner_type=RunnerType.PYTHON,
            entry_point=f"{PACK_INSTALL.name}:{name}",
            parameters=parameters,
            base_dir=str(STUBS),
        )
    return actions


@pytest.fixture
def catalog(attune: Path) -> Catalog:
    """The shipped packs and the stub pack, with ``docker_registry`` in the examples config.

    The standalone fixtures have refs in the ``examples`` namespace, so ``pack.config`` is
    the shipped examples pack's configuration; it has none, so the test sets one value.
    """
    loaded = load_packs([SHIPPED_PACKS, STUBS])
    assert [str(issue) for issue in loaded.issues] == []
    examples = loaded.packs["examples"]
    loaded.packs["examples"] = examples.model_copy(
        update={"config": {**examples.config, "docker_registry": DOCKER_REGISTRY}}
    )
    return loaded


class ShiftedClock:
    """Real UTC time plus an offset a test can move forward (to reach a far deadline)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def shifted_clock() -> ShiftedClock:
    return ShiftedClock()


@dataclass
class Outcome:
    """Where following a run stopped, and its run document (with its inquiries)."""

    run_id: str
    followed: FollowResult
    document: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.document["status"])

    def task(self, name: str) -> dict[str, Any]:
        """The latest execution of task ``name`` in the run document."""
        found = [entry for entry in self.document["tasks"] if entry["name"] == name]
        assert found, f"task {name} never ran; ran: {self.task_names()}"
        return found[-1]

    def task_names(self) -> list[str]:
        return [entry["name"] for entry in self.document["tasks"]]


class Driver:
    """Starts, follows and answers runs on one embedded runner, returning run documents."""

    def __init__(self, runner: EmbeddedRunner) -> None:
        self.runner = runner

    def start(self, spec: WorkflowSpec, parameters: dict[str, Any]) -> Outcome:
        run_id = self.runner.start(spec, parameters, RunOptions(identity=IDENTITY))
        return self.follow(run_id)

    def follow(self, run_id: str) -> Outcome:
        followed = self.runner.follow(run_id)
        return Outcome(run_id, followed, self.document(run_id))

    def respond(self, outcome: Outcome, answer: Any) -> Outcome:
        [pending] = [i for i in outcome.document["inquiries"] if i["status"] == "pending"]
        self.runner.respond(pending["id"], answer, "approver")
        return self.follow(outcome.run_id)

    def document(self, run_id: str) -> dict[str, Any]:
        """The run document with every with_items task's items (the tests check them)."""
        with self.runner.store.snapshot() as uow:
            return stored_run_document(uow, run_id, items=True)


@pytest.fixture
def make_driver(tmp_path: Path) -> Iterator[Callable[..., Driver]]:
    """``make_driver(catalog, settings=None, clock=...)``: a driver on a fresh SQLite file."""
    runners: list[EmbeddedRunner] = []

    def make(catalog: Catalog, settings: Settings | None = None, **options: Any) -> Driver:
        url = f"sqlite:///{tmp_path / f'conformance-{len(runners)}.db'}"
        chosen = (settings or Settings()).model_copy(update={"database_url": url})
        runner = EmbeddedRunner(chosen, catalog, **options)
        runners.append(runner)
        return Driver(runner)

    yield make
    for runner in runners:
        runner.close()


@pytest.fixture
def treadle_cli(tmp_path: Path) -> TreadleCli:
    """``treadle_cli(*args)``: the ``treadle`` command in tmp_path, on its own SQLite file."""
    env = treadle_environment(database_url=f"sqlite:///{tmp_path / 'cli.db'}")
    return TreadleCli(tmp_path, env, timeout=60)
