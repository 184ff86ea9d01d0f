"""``TREADLE_SCHEMA_UPGRADE``: with ``wait`` a service started on an older schema says so in
one line, changes nothing and starts once ``treadle db upgrade`` has run; with ``refuse`` it
exits at once with the same facts; ``auto`` (the default) upgrades at start as before.

The first tests call the gate the services go through on a SQLite file (fast); the last two
start the real ``treadle scheduler`` and ``treadle beat`` on PostgreSQL (slow).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from treadle.common.errors import ServiceUnavailable
from treadle.common.settings import SchemaUpgrade, Settings
from treadle.scheduler.service.schema_gate import SchemaBehind, await_current_schema
from treadle.scheduler.service.startup import RetryPolicy, open_store
from treadle.scheduler.store import Store
from treadle.scheduler.store.migrate import alembic_config, current_revision, head_revision
from treadle.testing import throwaway_postgres_database, throwaway_rabbitmq_vhost
from treadle.testing.cli import TreadleCli
from treadle.testing.processes import (
    SCHEDULER_READY,
    ServiceProcess,
    treadle_environment,
    wait_until,
)

HEAD = head_revision()
assert HEAD is not None
#: The revision before the newest: a database a release behind.
OLDER = str(ScriptDirectory.from_config(alembic_config()).get_revision(HEAD).down_revision)


def database_at(url: str, revision: str) -> str:
    """``url``'s database brought to ``revision`` (up from nothing, or down from the head)."""
    Store.open(url).close()
    command.downgrade(alembic_config(url=url), revision)
    return url


@pytest.fixture
def older_sqlite(tmp_path: Path) -> str:
    return database_at(f"sqlite:///{tmp_path / 'treadle.db'}", OLDER)


def settings(url: str, mode: SchemaUpgrade, **more: float) -> Settings:
    return Settings(database_url=url, schema_upgrade=mode, **more)


def test_refuse_names_both_revisions_and_changes_nothing(older_sqlite: str) -> None:
    store = Store.open(older_sqlite, migrate=False)
    try:
        with pytest.raises(SchemaBehind) as refused:
            await_current_schema(store, settings(older_sqlite, SchemaUpgrade.REFUSE))
        assert current_revision(store.engine) == OLDER
    finally:
        store.close()
    where = f"SQLite file {older_sqlite.removeprefix('sqlite:///')}"
    assert str(refused.value) == (
        f"the database at {where} is at schema revision {OLDER}, this Treadle needs {HEAD}: "
        "run `treadle db upgrade` first (TREADLE_SCHEMA_UPGRADE=refuse)"
    )


def test_wait_logs_one_line_then_gives_up_after_the_wait_setting(
    older_sqlite: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = iter(float(second) for second in range(100))  # a fake monotonic clock, 1 s a look
    store = Store.open(older_sqlite, migrate=False)
    caplog.set_level(logging.INFO, logger="treadle.schema")
    try:
        with pytest.raises(SchemaBehind, match=r"gave up after 5 s waiting for `treadle db upg"):
            await_current_schema(
                store,
                settings(older_sqlite, SchemaUpgrade.WAIT, schema_wait_seconds=5),
                poll=0.0,
                monotonic=lambda: next(clock),
            )
        assert current_revision(store.engine) == OLDER
    finally:
        store.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "treadle.schema"]
    assert len(lines) == 1, lines
    assert lines[0].endswith(
        f"is at schema revision {OLDER}, this Treadle needs {HEAD}: waiting for "
        "`treadle db upgrade` (TREADLE_SCHEMA_UPGRADE=wait)"
    )


def test_wait_goes_on_once_the_upgrade_ran(older_sqlite: str) -> None:
    store = Store.open(older_sqlite, migrate=False)
    outcome: list[BaseException | None] = []

    def wait() -> None:
        try:
            await_current_schema(store, settings(older_sqlite, SchemaUpgrade.WAIT), poll=0.05)
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        command.upgrade(alembic_config(url=older_sqlite), "head")  # `treadle db upgrade`
        waiter.join(30)
        assert outcome == [None]
    finally:
        waiter.join(30)
        store.close()


def test_a_stop_request_ends_the_wait(older_sqlite: str) -> None:
    stop = threading.Event()
    stop.set()  # SIGTERM while waiting
    store = Store.open(older_sqlite, migrate=False)
    try:
        with pytest.raises(ServiceUnavailable, match="stopped while waiting for `treadle db"):
            await_current_schema(store, settings(older_sqlite, SchemaUpgrade.WAIT), stop=stop)
    finally:
        store.close()


def test_a_newer_schema_is_accepted_with_a_warning(
    older_sqlite: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store.open(older_sqlite)  # the head
    try:
        with store.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999_later'"))
        caplog.set_level(logging.WARNING, logger="treadle.schema")
        await_current_schema(store, settings(older_sqlite, SchemaUpgrade.REFUSE))
    finally:
        store.close()
    assert f"is at schema revision 9999_later, newer than this Treadle ({HEAD})" in caplog.text


def test_auto_upgrades_at_start_as_before(older_sqlite: str) -> None:
    store = open_store(settings(older_sqlite, SchemaUpgrade.AUTO), policy=RetryPolicy())
    try:
        assert current_revision(store.engine) == HEAD
    finally:
        store.close()


# -- the real services on PostgreSQL --------------------------------------------------------


@pytest.fixture
def older_postgres() -> Iterator[str]:
    with throwaway_postgres_database("treadle_schema") as url:
        yield database_at(url, OLDER)


@pytest.mark.services
@pytest.mark.slow
def test_a_scheduler_told_to_wait_starts_once_treadle_db_upgrade_ran(
    older_postgres: str, tmp_path: Path
) -> None:
    with throwaway_rabbitmq_vhost("treadle_schema") as broker_url:
        env = treadle_environment(
            database_url=older_postgres,
            broker_url=broker_url,
            schema_upgrade="wait",
            health_dir=str(tmp_path / "health"),
            log_level="INFO",
            log_format="text",
        )
        cli = TreadleCli(tmp_path, env, in_process=True)
        scheduler = ServiceProcess("scheduler", ["scheduler"], env, tmp_path / "scheduler.log")
        try:
            scheduler.wait_for_log("waiting for `treadle db upgrade`", 60)
            [line] = scheduler.lines_with("waiting for `treadle db upgrade`")
            assert (
                f"the database at 127.0.0.1:5432/{older_postgres.rsplit('/', 1)[1]} is at schema "
                f"revision {OLDER}, this Treadle needs {HEAD}: waiting for `treadle db upgrade` "
                "(TREADLE_SCHEMA_UPGRADE=wait)"
            ) in line
            starting = cli("health", "scheduler")
            assert starting.code == 1, starting
            assert f"scheduler (pid {scheduler.pid}) is starting" in starting.stderr
            with Store.open(older_postgres, migrate=False) as store:
                assert current_revision(store.engine) == OLDER  # untouched
            upgraded = cli("db", "upgrade", code=0)
            assert f"upgraded from revision {OLDER} to {HEAD}" in upgraded.stdout
            scheduler.wait_for_log(SCHEDULER_READY, 60)
            assert scheduler.logged("the schema is up to date now (`treadle db upgrade` ran)")
            wait_until(lambda: cli("health", "scheduler").code == 0, 30, "a healthy scheduler")
        finally:
            scheduler.close()


@pytest.mark.services
@pytest.mark.slow
def test_beat_told_to_refuse_exits_at_once_with_the_revisions(
    older_postgres: str, tmp_path: Path
) -> None:
    env = treadle_environment(
        database_url=older_postgres, schema_upgrade="refuse", health_dir=str(tmp_path / "health")
    )
    result = TreadleCli(tmp_path, env)("beat", timeout=60)
    assert result.code == 1, result
    assert (
        f"cannot start: the database at 127.0.0.1:5432/{older_postgres.rsplit('/', 1)[1]} is at "
        f"schema revision {OLDER}, this Treadle needs {HEAD}: run `treadle db upgrade` first "
        "(TREADLE_SCHEMA_UPGRADE=refuse)"
    ) in result.stderr
    with Store.open(older_postgres, migrate=False) as store:
        assert current_revision(store.engine) == OLDER
