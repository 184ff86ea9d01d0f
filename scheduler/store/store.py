"""The entry point of persistence: open a database (upgrading its schema) and work in it.

``Store.open(url)`` is all a process needs: the same code serves the embedded runner on a
SQLite file and scheduler processes sharing PostgreSQL. The store reads no clock of its
own except for bookkeeping columns (``recorded_at``, ``updated_at``), and that clock is
injectable so tests are deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from treadle.common.errors import ServiceUnavailable
from treadle.scheduler.store import migrate
from treadle.scheduler.store.base import Clock, utc_now
from treadle.scheduler.store.engine import READ_ONLY_OPTION, create_store_engine, safe_url
from treadle.scheduler.store.run_notices import RunsSaved
from treadle.scheduler.store.secret_keys import StoreKeys
from treadle.scheduler.store.uow import UnitOfWork


class Store:
    """A database holding Treadle's runs, definitions and queues."""

    def __init__(
        self, engine: Engine, *, clock: Clock = utc_now, secret_key: str | None = None
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._keys = StoreKeys(engine.url, secret_key)
        #: Whether the services writing through this store record a lifecycle event with
        #: each change (``TREADLE_LIFECYCLE_EVENTS``); set where the store is opened.
        self.lifecycle_events = False
        #: Told the ids of the runs each unit of work saved, after its commit (in this
        #: process: the web UI's streams on SQLite; PostgreSQL also NOTIFYs every process).
        self.runs_saved: list[RunsSaved] = []
        #: Whether saves of runs NOTIFY the web UI's listeners (PostgreSQL;
        #: ``TREADLE_RUN_CHANGE_NOTICES``); set where the store is opened.
        self.run_change_notices = True
        #: Whether a step's statements run as server-side prepared statements (PostgreSQL;
        #: ``TREADLE_PREPARED_STATEMENTS``); set where the store is opened.
        self.prepared_statements = True

    @classmethod
    def open(
        cls,
        url: str,
        *,
        migrate: bool = True,
        clock: Clock = utc_now,
        secret_key: str | None = None,
        pre_ping: bool = True,
    ) -> Store:
        """Connect to ``url``; with ``migrate`` bring the schema to the newest revision.

        ``pre_ping=False`` (PostgreSQL): a pooled connection is not pinged before each
        transaction (one round trip each); a connection the server dropped then fails
        its transaction, which invalidates the pool, and the caller tries again. The
        scheduler does that: its every step is retried.

        Raises ConfigurationError for an unusable URL and ServiceUnavailable when the
        database cannot be reached. ``secret_key`` (``TREADLE_SECRET_KEY``'s text) is
        the key secrets are encrypted with; without it the store finds one as
        :mod:`~treadle.scheduler.store.secret_keys` says, when a secret first needs it.
        """
        engine = create_store_engine(url, pre_ping=pre_ping)
        try:
            if migrate:
                _upgrade(engine)
        except OperationalError as exc:
            engine.dispose()
            raise ServiceUnavailable(
                f"cannot reach the database at {safe_url(url)}: {_reason(exc)}"
            ) from exc
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, clock=clock, secret_key=secret_key)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def keys(self) -> StoreKeys:
        """Where this store's secret key comes from (resolved on first use)."""
        return self._keys

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return safe_url(self._engine.url)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        """One transaction: committed when the block ends, rolled back if it raises.

        Callbacks registered with :meth:`UnitOfWork.after_commit` run once the commit has
        succeeded (never after a rollback): caches of what was written update there.
        """
        with self._engine.begin() as connection:
            uow = UnitOfWork(
                connection,
                self._clock,
                keys=self._keys,
                runs_saved=self.runs_saved,
                notify_run_changes=self.run_change_notices,
                prepared_statements=self.prepared_statements,
            )
            yield uow
        uow.committed()

    @contextmanager
    def snapshot(self) -> Iterator[UnitOfWork]:
        """One read-only transaction that sees the database as it was at one moment.

        Reading a run is several statements (the run row, its executions, its units); in a
        unit of work on PostgreSQL (READ COMMITTED) each sees what was committed when *it*
        began, so a scheduler committing in between tears the read. Here every statement
        sees the same committed state: on PostgreSQL a ``REPEATABLE READ, READ ONLY``
        transaction, on SQLite a deferred (non-locking) transaction, which in WAL mode is
        already a snapshot and never blocks writers. So readers never retry and never fail
        because a run is busy. Writing inside raises (PostgreSQL) or is a caller's bug.

        On PostgreSQL the characteristics are given to psycopg2 for this transaction
        only (``BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY``, no statement of their
        own), and taken back before the connection returns to the pool: set as
        SQLAlchemy execution options, they would cost two more round trips to reset there.
        """
        with self._engine.connect() as connection:
            postgres = connection.dialect.name == "postgresql"
            if not postgres:
                connection.execution_options(**{READ_ONLY_OPTION: True})
            session = _snapshot_session(connection) if postgres else nullcontext()
            with session, connection.begin():
                uow = UnitOfWork(connection, self._clock, read_only=True, keys=self._keys)
                yield uow
        uow.committed()  # what was read was committed: caches of it may keep it


@contextmanager
def _snapshot_session(connection: Connection) -> Iterator[None]:
    """psycopg2 begins the connection's next transactions ``REPEATABLE READ, READ ONLY``
    (no statement: the ``BEGIN`` says it), until the block ends; a connection that cannot
    be given its defaults back is discarded, not pooled."""
    driver: Any = connection.connection.dbapi_connection
    driver.set_session(isolation_level="REPEATABLE READ", readonly=True)
    try:
        yield
    finally:
        try:
            driver.set_session(isolation_level="DEFAULT", readonly="DEFAULT")
        except Exception:
            connection.invalidate()  # never back to the pool read-only
            raise


def _upgrade(engine: Engine) -> None:
    migrate.upgrade(engine)


def _reason(exc: OperationalError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
