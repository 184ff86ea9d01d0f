"""Reading runs for showing them: snapshots, summaries of with_items executions, unit pages.

A summary read must say exactly what the full read says (counts, attempts, first failures)
without loading the units; pages must cover every unit once; a snapshot must see one
committed version of the run whatever writers commit meanwhile, and never block them.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy.exc import InternalError

from treadle.common.errors import ParameterError
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.service.run_document import item_page, run_document
from treadle.scheduler.store import ItemSummary, Store


def test_the_overview_summarises_what_a_full_read_holds(store: Store, build) -> None:
    state = build.realistic_state(items=301)
    with store.unit_of_work() as uow:
        uow.insert_run(state)
    with store.snapshot() as uow:
        overview = uow.load_run_overview("run-1")
        full = uow.load_run("run-1")
    assert full == state
    [fanned] = [e.id for e in state.executions.values() if e.with_items]
    summary = overview.items[fanned]
    assert summary == ItemSummary.of(state.executions[fanned].units)
    assert summary.total == 301
    assert summary.by_status[TaskStatus.FAILED] == 75
    assert [unit.index for unit in summary.first_failures] == [1, 5, 9, 13, 17]
    assert len(overview.state.executions[fanned].units) == 0  # not loaded
    for execution_id, execution in state.executions.items():
        if execution_id != fanned:
            assert overview.state.executions[execution_id] == execution
    # the document from the overview is the document from the full state
    summarised = run_document(overview.state, summaries=overview.items)
    assert summarised == run_document(full)
    [entry] = [t for t in summarised["tasks"] if t["name"] == "fan_out"]
    assert "items" not in entry
    assert entry["items_summary"]["total"] == 301
    assert summarised["document_version"] == 2
    with_items = run_document(full, items=True)
    [listed] = [t for t in with_items["tasks"] if t["name"] == "fan_out"]
    assert len(listed["items"]) == 301
    assert listed["items_summary"] == entry["items_summary"]


def test_pages_cover_every_unit_once_in_order(store: Store, build) -> None:
    state = build.realistic_state(items=250)
    with store.unit_of_work() as uow:
        uow.insert_run(state)
    seen = []
    cursor = None
    with store.snapshot() as uow:
        while True:
            page = uow.unit_page("run-1", 2, cursor=cursor, limit=70)
            seen.extend(page.units)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert tuple(seen) == tuple(state.executions[2].units)
        first = uow.unit_page("run-1", 2, limit=70)
        assert first.next_cursor is not None
        with pytest.raises(ParameterError, match="pages execution 2, not 1"):
            uow.unit_page("run-1", 1, cursor=first.next_cursor)
        with pytest.raises(ParameterError, match="is not a next cursor"):
            uow.unit_page("run-1", 2, cursor="not-a-cursor")
        with pytest.raises(ParameterError, match="1 to 1000"):
            uow.unit_page("run-1", 2, limit=0)
        shown = item_page(uow, "run-1", "fan_out", limit=3)
        assert [item["index"] for item in shown["items"]] == [0, 1, 2]
        assert shown["execution"] == 2
        after = item_page(uow, "run-1", "fan_out", cursor=shown["next_cursor"], limit=2)
        assert [item["index"] for item in after["items"]] == [3, 4]
        with pytest.raises(ParameterError, match="does not page task 'start'"):
            item_page(uow, "run-1", "start", cursor=shown["next_cursor"])


def test_a_snapshot_sees_one_version_while_a_writer_commits(store: Store, build, save_one) -> None:
    state = build.realistic_state(items=40)
    with store.unit_of_work() as uow:
        uow.insert_run(state)
    ended = replace(
        build.change_units(state, 2, list(range(40))), status=RunStatus.SUCCEEDED, output={"n": 1}
    )
    with store.snapshot() as reader:
        assert reader.run_status("run-1") == (1, RunStatus.RUNNING)
        with store.unit_of_work() as writer:  # the snapshot does not block the writer
            assert save_one(writer, state, ended, [], []) == 2
        assert reader.run_status("run-1") == (1, RunStatus.RUNNING)
        assert reader.load_run("run-1") == state
        overview = reader.load_run_overview("run-1")
        assert overview.items[2] == ItemSummary.of(state.executions[2].units)
    with store.snapshot() as reader:
        assert reader.run_status("run-1") == (2, RunStatus.SUCCEEDED)
        assert reader.load_run("run-1") == ended
        assert reader.load_run_overview("run-1").items[2].by_status == {TaskStatus.SUCCEEDED: 40}


def test_a_snapshot_is_read_only_on_postgresql(pg_store: Store, build) -> None:
    read_only = pytest.raises(InternalError, match="read-only transaction")
    with read_only, pg_store.snapshot() as uow:
        uow.insert_run(build.realistic_state(items=1))
    with pg_store.snapshot() as uow:
        assert uow.run_status("run-1") is None


def test_a_snapshot_leaves_its_pooled_connection_read_write(pg_store: Store, build) -> None:
    # the snapshot's characteristics belong to its transaction (SET TRANSACTION), not to
    # the connection the next unit of work gets back from the pool
    pg_store.engine.pool.dispose()
    for _ in range(2):
        with pg_store.snapshot() as uow:
            assert uow.run_status("run-1") is None
    with pg_store.unit_of_work() as uow:
        uow.insert_run(build.realistic_state(items=1))
    with pg_store.snapshot() as uow:
        assert uow.run_status("run-1") == (1, RunStatus.RUNNING)
