"""The migrations build exactly the schema the models declare, on SQLite and PostgreSQL,
and ``treadle db upgrade`` applies them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from treadle.common.errors import ConfigurationError, ServiceUnavailable
from treadle.scheduler.store import Store
from treadle.scheduler.store.migrate import alembic_config, current_revision, head_revision
from treadle.scheduler.store.models import metadata


def test_upgraded_database_matches_the_models(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            assert context.get_current_revision() == head_revision()
    finally:
        store.close()


def test_the_head_read_from_the_revision_files_is_alembics_head(db_url: str) -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()
    store = Store.open(db_url)
    try:
        with store.engine.connect() as connection:
            assert (
                current_revision(store.engine)
                == MigrationContext.configure(connection).get_current_revision()
            )
        command.downgrade(alembic_config(url=db_url), "0017")
        assert current_revision(store.engine) == "0017"
        command.downgrade(alembic_config(url=db_url), "base")
        assert current_revision(store.engine) is None
    finally:
        store.close()


def test_downgrade_removes_every_table_and_upgrade_restores_them(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        command.downgrade(alembic_config(url=db_url), "base")
        assert set(inspect(store.engine).get_table_names()) <= {"alembic_version"}
        command.upgrade(alembic_config(url=db_url), "head")
        assert set(inspect(store.engine).get_table_names()) >= set(metadata.tables)
        assert current_revision(store.engine) == head_revision()
    finally:
        store.close()


UPGRADER = """
import sys
from treadle.scheduler.store import Store
print("ready", flush=True)
sys.stdin.readline()
Store.open(sys.argv[1]).close()
print("done", flush=True)
"""


def test_processes_upgrading_at_once_do_not_clash(db_url: str) -> None:
    upgraders = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADER, db_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for process in upgraders:  # all imported and waiting: release them together
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
        for process in upgraders:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outcomes = [process.communicate(timeout=120) for process in upgraders]
    finally:
        for process in upgraders:
            process.kill()
    assert [p.returncode for p in upgraders] == [0, 0, 0], [err for _, err in outcomes]
    store = Store.open(db_url, migrate=False)
    try:
        assert current_revision(store.engine) == head_revision()
    finally:
        store.close()


def test_threads_opening_stores_at_once_do_not_clash(db_url: str) -> None:
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def open_store() -> None:
        start.wait()
        try:
            Store.open(db_url).close()
        except BaseException as exc:  # collected and reported below
            failures.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []


def test_sqlite_folders_are_created_and_values_come_back_as_utc(tmp_path: Path, build) -> None:
    from datetime import datetime, timedelta, timezone

    url = f"sqlite:///{tmp_path / 'deep' / 'er' / 'treadle.db'}"
    store = Store.open(url)
    try:
        at = datetime(2024, 5, 1, 17, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
        with store.unit_of_work() as uow:
            uow.kv_set("k", 1, secret=False, at=at)
        with store.unit_of_work() as uow:
            entry = uow.kv_list()[0]
        assert entry.updated_at == build.t0
        assert entry.updated_at.utcoffset() == timedelta(0)
        with pytest.raises(Exception, match="naive datetime"), store.unit_of_work() as uow:
            uow.kv_set("k", 2, secret=False, at=datetime(2024, 5, 1))
    finally:
        store.close()
    assert (tmp_path / "deep" / "er" / "treadle.db").exists()


def test_unusable_urls_and_unreachable_servers_are_reported_clearly() -> None:
    with pytest.raises(ConfigurationError, match="mysql"):
        Store.open("mysql://localhost/treadle")
    with pytest.raises(ConfigurationError, match="invalid database URL"):
        Store.open("not a url")
    with pytest.raises(ServiceUnavailable, match="cannot reach the database at postgresql"):
        Store.open("postgresql+psycopg2://postgres@127.0.0.1:1/treadle")


def _treadle(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).parent / "treadle"
    return subprocess.run(
        [str(executable), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_treadle_db_upgrade_applies_the_migrations(tmp_path: Path) -> None:
    db_file = tmp_path / "cli" / "treadle.db"
    url = f"sqlite:///{db_file}"
    first = _treadle("db", "upgrade", "--database-url", url)
    assert first.returncode == 0, first.stderr
    assert f"upgraded from revision <empty> to {head_revision()}" in first.stdout
    store = Store.open(url, migrate=False)
    try:
        assert set(inspect(store.engine).get_table_names()) >= set(metadata.tables)
    finally:
        store.close()

    again = _treadle("db", "upgrade", env={"TREADLE_DATABASE_URL": url})
    assert again.returncode == 0, again.stderr
    assert f"at revision {head_revision()} (already up to date)" in again.stdout

    bad = _treadle("db", "upgrade", "--database-url", "mysql://localhost/x")
    assert bad.returncode == 2
    assert "unsupported database mysql://localhost/x" in bad.stderr

    down = _treadle("db", "upgrade", "--database-url", "postgresql://postgres:pw@127.0.0.1:1/x")
    assert down.returncode == 1
    assert "cannot upgrade the database at postgresql://postgres:***@127.0.0.1:1/x" in down.stderr
    assert "pw" not in down.stderr
