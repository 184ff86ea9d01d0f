"""Fixtures for the client tests: a throwaway PostgreSQL database and something to run runs.

The client only writes runs to the database; the distributed scheduler and workers are not
needed to prove it. An :class:`~treadle.embedded.EmbeddedRunner` on the same PostgreSQL URL
runs the same relay, core and store code, so tests drive runs with ``runner.follow(run_id)``
(or, for a ``treadle`` subprocess, with :class:`BackgroundDriver` in a thread of the test).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from treadle.client import Client
from treadle.common.catalog import Catalog
from treadle.common.loader import load_packs
from treadle.common.settings import Settings
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.store import RunSummary, Store
from treadle.testing import throwaway_postgres_database

PACKS = Path(__file__).resolve().parents[2] / "packs"
TREADLE = Path(sys.executable).parent / "treadle"


@pytest.fixture(scope="session")
def shipped_catalog() -> Catalog:
    return load_packs([PACKS])


@pytest.fixture
def database_url() -> Iterator[str]:
    """An empty PostgreSQL database with Treadle's schema (as `treadle db upgrade` leaves it)."""
    with throwaway_postgres_database("treadle_client") as url:
        Store.open(url).close()
        yield url


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


@dataclass(frozen=True)
class Result:
    """What one ``treadle`` invocation did."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"treadle {' '.join(self.args)} -> {self.code}\n{self.stdout}\n{self.stderr}"


class Cli:
    """Runs ``treadle`` in ``workdir`` with ``TREADLE_DATABASE_URL`` set to ``database_url``."""

    def __init__(self, workdir: Path, database_url: str) -> None:
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TREADLE_")}
        self.env["TREADLE_DATABASE_URL"] = database_url

    def __call__(self, *args: str | Path, code: int | None = None) -> Result:
        argv = tuple(str(arg) for arg in args)
        done = subprocess.run(
            [str(TREADLE), *argv],
            capture_output=True,
            text=True,
            cwd=self.workdir,
            env=self.env,
            timeout=60,
            check=False,
        )
        result = Result(argv, done.returncode, done.stdout, done.stderr)
        if code is not None:
            assert result.code == code, str(result)
        return result

    def write(self, name: str, text: str) -> Path:
        path = self.workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path


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
