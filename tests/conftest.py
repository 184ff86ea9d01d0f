"""Fixtures shared by every test folder.

``fresh_database_url(kind)`` gives a URL to an empty database of its own: a SQLite file
under the test's temporary folder, or a uniquely named PostgreSQL database on the local
server (``treadle.testing.throwaway_postgres_database``), dropped when the test ends.
``migrated_database_url(kind)`` gives the same with Treadle's schema at the newest
revision, copied from a database of that kind migrated once per test process
(:class:`MigratedTemplates`): a copy takes a fraction of a migration's time, and most
tests want a migrated store, not the migration (tests/store/test_migrations.py has that).
PostgreSQL is required (it runs on CI): when it cannot be reached the test fails and says
why. Set ``TREADLE_TEST_POSTGRES_ADMIN_URL`` to use another server.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from treadle.scheduler.store import Store
from treadle.testing import POSTGRES_ADMIN_URL, throwaway_postgres_database

DatabaseFactory = Callable[[str], str]


def _postgres(cleanup: ExitStack, template: str | None = None) -> str:
    """A throwaway PostgreSQL database (a copy of ``template`` if given), or the test fails
    saying how to reach the server."""
    try:
        return cleanup.enter_context(throwaway_postgres_database(template=template))
    except OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {make_url(POSTGRES_ADMIN_URL)!r}: "
            f"{str(exc.orig).strip()}\nStart it (.ci/run does) or point "
            "TREADLE_TEST_POSTGRES_ADMIN_URL at a server where the user may "
            "create databases.",
            pytrace=False,
        )


def _sqlite_path(folder: Path) -> Path:
    return folder / f"treadle-{uuid.uuid4().hex[:8]}.db"


def _unknown(kind: str) -> ValueError:
    return ValueError(f"unknown database kind {kind!r}: use 'sqlite' or 'postgresql'")


@pytest.fixture
def fresh_database_url(tmp_path: Path) -> Iterator[DatabaseFactory]:
    """A factory: ``fresh_database_url("sqlite" | "postgresql")`` -> URL of an empty database."""
    with ExitStack() as cleanup:

        def make(kind: str) -> str:
            if kind == "sqlite":
                return f"sqlite:///{_sqlite_path(tmp_path)}"
            if kind == "postgresql":
                return _postgres(cleanup)
            raise _unknown(kind)

        yield make


class MigratedTemplates:
    """One database of each kind migrated to the newest revision, made on first use and
    copied for each test that asks (``migrated_database_url``); the PostgreSQL one is
    dropped when the test process ends (``cleanup``, the session fixture's)."""

    def __init__(self, folder: Path, cleanup: ExitStack) -> None:
        self._folder = folder
        self._cleanup = cleanup
        self._sqlite: Path | None = None
        self._postgres: str | None = None

    def sqlite(self) -> Path:
        if self._sqlite is None:
            path = _sqlite_path(self._folder)
            Store.open(f"sqlite:///{path}").close()  # the last connection folds the WAL in
            self._sqlite = path
        return self._sqlite

    def postgres(self) -> str:
        """The template's database name (nobody stays connected to it)."""
        if self._postgres is None:
            url = _postgres(self._cleanup)
            Store.open(url).close()
            self._postgres = str(make_url(url).database)
        return self._postgres


@pytest.fixture(scope="session")
def migrated_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MigratedTemplates]:
    with ExitStack() as cleanup:
        yield MigratedTemplates(tmp_path_factory.mktemp("migrated"), cleanup)


@pytest.fixture
def migrated_database_url(
    tmp_path: Path, migrated_templates: MigratedTemplates
) -> Iterator[DatabaseFactory]:
    """A factory: ``migrated_database_url("sqlite" | "postgresql")`` -> URL of a database
    of its own with Treadle's schema at the newest revision (a copy of the template)."""
    with ExitStack() as cleanup:

        def make(kind: str) -> str:
            if kind == "sqlite":
                path = _sqlite_path(tmp_path)
                shutil.copyfile(migrated_templates.sqlite(), path)
                return f"sqlite:///{path}"
            if kind == "postgresql":
                return _postgres(cleanup, template=migrated_templates.postgres())
            raise _unknown(kind)

        yield make
