"""Engines configured for how Treadle uses each database.

SQLite (embedded mode): the file's folder is created; WAL lets readers work while one
writer commits; ``busy_timeout`` makes a second writer wait rather than fail; and every
transaction starts with ``BEGIN IMMEDIATE``, so a unit of work holds the write lock from
its first statement. That is what serialises runs on SQLite (there is no ``FOR UPDATE``)
and what avoids the "database is locked" failure of a read transaction that later writes.
Only a read-only snapshot (``Store.snapshot``) begins deferred: it never writes.

PostgreSQL (distributed mode): ``pool_pre_ping`` survives restarts of the server (the
scheduler, which retries every failed step anyway, turns it off: one round trip less per
transaction), and
``execute_batch`` sends bulk UPDATEs of units in pages rather than one round trip per row.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from treadle.common.errors import ConfigurationError

SQLITE_BUSY_TIMEOUT_MS = 30_000

#: Execution option marking a connection's transaction read-only (``Store.snapshot``): on
#: SQLite it begins deferred, taking no write lock.
READ_ONLY_OPTION = "treadle_read_only"


def safe_url(url: str | URL) -> str:
    """``url`` with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            f"invalid database URL {url!r}: expected e.g. sqlite:///path/to/treadle.db "
            "or postgresql+psycopg2://user@host:5432/dbname (TREADLE_DATABASE_URL)"
        ) from None
    return parsed


def is_memory_sqlite(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or database.startswith("file::memory:")


def create_store_engine(url: str, *, pre_ping: bool = True) -> Engine:
    """An engine for ``url`` (``sqlite:///...`` or ``postgresql[+psycopg2]://...``);
    ``pre_ping``: test a pooled PostgreSQL connection before each checkout."""
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        # A bare ``postgresql://`` means psycopg2 here (SQLAlchemy 2.1 would pick psycopg 3).
        if "+" in parsed.drivername and parsed.get_driver_name() != "psycopg2":
            raise ConfigurationError(
                f"unsupported PostgreSQL driver in {safe_url(parsed)}: use postgresql+psycopg2://"
            )
        return create_engine(
            parsed.set(drivername="postgresql+psycopg2"),
            pool_pre_ping=pre_ping,
            executemany_mode="values_plus_batch",
            executemany_batch_page_size=500,
        )
    raise ConfigurationError(
        f"unsupported database {safe_url(parsed)}: Treadle stores runs in SQLite or PostgreSQL"
    )


def _sqlite_engine(url: URL) -> Engine:
    kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}}
    if is_memory_sqlite(url):
        kwargs["poolclass"] = StaticPool
        kwargs["connect_args"]["check_same_thread"] = False
    else:
        Path(url.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module (it would not BEGIN before
    # SELECT or DDL); SQLAlchemy's "begin" event below emits BEGIN IMMEDIATE instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode = WAL``, waiting (up to the busy timeout) while another process
    holds the lock: on a new database the switch needs it, and SQLite answers "database is
    locked" at once rather than through the busy handler (processes opening one new file
    together, each about to upgrade its schema)."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _sqlite_on_begin(connection: Any) -> None:
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN")  # a read snapshot (WAL), no write lock
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
