"""Starting on a database whose schema only ``treadle db upgrade`` may change: wait, or refuse.

``TREADLE_SCHEMA_UPGRADE`` says who upgrades the schema. With ``auto`` (one machine,
SQLite, tests) the scheduler and beat bring it up to date at start, as the embedded runner
does. In compose and Helm only the migrate job does (``wait``): a service started on an
older (or empty) schema logs one line, ``the database at db:5432/treadle is at schema
revision 0017, this Treadle needs 0042: waiting for `treadle db upgrade```, changes
nothing, and looks again every few seconds until the job has run, then starts; a stop
request (SIGTERM) ends the wait, and ``TREADLE_SCHEMA_WAIT_SECONDS`` bounds it. With
``refuse`` it exits at once with the same facts. A newer schema (a later Treadle upgraded
it) is accepted with a warning, as the clients accept it: revisions only add.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from treadle.common.errors import ServiceUnavailable
from treadle.common.settings import SchemaUpgrade, Settings
from treadle.scheduler.store import Store, migrate

__all__ = ["POLL_SECONDS", "SchemaBehind", "await_current_schema", "schema_lag"]

log = logging.getLogger("treadle.schema")

#: Seconds between two looks at the schema's revision while waiting for the upgrade.
POLL_SECONDS = 2.0


class SchemaBehind(ServiceUnavailable):
    """The schema is older than this Treadle needs, and this process may not upgrade it."""


def _where(engine: Engine) -> str:
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database or ':memory:'}"
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def _is_known(revision: str) -> bool:
    """Whether this Treadle ships ``revision`` (else a later Treadle wrote it)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        ScriptDirectory.from_config(migrate.alembic_config()).get_revision(revision)
    except CommandError:
        return False
    return True


def schema_lag(engine: Engine) -> str | None:
    """What the schema lacks, as a sentence; ``None`` when it is current (or newer).

    Raises SQLAlchemy's OperationalError when the database cannot be reached.
    """
    current = migrate.current_revision(engine)
    head = migrate.head_revision()
    if current == head:
        return None
    where = _where(engine)
    if current is None:
        return f"the database at {where} has no Treadle tables, this Treadle needs {head}"
    if not _is_known(current):
        log.warning(
            "the database at %s is at schema revision %s, newer than this Treadle (%s)",
            where,
            current,
            head,
        )
        return None
    return f"the database at {where} is at schema revision {current}, this Treadle needs {head}"


def await_current_schema(
    store: Store,
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    poll: float = POLL_SECONDS,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Return once the schema is current, as ``settings.schema_upgrade`` says.

    Never upgrades. Raises SchemaBehind (``refuse``, or ``wait`` past
    ``TREADLE_SCHEMA_WAIT_SECONDS``), ServiceUnavailable when ``stop`` is set meanwhile,
    OperationalError when the database cannot be reached at the first look.
    """
    lag = schema_lag(store.engine)
    if lag is None:
        return
    if settings.schema_upgrade is SchemaUpgrade.REFUSE:
        raise SchemaBehind(f"{lag}: run `treadle db upgrade` first (TREADLE_SCHEMA_UPGRADE=refuse)")
    log.warning("%s: waiting for `treadle db upgrade` (TREADLE_SCHEMA_UPGRADE=wait)", lag)
    limit = settings.schema_wait_seconds
    deadline = None if limit is None else monotonic() + limit
    unreachable = False
    while lag is not None:
        if deadline is not None and monotonic() >= deadline:
            raise SchemaBehind(f"{lag}: gave up after {limit:g} s waiting for `treadle db upgrade`")
        pause = poll if deadline is None else max(min(poll, deadline - monotonic()), 0.0)
        if stop is not None and stop.wait(pause):
            raise ServiceUnavailable("stopped while waiting for `treadle db upgrade`")
        if stop is None:
            time.sleep(pause)
        try:
            lag = schema_lag(store.engine)
            unreachable = False
        except (OperationalError, InterfaceError) as exc:
            if not unreachable:  # once per outage: the wait goes on
                reason = str(exc.orig or exc).strip().splitlines()[0]
                log.warning("the database went away while waiting for the schema: %s", reason)
            unreachable = True
    log.info("the schema is up to date now (`treadle db upgrade` ran): starting")
