"""Retention on SQLite and PostgreSQL: purging ended run trees older than a cutoff.

Every run here is stored with a row in every per-run table (its executions and units by
``insert_run``, one made-up row in each other table), so a purge is proved to leave
nothing of a removed run and everything of a kept one. The per-run table list is
compared with the models, so a new table with a ``run_id`` fails here until it is purged.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import JSON, Boolean, Integer, String, Text, func, select

from treadle.common.settings import Settings
from treadle.common.statuses import RunStatus
from treadle.scheduler.service.retention import PeriodicPurge, PurgeRequest, purge
from treadle.scheduler.store import Store
from treadle.scheduler.store.coltypes import UTCDateTime
from treadle.scheduler.store.models import events, metadata, outbox, runs
from treadle.scheduler.store.retention_repo import PER_RUN_TABLES, RUN_MENTIONS

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)  # the store fixture's clock starts here
DAY = timedelta(days=1)
CUTOFF = T0 - 30 * DAY
OLD = T0 - 40 * DAY
RECENT = T0 - DAY


def test_the_purge_covers_every_table_holding_rows_of_a_run() -> None:
    per_run = {
        table.name
        for table in metadata.sorted_tables
        if "run_id" in table.c or any(fk.column.table.name == "runs" for fk in table.foreign_keys)
    }
    purged = [table.name for table, _ in PER_RUN_TABLES]
    assert len(purged) == len(set(purged))
    mentions = {table.name for table in RUN_MENTIONS}  # name runs, outlive them (documented)
    assert set(purged) == (per_run - mentions) | {"runs"}, "add the table to PER_RUN_TABLES"
    assert purged[-1] == "runs"  # the run row goes last


def _value(column: Any, run_id: str) -> Any:
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return OLD
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Integer):
        return 999
    if isinstance(kind, JSON):
        return {"of": run_id}
    if isinstance(kind, String | Text):
        return f"{run_id}/{column.name}"
    raise AssertionError(f"no sample value for {column.table.name}.{column.name} ({kind})")


@dataclass
class Seed:
    """Stores runs with rows in every per-run table, and outside events."""

    store: Store
    build: Any

    def run(
        self,
        run_id: str,
        status: RunStatus,
        *,
        created: datetime = OLD,
        finished: datetime | None = OLD,
        parent: str | None = None,
        trigger_event_id: str | None = None,
    ) -> None:
        """A run with rows in every per-run table (``finished`` only for an ended run)."""
        state = self.build.realistic_state(run_id, items=8)
        state = replace(
            state,
            status=status,
            created_at=created,
            started_at=created,
            finished_at=finished if status.is_terminal else None,
            context=replace(state.context, parent_run_id=parent, depth=0 if parent is None else 1),
        )
        with self.store.unit_of_work() as uow:
            uow.insert_run(state, trigger_event_id=trigger_event_id)
            for table, column in PER_RUN_TABLES:
                if table.name in ("runs", "task_executions", "task_units"):
                    continue
                row = {
                    c.name: _value(c, run_id)
                    for c in table.columns
                    if not (c.primary_key and c.autoincrement is True)
                }
                row[column.name] = run_id
                uow.connection.execute(table.insert(), row)

    def event(self, event_id: str, received_at: datetime) -> None:
        with self.store.unit_of_work() as uow:
            uow.record_event(event_id, "demo.event", None, {"n": 1}, received_at)


@pytest.fixture
def seed(store: Store, build: Any) -> Seed:
    return Seed(store, build)


def rows_of(store: Store, run_id: str) -> dict[str, int]:
    with store.unit_of_work() as uow:
        return {
            table.name: int(
                uow.connection.execute(
                    select(func.count()).select_from(table).where(column == run_id)
                ).scalar_one()
            )
            for table, column in PER_RUN_TABLES
        }


def event_ids(store: Store) -> set[str]:
    with store.unit_of_work() as uow:
        return set(uow.connection.execute(select(events.c.id)).scalars())


def stored_runs(store: Store) -> set[str]:
    with store.unit_of_work() as uow:
        return set(uow.connection.execute(select(runs.c.id)).scalars())


def mixed_runs(seed: Seed) -> None:
    seed.run("old-ok", RunStatus.SUCCEEDED, trigger_event_id="evt-of-old")
    seed.run("old-ok.child", RunStatus.FAILED, parent="old-ok")
    seed.run("old-ok.grandchild", RunStatus.CANCELED, parent="old-ok.child")
    seed.run("old-failed", RunStatus.FAILED, created=OLD - DAY)
    seed.run("old-compensated", RunStatus.COMPENSATED)
    for status in (
        RunStatus.PENDING,
        RunStatus.RUNNING,
        RunStatus.PAUSING,
        RunStatus.PAUSED,
        RunStatus.COMPENSATING,
    ):
        seed.run(f"live-{status.value}", status)
    seed.run("recent", RunStatus.SUCCEEDED, created=RECENT, finished=RECENT)
    seed.run("ended-late", RunStatus.FAILED, finished=RECENT)  # created old, ended new
    seed.run("tree-going", RunStatus.CANCELED, trigger_event_id="evt-of-going")
    seed.run("tree-going.child", RunStatus.RUNNING, parent="tree-going")
    seed.run("tree-late", RunStatus.SUCCEEDED)
    seed.run("tree-late.child", RunStatus.SUCCEEDED, parent="tree-late", finished=RECENT)
    seed.event("evt-of-old", OLD)
    seed.event("evt-of-going", OLD)
    seed.event("evt-lonely-old", OLD)
    seed.event("evt-lonely-new", RECENT)


REMOVED = {"old-ok", "old-ok.child", "old-ok.grandchild", "old-failed", "old-compensated"}


def test_purge_removes_every_row_of_old_ended_trees_and_nothing_else(
    store: Store, seed: Seed
) -> None:
    mixed_runs(seed)
    everything = stored_runs(store)
    kept_rows = {run_id: rows_of(store, run_id) for run_id in everything - REMOVED}
    assert all(all(kept_rows[r].values()) for r in kept_rows)  # a row in every table

    report = purge(store, PurgeRequest(CUTOFF, batch_size=2))

    assert set(report.runs) == REMOVED
    assert report.runs[:1] == ["old-failed"]  # oldest first
    assert report.batches > 2  # small batches
    assert report.skipped == 2  # tree-going, tree-late (ended-late is not old)
    assert stored_runs(store) == everything - REMOVED
    for run_id in REMOVED:
        assert set(rows_of(store, run_id).values()) == {0}, run_id
    for run_id, counts in kept_rows.items():
        assert rows_of(store, run_id) == counts, run_id
    assert report.rows["runs"] == len(REMOVED)
    assert report.rows["task_units"] == len(REMOVED) * sum(
        len(e.units) for e in seed.build.realistic_state(items=8).executions.values()
    )
    assert report.events == 2
    assert event_ids(store) == {"evt-of-going", "evt-lonely-new"}

    again = purge(store, PurgeRequest(CUTOFF, batch_size=2))
    assert (again.runs, again.rows, again.events) == ([], {}, 0)


def test_a_dry_run_counts_what_a_purge_removes_and_changes_nothing(
    store: Store, seed: Seed
) -> None:
    mixed_runs(seed)
    before = {run_id: rows_of(store, run_id) for run_id in stored_runs(store)}

    dry = purge(store, PurgeRequest(CUTOFF, batch_size=3, dry_run=True))

    assert {run_id: rows_of(store, run_id) for run_id in stored_runs(store)} == before
    assert len(event_ids(store)) == 4
    real = purge(store, PurgeRequest(CUTOFF, batch_size=3))
    assert sorted(dry.runs) == sorted(real.runs)
    assert (dry.rows, dry.events, dry.skipped) == (real.rows, real.events, real.skipped)


def test_statuses_choose_the_top_level_runs_and_their_children_go_with_them(
    store: Store, seed: Seed
) -> None:
    mixed_runs(seed)

    report = purge(store, PurgeRequest(CUTOFF, frozenset({RunStatus.SUCCEEDED})))

    assert set(report.runs) == {"old-ok", "old-ok.child", "old-ok.grandchild"}
    assert {"old-failed", "old-compensated"} <= stored_runs(store)


def test_a_run_with_messages_still_to_publish_is_left_alone(store: Store, seed: Seed) -> None:
    seed.run("unsent", RunStatus.CANCELED)
    with store.unit_of_work() as uow:
        uow.connection.execute(outbox.update().values(sent_at=None))

    report = purge(store, PurgeRequest(CUTOFF))

    assert (report.runs, report.skipped) == ([], 1)
    assert stored_runs(store) == {"unsent"}


def test_a_run_another_transaction_holds_is_skipped_not_waited_for(
    pg_store: Store, build: Any
) -> None:
    seed = Seed(pg_store, build)
    seed.run("held", RunStatus.FAILED)
    seed.run("free", RunStatus.FAILED)
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with pg_store.unit_of_work() as uow:
            uow.lock_runs(["held"])
            locked.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        report = purge(pg_store, PurgeRequest(CUTOFF))
    finally:
        release.set()
        holder.join()

    assert (report.runs, report.skipped) == (["free"], 1)
    assert stored_runs(pg_store) == {"held"}


def test_the_scheduler_purges_one_small_batch_per_interval(
    store: Store, seed: Seed, clock: Any
) -> None:
    for number in range(3):
        seed.run(f"old-{number}", RunStatus.SUCCEEDED, created=OLD + number * DAY)
    seed.run("live", RunStatus.RUNNING)
    seed.event("evt-old", OLD)
    settings = Settings(retention_days=30, retention_batch_size=1, retention_interval=60)
    retention = PeriodicPurge(settings, clock)
    off = PeriodicPurge(Settings(), clock)

    assert off.maybe_purge(store) == 0  # off by default
    assert retention.maybe_purge(store) == 2  # one run, one event
    assert stored_runs(store) == {"old-1", "old-2", "live"}
    assert retention.maybe_purge(store) == 0  # not due yet
    clock.advance(60)
    assert retention.maybe_purge(store) == 1
    clock.advance(60)
    assert retention.maybe_purge(store) == 1
    clock.advance(60)
    assert retention.maybe_purge(store) == 0
    assert stored_runs(store) == {"live"}
    assert (retention.purged_runs, retention.purged_events) == (3, 1)


def test_retention_settings_come_from_treadle_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from treadle.common.errors import ConfigurationError
    from treadle.common.settings import settings_from_environment

    assert Settings().retention_days is None  # off unless asked for
    monkeypatch.setenv("TREADLE_RETENTION_DAYS", "30")
    monkeypatch.setenv("TREADLE_RETENTION_BATCH_SIZE", "50")
    monkeypatch.setenv("TREADLE_RETENTION_INTERVAL", "120")
    chosen = settings_from_environment()
    assert (chosen.retention_days, chosen.retention_batch_size) == (30, 50)
    assert chosen.retention_interval == 120
    monkeypatch.setenv("TREADLE_RETENTION_DAYS", "0")
    with pytest.raises(ConfigurationError, match="TREADLE_RETENTION_DAYS"):
        settings_from_environment()
