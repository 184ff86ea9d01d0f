"""Bringing a database's schema up to date with the installed Treadle, safely from any process.

The Alembic revisions ship inside the package (``treadle/migrations``), so an installed
Treadle can upgrade its own database without a checkout or an ``alembic.ini``. Several
processes may start at once (a scheduler and two workers, or parallel tests): the upgrade
runs in one transaction that first takes a lock — ``pg_advisory_xact_lock`` on PostgreSQL,
the write lock of ``BEGIN IMMEDIATE`` on SQLite — so the second process waits, then finds
the schema current and does nothing.

Every command of the CLI and every service opens the store, and so asks whether the schema
is current: that question is answered without Alembic (the head from the revision files'
own ``revision``/``down_revision`` lines, the database's from its ``alembic_version``
row), which would otherwise cost each ``treadle`` command most of a second to import and
to read every revision module. Alembic is imported only to upgrade.
"""

from __future__ import annotations

import re
import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

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
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_path()))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


_REVISION_LINE = re.compile(
    r'^(?P<key>revision|down_revision)\b[^=\n]*=\s*(?:"(?P<value>[^"]+)"|None)\s*$', re.MULTILINE
)


@cache
def head_revision() -> str | None:
    """The newest revision this Treadle knows: the one no other revision follows."""
    revisions: set[str] = set()
    followed: set[str] = set()
    for path in (migrations_path() / "versions").glob("*.py"):
        for line in _REVISION_LINE.finditer(path.read_text(encoding="utf-8")):
            if line["value"] is not None:
                (revisions if line["key"] == "revision" else followed).add(line["value"])
    heads = revisions - followed
    if len(heads) == 1:
        return heads.pop()
    from alembic.script import ScriptDirectory  # a branch or an unusual file: ask Alembic

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        return rows[0][0] if len(rows) == 1 else None


def lock_for_migration(connection: Connection) -> None:
    """Serialise schema changes between processes for the rest of this transaction."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    # SQLite: the transaction began with BEGIN IMMEDIATE (see engine.py) and holds the lock.


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Apply the revisions up to ``revision``; returns the revision the database is now at."""
    if revision == "head" and current_revision(engine) == head_revision():
        return head_revision()
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with _PROCESS_LOCK, engine.begin() as connection:
        lock_for_migration(connection)
        command.upgrade(alembic_config(connection=connection), revision)
        return MigrationContext.configure(connection).get_current_revision()
