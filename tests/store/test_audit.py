"""The audit log on SQLite and PostgreSQL: recorded, filtered, paged newest first; the
database refuses to change or remove entries; the retention purge leaves it alone; and
migration 0009 creates and removes the tables and triggers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from treadle.common.access import AuditOutcome
from treadle.common.statuses import RunStatus
from treadle.scheduler.service.retention import PurgeRequest, purge
from treadle.scheduler.store import AuditEntry, AuditRecord, Store
from treadle.scheduler.store.migrate import alembic_config, current_revision, head_revision
from treadle.scheduler.store.models import audit_log
from treadle.scheduler.store.retention_repo import PER_RUN_TABLES

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def entry(n: int, **changes: Any) -> AuditEntry:
    base = AuditEntry(
        at=T0 + timedelta(minutes=n),
        actor="token:ci" if n % 2 else "cli:ada",
        workspace="team" if n % 3 == 0 else "default",
        action="run.start" if n % 2 else "token.create",
        target=f"target-{n}",
        outcome=AuditOutcome.OK,
        details={"n": n, "nested": {"tags": ["a", "é"]}},
    )
    return replace(base, **changes)


def record_all(store: Store, entries: list[AuditEntry]) -> list[int]:
    with store.unit_of_work() as uow:
        return [uow.record_audit(e) for e in entries]


def stored(store: Store) -> list[AuditRecord]:
    with store.snapshot() as uow:
        return uow.list_audit(workspace=None, limit=1000)


def test_entries_come_back_newest_first_as_recorded(store: Store) -> None:
    refused = entry(1, outcome=AuditOutcome.REFUSED, target=None, details=None)
    ids = record_all(store, [entry(0), refused, entry(2, outcome=AuditOutcome.FAILED)])
    assert ids == sorted(ids)
    assert len(set(ids)) == 3

    records = stored(store)

    assert [r.id for r in records] == ids[::-1]
    newest, middle, oldest = records
    assert (newest.outcome, newest.details) == (AuditOutcome.FAILED, entry(2).details)
    assert (middle.outcome, middle.target, middle.details) == (AuditOutcome.REFUSED, None, None)
    assert oldest.at == T0
    assert oldest.at.utcoffset() == timedelta(0)
    assert (oldest.actor, oldest.workspace, oldest.action, oldest.target) == (
        "cli:ada",
        "team",
        "token.create",
        "target-0",
    )


def test_filters_combine(store: Store) -> None:
    ids = record_all(store, [entry(n) for n in range(12)])
    with store.snapshot() as uow:
        team = uow.list_audit(workspace="team")
        by_actor = uow.list_audit(workspace=None, actor="token:ci")
        both = uow.list_audit(workspace="default", action="token.create")
        recent = uow.list_audit(workspace=None, since=T0 + timedelta(minutes=9))
        nothing = uow.list_audit(workspace="default", actor="nobody")
    assert [r.id for r in team] == [ids[n] for n in (9, 6, 3, 0)]
    assert [r.id for r in by_actor] == [ids[n] for n in (11, 9, 7, 5, 3, 1)]
    assert [r.id for r in both] == [ids[n] for n in (10, 8, 4, 2)]
    assert [r.id for r in recent] == [ids[n] for n in (11, 10, 9)]  # since is inclusive
    assert nothing == []


def test_pages_hold_every_entry_once_even_while_entries_are_added(store: Store) -> None:
    ids = record_all(store, [entry(n) for n in range(25)])
    seen: list[int] = []
    after: int | None = None
    while True:
        with store.snapshot() as uow:
            page = uow.list_audit(workspace=None, after_id=after, limit=7)
        if not page:
            break
        seen.extend(r.id for r in page)
        after = page[-1].id
        record_all(store, [entry(99)])  # newer entries never shift the older pages
    assert seen == ids[::-1]
    assert len(stored(store)) == 25 + 4  # one added after each of the 4 pages


def test_a_page_size_out_of_range_is_refused(store: Store) -> None:
    with store.snapshot() as uow:
        for limit in (0, 1001):
            with pytest.raises(ValueError, match="limit must be between 1 and 1000"):
                uow.list_audit(workspace=None, limit=limit)


def test_the_database_refuses_to_update_or_delete_entries(store: Store, db_kind: str) -> None:
    (entry_id,) = record_all(store, [entry(1)])
    attempts = {
        "UPDATE": audit_log.update().where(audit_log.c.id == entry_id).values(actor="someone"),
        "DELETE": audit_log.delete().where(audit_log.c.id == entry_id),
        "bulk DELETE": audit_log.delete(),
    }
    for name, statement in attempts.items():
        with (
            pytest.raises(IntegrityError, match="audit_log is append-only") as refused,
            store.unit_of_work() as uow,
        ):
            uow.connection.execute(statement)
        assert ("UPDATE" if name == "UPDATE" else "DELETE") in str(refused.value.orig), name
    if db_kind == "postgresql":
        with (
            pytest.raises(IntegrityError, match="audit_log is append-only: TRUNCATE"),
            store.unit_of_work() as uow,
        ):
            uow.connection.execute(text("TRUNCATE audit_log"))
    assert [(r.id, r.actor) for r in stored(store)] == [(entry_id, "token:ci")]


def test_the_retention_purge_leaves_the_audit_log_alone(store: Store, build: Any) -> None:
    assert "audit_log" not in {table.name for table, _ in PER_RUN_TABLES}
    old = T0 - timedelta(days=40)
    state = build.realistic_state("run-old", items=4)
    state = replace(
        state, status=RunStatus.SUCCEEDED, created_at=old, started_at=old, finished_at=old
    )
    with store.unit_of_work() as uow:
        uow.insert_run(state)
    record_all(store, [entry(1, at=old, action="run.start", target="run-old")])

    report = purge(store, PurgeRequest(T0 - timedelta(days=30)))

    assert report.runs == ["run-old"]
    assert [(r.action, r.target) for r in stored(store)] == [("run.start", "run-old")]


def _append_only_guards(store: Store) -> set[str]:
    """The names of the database objects that keep audit_log append-only."""
    with store.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            triggers = connection.execute(
                text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
            ).scalars()
            functions = connection.execute(
                text("SELECT proname FROM pg_proc WHERE proname LIKE 'treadle_%'")
            ).scalars()
            return {*triggers, *functions}
        return set(
            connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
            .scalars()
            .all()
        )


def test_migration_0009_goes_down_and_up_again_with_its_triggers(
    store: Store, store_url: str, db_kind: str
) -> None:
    expected = (
        {"audit_log_append_only", "audit_log_no_truncate", "treadle_audit_log_append_only"}
        if db_kind == "postgresql"
        else {"audit_log_no_update", "audit_log_no_delete"}
    )
    assert _append_only_guards(store) == expected

    command.downgrade(alembic_config(url=store_url), "0008")
    tables = set(inspect(store.engine).get_table_names())
    assert {"api_tokens", "audit_log"}.isdisjoint(tables)
    assert "broker_incarnations" in tables  # 0008 stays
    assert _append_only_guards(store) == set()

    command.upgrade(alembic_config(url=store_url), "head")
    assert current_revision(store.engine) == head_revision()
    assert _append_only_guards(store) == expected
    record_all(store, [entry(1)])
    with pytest.raises(IntegrityError, match="append-only"), store.unit_of_work() as uow:
        uow.connection.execute(audit_log.delete())
    with store.snapshot() as uow:
        assert uow.connection.execute(select(func.count()).select_from(audit_log)).scalar() == 1
