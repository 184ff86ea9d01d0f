"""How a client reaches the database: bounded connection time, clear errors, no migrations.

A client runs inside someone else's application, so it must never hang on a database that
is down and never change the database's schema behind the operators' backs:

* PostgreSQL connections give up after ``connect_timeout`` seconds (libpq's own
  ``connect_timeout``, whole seconds, at least 2);
* a connection failure becomes :class:`~treadle.common.errors.ServiceUnavailable` naming
  ``host:port`` and the driver's reason, whichever method hit it;
* the schema is checked, not upgraded: an empty or older database is a
  :class:`~treadle.common.errors.ConfigurationError` telling what to run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from treadle.common.errors import ConfigurationError, ServiceUnavailable
from treadle.scheduler.store import Store
from treadle.scheduler.store.engine import create_store_engine, parse_url, safe_url

log = logging.getLogger("treadle.client")

#: libpq refuses shorter connect timeouts (a value of 1 means 2).
MIN_CONNECT_TIMEOUT = 2


def database_location(url: str | URL) -> str:
    """``host:port/database`` for PostgreSQL, the file for SQLite: what messages name."""
    parsed = parse_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite file {parsed.database or ':memory:'}"
    host = parsed.host or "localhost"
    port = parsed.port or 5432
    return f"{host}:{port}/{parsed.database or ''}"


def open_client_store(url: str, connect_timeout: float, lifecycle_events: bool = False) -> Store:
    """A store on ``url`` that connects lazily, with a bounded connect time and no migration;
    its writers record lifecycle events when ``lifecycle_events`` (the setting) says so.

    Raises ConfigurationError for a URL Treadle cannot use; nothing is connected yet.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "postgresql":
        seconds = max(MIN_CONNECT_TIMEOUT, math.ceil(connect_timeout))
        parsed = parsed.update_query_dict({"connect_timeout": str(seconds)})
    store = Store(create_store_engine(parsed.render_as_string(hide_password=False)))
    store.lifecycle_events = lifecycle_events
    return store


def _is_connection_failure(exc: DBAPIError) -> bool:
    """Whether the error means the database cannot be reached (not that a statement failed).

    psycopg2 reports server-side statement errors (deadlocks, cancelled statements) as
    subclasses of OperationalError *with* an SQLSTATE code; failing to connect, or losing
    the connection, comes without one. SQLite's operational errors (cannot open the file,
    locked for too long) all mean the database is not usable right now.
    """
    if exc.connection_invalidated:
        return True
    return getattr(exc.orig, "pgcode", None) is None


def driver_reason(exc: BaseException) -> str:
    """The driver's message on one line (libpq spreads it over several)."""
    orig = getattr(exc, "orig", None) or exc
    return " ".join(str(orig).split()) or type(orig).__name__


@contextmanager
def reaching(store: Store) -> Iterator[None]:
    """Turn a failure to reach ``store``'s database into ServiceUnavailable."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        if not _is_connection_failure(exc):
            raise
        where = database_location(store.engine.url)
        raise ServiceUnavailable(
            f"database at {where} is unavailable: {driver_reason(exc)}"
        ) from exc


def check_schema(store: Store) -> None:
    """Refuse a database without Treadle's tables or with an older schema than ours.

    A newer schema (a later Treadle upgraded it) is allowed with a warning: revisions add
    to the schema, and the scheduler's version decides what it needs.
    """
    from treadle.scheduler.store import migrate

    current = migrate.current_revision(store.engine)
    head = migrate.head_revision()
    if current == head:
        return
    where = safe_url(store.engine.url.difference_update_query(["connect_timeout"]))
    if current is None:
        raise ConfigurationError(
            f"the database {where} has no Treadle tables: run `treadle db upgrade` "
            "(or start `treadle scheduler`, which does) before starting runs"
        )
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    script = ScriptDirectory.from_config(migrate.alembic_config())
    try:
        script.get_revision(current)
    except CommandError:
        log.warning(
            "the database %s is at schema revision %s, newer than this Treadle (%s)",
            where,
            current,
            head,
        )
        return
    raise ConfigurationError(
        f"the database {where} is at schema revision {current}, older than this Treadle "
        f"needs ({head}): run `treadle db upgrade`"
    )
