"""Fixtures for the embedded-runner tests: a real SQLite file, the real worker pool.

``harness`` gives a :class:`Harness` over a fresh database file in the test's temporary
folder and a catalog of the shipped packs. Workflows written in a test are added to that
catalog (so other workflows can call them as child runs). Runners are closed at the end.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from treadle.common.catalog import Catalog
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.settings import Settings
from treadle.common.spec import WorkflowSpec
from treadle.embedded import EmbeddedRunner
from treadle.embedded.runner import FollowResult
from treadle.scheduler.service.run_document import stored_run_document
from treadle.scheduler.service.starting import RunOptions
from treadle.scheduler.store import RecordedEvent

PACKS = Path(__file__).resolve().parents[2] / "packs"


class ManualClock:
    """A clock a test moves by hand: timers fire only when the test says time has passed."""

    def __init__(self) -> None:
        self.now = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Harness:
    """Runners on one database, a catalog to add workflows to, and ways to read runs back."""

    def __init__(self, database_url: str, catalog: Catalog) -> None:
        self.database_url = database_url
        self.catalog = catalog
        self.runners: list[EmbeddedRunner] = []

    def runner(self, *, clock: Callable[[], datetime] | None = None, **settings: Any) -> Any:
        """A new runner on the shared database (``settings`` override ``Settings`` fields)."""
        chosen = Settings(database_url=self.database_url, **settings)
        options: dict[str, Any] = {} if clock is None else {"clock": clock}
        runner = EmbeddedRunner(chosen, self.catalog, **options)
        self.runners.append(runner)
        return runner

    def workflow(self, text: str) -> WorkflowSpec:
        """Load a workflow from YAML text and add it to the catalog."""
        spec = load_workflow_text(textwrap.dedent(text), "<test>")
        self.catalog.workflows[spec.ref] = spec
        return spec

    def run(
        self,
        runner: EmbeddedRunner,
        spec: WorkflowSpec,
        parameters: dict[str, Any] | None = None,
        options: RunOptions | None = None,
    ) -> tuple[str, FollowResult]:
        run_id = runner.start(spec, parameters or {}, options)
        return run_id, runner.follow(run_id)

    @staticmethod
    def document(runner: EmbeddedRunner, run_id: str) -> dict[str, Any]:
        with runner.store.unit_of_work() as uow:
            return stored_run_document(uow, run_id)

    @staticmethod
    def events(runner: EmbeddedRunner, run_id: str) -> list[RecordedEvent]:
        with runner.store.unit_of_work() as uow:
            return uow.list_events(run_id)

    @staticmethod
    def task(document: dict[str, Any], name: str) -> dict[str, Any]:
        [found] = [t for t in document["tasks"] if t["name"] == name]
        return found

    def close(self) -> None:
        for runner in self.runners:
            runner.close()


@pytest.fixture(scope="session")
def shipped_catalog() -> Catalog:
    catalog = load_packs([PACKS])
    assert [str(issue) for issue in catalog.issues] == []
    return catalog


@pytest.fixture
def harness(tmp_path: Path, shipped_catalog: Catalog) -> Iterator[Harness]:
    catalog = Catalog(
        packs=dict(shipped_catalog.packs),
        actions=dict(shipped_catalog.actions),
        workflows=dict(shipped_catalog.workflows),
    )
    made = Harness(f"sqlite:///{tmp_path / 'embedded.db'}", catalog)
    yield made
    made.close()


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()
