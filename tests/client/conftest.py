"""Fixtures for the client tests: a throwaway PostgreSQL database and something to run runs.

The client only writes runs to the database; the distributed scheduler and workers are not
needed to prove it. An :class:`~treadle.embedded.EmbeddedRunner` on the same PostgreSQL URL
runs the same relay, core and store code, so tests drive runs with ``runner.follow(run_id)``
(or, for a ``treadle`` subprocess, with :class:`BackgroundDriver` in a thread of the test).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from treadle.client import Client
from treadle.common.catalog import Catalog
from treadle.common.loader import load_packs
from treadle.common.settings import Settings
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.store import RunSummary, Store, prepared
from treadle.testing.cli import CliResult, TreadleCli
from treadle.testing.processes import treadle_environment

PACKS = Path(__file__).resolve().parents[2] / "packs"
TREADLE = Path(sys.executable).parent / "treadle"


@pytest.fixture(scope="session")
def shipped_catalog() -> Catalog:
    return load_packs([PACKS])


@pytest.fixture
def database_url(migrated_database_url: Callable[[str], str]) -> str:
    """An empty PostgreSQL database with Treadle's schema (as `treadle db upgrade` leaves it)."""
    return migrated_database_url("postgresql")


@pytest.fixture
def client(database_url: str) -> Iterator[Client]:
    with Client(database_url) as made:
        yield made


@pytest.fixture
def runner(database_url: str, shipped_catalog: Catalog) -> Iterator[EmbeddedRunner]:
    """Runs what clients start, in this process, on the same database."""
    with EmbeddedRunner.open(Settings(database_url=database_url), shipped_catalog) as made:
        yield made


class BackgroundDriver:
    """A thread that keeps driving every unfinished run in the database until stopped."""

    def __init__(self, runner: EmbeddedRunner) -> None:
        self._runner = runner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="driver", daemon=True)
        self.errors: list[BaseException] = []

    def __enter__(self) -> BackgroundDriver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the driver thread did not stop"
        assert self.errors == [], self.errors

    def _loop(self) -> None:
        try:
            while not self._stop.wait(0.05):
                with self._runner.store.unit_of_work() as uow:
                    runs = [s.id for s in uow.list_runs(limit=1000) if not s.status.is_terminal]
                if runs:
                    self._runner.follow_all(runs)
        except BaseException as exc:
            self.errors.append(exc)


Result = CliResult


class Cli(TreadleCli):
    """``treadle`` in ``workdir`` with ``TREADLE_DATABASE_URL`` set to ``database_url``."""

    def __init__(self, workdir: Path, database_url: str) -> None:
        env = treadle_environment(database_url=database_url)
        super().__init__(workdir, env, timeout=60, in_process=True)


@pytest.fixture
def treadle(tmp_path: Path, database_url: str) -> Cli:
    return Cli(tmp_path, database_url)


@pytest.fixture
def driver(runner: EmbeddedRunner) -> Iterator[BackgroundDriver]:
    """Runs started by other processes progress while the test waits for them."""
    with BackgroundDriver(runner) as started:
        yield started


@pytest.fixture
def stored_runs(database_url: str) -> Callable[[], list[RunSummary]]:
    """Reads the runs stored in the test's database (newest first)."""

    def read() -> list[RunSummary]:
        store = Store.open(database_url, migrate=False)
        try:
            with store.unit_of_work() as uow:
                return uow.list_runs(limit=1000)
        finally:
            store.close()

    return read


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every statement any engine sends while the test runs, whitespace collapsed (a
    prepared one as the text it runs; a connection's one-time PREPARE left out)."""
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if not statement.startswith(f"PREPARE {prepared.PREFIX}"):
            sent.append(" ".join(prepared.original(statement).split()))

    event.listen(Engine, "before_cursor_execute", record)
    yield sent
    event.remove(Engine, "before_cursor_execute", record)
