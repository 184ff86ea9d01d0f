"""Fixtures for the lifecycle tests: a pack of observable actions, both ways of running.

The ``lifecycle`` pack (:mod:`.lifecycle_pack`, written to a temporary folder) holds
actions that leave traces a test can read.

Embedded tests use :class:`Embedded`: runners on one SQLite file with the shipped packs and
this pack. Distributed tests share one module-scoped :class:`Services`: a throwaway
PostgreSQL database and RabbitMQ vhost with a real ``treadle scheduler`` and ``treadle
worker`` (stopped by pid at the end), and clients and ``treadle`` commands pointed at them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from treadle.client import Client
from treadle.common.catalog import Catalog
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.settings import Settings
from treadle.common.spec import WorkflowSpec
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.service.run_document import stored_run_document
from treadle.scheduler.store import Store
from treadle.testing.cli import CliResult, TreadleCli
from treadle.testing.deployment import RunningServices, running_services
from treadle.testing.processes import treadle_environment, wait_until

from .lifecycle_pack import write_pack

PACKS = Path(__file__).resolve().parents[2] / "packs"
TREADLE = Path(sys.executable).parent / "treadle"


def spec_of(text: str) -> WorkflowSpec:
    return load_workflow_text(textwrap.dedent(text), "<test>")


def task_entry(document: dict[str, Any], name: str) -> dict[str, Any]:
    found = [t for t in document["tasks"] if t["name"] == name]
    assert len(found) == 1, (name, document["tasks"])
    return found[0]


@pytest.fixture(scope="session")
def lifecycle_packs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of packs holding the ``lifecycle`` pack."""
    return write_pack(tmp_path_factory.mktemp("packs"))


@pytest.fixture(scope="session")
def lifecycle_catalog(lifecycle_packs: Path) -> Catalog:
    catalog = load_packs([PACKS, lifecycle_packs])
    assert [str(issue) for issue in catalog.issues] == []
    return catalog


# -- embedded ---------------------------------------------------------------------------------


@dataclass
class Embedded:
    """Runners on one SQLite file (each stands for one ``treadle`` process)."""

    database_url: str
    catalog: Catalog
    runners: list[EmbeddedRunner] = field(default_factory=list)

    def runner(self) -> EmbeddedRunner:
        made = EmbeddedRunner(Settings(database_url=self.database_url), self.catalog)
        self.runners.append(made)
        return made

    def workflow(self, text: str) -> WorkflowSpec:
        """Load a workflow from YAML text and add it to this test's catalog."""
        spec = spec_of(text)
        self.catalog.workflows[spec.ref] = spec
        return spec

    def document(self, run_id: str, *, items: bool = False) -> dict[str, Any]:
        with Store.open(self.database_url) as store, store.snapshot() as uow:
            return stored_run_document(uow, run_id, items=items)

    def close(self) -> None:
        for runner in self.runners:
            runner.close()


@pytest.fixture
def embedded(tmp_path: Path, lifecycle_catalog: Catalog) -> Iterator[Embedded]:
    catalog = Catalog(
        packs=dict(lifecycle_catalog.packs),
        actions=dict(lifecycle_catalog.actions),
        workflows=dict(lifecycle_catalog.workflows),
    )
    made = Embedded(f"sqlite:///{tmp_path / 'lifecycle.db'}", catalog)
    yield made
    made.close()


# -- the treadle command --------------------------------------------------------------------


Result = CliResult


class Command(TreadleCli):
    """Runs ``treadle`` with an environment of its own (database, packs, broker)."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        super().__init__(workdir, env, timeout=60, in_process=True)


class Background:
    """A ``treadle`` command running in the background, its output collected as it comes."""

    def __init__(self, command: Command, *args: str | Path) -> None:
        self.args = tuple(str(arg) for arg in args)
        self.process = command.start(*args)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=_collect, args=(stream, lines), daemon=True)
            for stream, lines in (
                (self.process.stdout, self.stdout),
                (self.process.stderr, self.stderr),
            )
        ]
        for reader in self._readers:
            reader.start()

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """The first match of ``pattern`` (multi-line) in what the command printed so far."""

        def found() -> re.Match[str] | None:
            return re.search(pattern, "".join(self.stderr) + "".join(self.stdout), re.M)

        return wait_until(
            found,
            timeout,
            f"{pattern!r} from treadle {' '.join(self.args)}",
            describe=lambda: "".join(self.stderr) + "".join(self.stdout),
        )

    def run_id(self) -> str:
        """The run's id, from the first line ``treadle run`` prints: ``run ID of WORKFLOW``."""
        return self.wait_for(r"^run (r-[0-9a-f]+) of ").group(1)

    def finish(self, timeout: float = 30) -> Result:
        """Wait for the command to end (killed past ``timeout``); what it did."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        for reader in self._readers:
            reader.join(5)
        return Result(self.args, code, "".join(self.stdout), "".join(self.stderr))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def _collect(stream: IO[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


@pytest.fixture
def background() -> Iterator[Callable[..., Background]]:
    """``background(command, *args)`` starts ``treadle ARGS`` in the background; whatever
    is still running when the test ends is killed (by its own pid)."""
    started: list[Background] = []

    def start(command: Command, *args: str | Path) -> Background:
        made = Background(command, *args)
        started.append(made)
        return made

    yield start
    for made in started:
        made.stop()


@pytest.fixture
def treadle(tmp_path: Path, lifecycle_packs: Path) -> Command:
    """``treadle`` on a SQLite file of the test's own, with the lifecycle pack."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = treadle_environment(
        database_url=f"sqlite:///{workdir / 't.db'}", pack_paths=[str(lifecycle_packs)]
    )
    return Command(env, workdir)


# -- distributed --------------------------------------------------------------------------------


@dataclass
class Services:
    """One scheduler and one worker (3 pool processes) on a database and vhost of their own."""

    running: RunningServices

    @property
    def database_url(self) -> str:
        return self.running.database_url

    def environment(self) -> dict[str, str]:
        return dict(self.running.environment)

    def client(self) -> Client:
        return Client(self.database_url, settings=Settings(database_url=self.database_url))

    def command(self, workdir: Path) -> Command:
        return Command(self.environment(), workdir)

    def document(self, run_id: str, *, items: bool = False) -> dict[str, Any]:
        with self.client() as client, client.store.snapshot() as uow:
            return stored_run_document(uow, run_id, items=items)

    def wait_for_status(self, run_id: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
        """The run document once the run has one of ``statuses``."""
        seen: list[dict[str, Any]] = []

        def reached() -> dict[str, Any] | None:
            document = self.document(run_id)
            seen[:] = [document]
            return document if document["status"] in statuses else None

        return wait_until(
            reached,
            timeout,
            f"run {run_id} {' or '.join(statuses)}",
            interval=0.1,
            describe=lambda: f"{seen[0]['status'] if seen else '?'}; {self.tails()}",
        )

    def tails(self) -> str:
        return self.running.logs(40)


@pytest.fixture(scope="module")
def services(lifecycle_packs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """One scheduler and one worker (3 processes) for a whole test module."""
    logs = tmp_path_factory.mktemp("logs")
    with running_services(
        "lifecycle", logs, [lifecycle_packs], concurrency=3, reconcile_interval=2
    ) as running:
        yield Services(running)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
