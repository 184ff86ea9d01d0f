"""Bringing a database's schema up to date with the installed Treadle, safely from any process.

The Alembic revisions ship inside the package (``treadle/migrations``), so an installed
Treadle can upgrade its own database without a checkout or an ``alembic.ini``. Several
processes may start at once (a scheduler and two workers, or parallel tests): the upgrade
runs in one transaction that first takes a lock — ``pg_advisory_xact_lock`` on PostgreSQL,
the write lock of ``BEGIN IMMEDIATE`` on SQLite — so the second process waits, then finds
the schema current and does nothing.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

#: Alembic keeps the running migration's context in module globals: one upgrade per process
#: at a time, whatever the database.
_PROCESS_LOCK = threading.Lock()

#: Key of the PostgreSQL advisory lock held while migrating ("treadle" in ASCII, as an int).
MIGRATION_LOCK_KEY = int.from_bytes(b"treadle", "big")


def migrations_path() -> Path:
    """The folder of Alembic's ``env.py`` and ``versions/`` inside the installed package.

    Found from this module (``treadle/scheduler/store/``) rather than by importing
    ``treadle``, whose package would bring the client, and with it the services, into the
    store's imports.
    """
    return Path(__file__).parents[2] / "migrations"


def alembic_config(*, url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at the packaged revisions (no ini file needed)."""
    config = Config()
    config.set_main_option("script_location", str(migrations_path()))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str | None:
    """The newest revision this Treadle knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def lock_for_migration(connection: Connection) -> None:
    """Serialise schema changes between processes for the rest of this transaction."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    # SQLite: the transaction began with BEGIN IMMEDIATE (see engine.py) and holds the lock.


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Apply the revisions up to ``revision``; returns the revision the database is now at."""
    if revision == "head" and current_revision(engine) == head_revision():
        return head_revision()
    with _PROCESS_LOCK, engine.begin() as connection:
        lock_for_migration(connection)
        command.upgrade(alembic_config(connection=connection), revision)
        return MigrationContext.configure(connection).get_current_revision()
