"""Throwaway PostgreSQL databases, RabbitMQ vhosts and Redis databases.

Each context manager creates a uniquely named resource, yields its URL, and removes it on
exit, so concurrent test runs never see each other's data. The servers' addresses come
from ``TREADLE_TEST_POSTGRES_ADMIN_URL``, ``TREADLE_TEST_RABBITMQ_URL`` and
``TREADLE_TEST_REDIS_URL`` (defaults: the local services on their standard ports).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

POSTGRES_ADMIN_URL = os.environ.get(
    "TREADLE_TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
RABBITMQ_URL = os.environ.get("TREADLE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")
REDIS_URL = os.environ.get("TREADLE_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@contextmanager
def throwaway_postgres_database(
    prefix: str = "treadle_test", *, template: str | None = None
) -> Iterator[str]:
    """A new PostgreSQL database; its URL is yielded, and it is dropped afterwards.

    It is empty, or with ``template`` (the name of a database nobody is connected to) a
    copy of that database: copying one migrated once is several times faster than
    migrating each new database.
    """
    name = unique_name(prefix)
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    copy_of = f' TEMPLATE "{template}"' if template is not None else ""
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{copy_of}'))
        try:
            yield (
                make_url(POSTGRES_ADMIN_URL)
                .set(database=name)
                .render_as_string(hide_password=False)
            )
        finally:
            with admin.connect() as connection:
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        admin.dispose()


def _rabbitmqctl(*args: str) -> None:
    tool = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([tool, "-q", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def throwaway_rabbitmq_vhost(prefix: str = "treadle_test") -> Iterator[str]:
    """A new RabbitMQ vhost the ``guest`` user may use; yields the broker URL for it.

    Deleting the vhost afterwards removes every queue and message the test made.
    """
    name = unique_name(prefix)
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"{RABBITMQ_URL.rstrip('/')}/{name}"
    finally:
        _rabbitmqctl("delete_vhost", name)


@contextmanager
def throwaway_redis_database(number: int | None = None) -> Iterator[str]:
    """A Redis logical database (flushed before and after); yields its URL.

    Without ``number``, one of databases 1-15 is chosen from the process id, so parallel
    test processes rarely share one; database 0 is left alone.
    """
    import redis

    chosen = number if number is not None else 1 + os.getpid() % 15
    url = f"{REDIS_URL.rstrip('/')}/{chosen}"
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
        yield url
    finally:
        client.flushdb()
        client.close()
