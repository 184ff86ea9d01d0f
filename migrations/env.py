"""Alembic environment for Treadle's schema (run by ``treadle db upgrade`` or ``alembic``).

The database URL comes from, in order: a connection handed over by the caller
(``config.attributes["connection"]``, as :mod:`treadle.scheduler.store.migrate` does),
``alembic -x url=...``, ``sqlalchemy.url`` in the configuration, then
``TREADLE_DATABASE_URL`` (and its default). Online upgrades run in one transaction that
holds a migration lock, so concurrent upgrades from several processes do not clash.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from treadle.common.settings import DEFAULT_DATABASE_URL
from treadle.scheduler.store.engine import create_store_engine
from treadle.scheduler.store.migrate import lock_for_migration
from treadle.scheduler.store.models import metadata

config = context.config


def database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        url = config.get_main_option("sqlalchemy.url")
    if not url:
        url = os.environ.get("TREADLE_DATABASE_URL", DEFAULT_DATABASE_URL)
    return url


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (``alembic upgrade head --sql``)."""
    url = database_url()
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if given is not None:
        run_with(given)
        return
    engine = create_store_engine(database_url())
    try:
        with engine.begin() as connection:
            lock_for_migration(connection)
            run_with(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
