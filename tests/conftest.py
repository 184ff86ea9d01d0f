"""Fixtures shared by every test folder.

``fresh_database_url(kind)`` gives a URL to an empty database of its own: a SQLite file
under the test's temporary folder, or a uniquely named PostgreSQL database on the local
server (``treadle.testing.throwaway_postgres_database``), dropped when the test ends.
PostgreSQL is required (it runs on CI): when it cannot be reached the test fails and says
why. Set ``TREADLE_TEST_POSTGRES_ADMIN_URL`` to use another server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from treadle.testing import POSTGRES_ADMIN_URL, throwaway_postgres_database

DatabaseFactory = Callable[[str], str]


@pytest.fixture
def fresh_database_url(tmp_path: Path) -> Iterator[DatabaseFactory]:
    """A factory: ``fresh_database_url("sqlite" | "postgresql")`` -> URL of an empty database."""
    with ExitStack() as cleanup:

        def make(kind: str) -> str:
            if kind == "sqlite":
                return f"sqlite:///{tmp_path / f'treadle-{uuid.uuid4().hex[:8]}.db'}"
            if kind == "postgresql":
                try:
                    return cleanup.enter_context(throwaway_postgres_database())
                except OperationalError as exc:
                    pytest.fail(
                        f"PostgreSQL is not reachable at {make_url(POSTGRES_ADMIN_URL)!r}: "
                        f"{str(exc.orig).strip()}\nStart it (.ci/run does) or point "
                        "TREADLE_TEST_POSTGRES_ADMIN_URL at a server where the user may "
                        "create databases.",
                        pytrace=False,
                    )
            raise ValueError(f"unknown database kind {kind!r}: use 'sqlite' or 'postgresql'")

        yield make
