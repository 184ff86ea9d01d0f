"""Fixtures shared by every test folder.

``fresh_database_url(kind)`` gives a URL to an empty database of its own: a SQLite file
under the test's temporary folder, or a uniquely named PostgreSQL database
(``treadle_test_<random>``) on the local server, dropped when the test ends. PostgreSQL
is required (it runs on CI): when it cannot be reached the test fails and says why.
Set ``TREADLE_TEST_POSTGRES_URL`` to use a server other than
``postgresql+psycopg2://postgres@127.0.0.1:5432/postgres``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

POSTGRES_ADMIN_URL = os.environ.get(
    "TREADLE_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)

DatabaseFactory = Callable[[str], str]


def _admin_engine() -> Engine:
    return create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _create_postgres_database(name: str) -> str:
    engine = _admin_engine()
    problem = None
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        problem = str(exc.orig).strip()
    finally:
        engine.dispose()
    if problem is not None:
        pytest.fail(
            f"PostgreSQL is not reachable at {make_url(POSTGRES_ADMIN_URL)!r}: {problem}\n"
            "Start it (.ci/run does) or point TREADLE_TEST_POSTGRES_URL at a server where "
            "the user may create databases.",
            pytrace=False,
        )
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _drop_postgres_database(name: str) -> None:
    engine = _admin_engine()
    try:
        with engine.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        engine.dispose()


@pytest.fixture
def fresh_database_url(tmp_path: Path) -> Iterator[DatabaseFactory]:
    """A factory: ``fresh_database_url("sqlite" | "postgresql")`` -> URL of an empty database."""
    created: list[str] = []

    def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'treadle-{uuid.uuid4().hex[:8]}.db'}"
        if kind == "postgresql":
            name = f"treadle_test_{uuid.uuid4().hex[:12]}"
            url = _create_postgres_database(name)
            created.append(name)
            return url
        raise ValueError(f"unknown database kind {kind!r}: use 'sqlite' or 'postgresql'")

    yield make
    for name in created:
        _drop_postgres_database(name)
