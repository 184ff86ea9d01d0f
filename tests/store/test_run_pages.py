"""Listing runs by pages: every matching run exactly once, newest first, whatever is inserted
meanwhile, with each filter; cursors are opaque and checked. On SQLite and PostgreSQL."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from treadle.common.errors import ParameterError
from treadle.common.statuses import RunStatus
from treadle.scheduler.core.state import initial_state
from treadle.scheduler.store import RunFilter, Store, UnitOfWork
from treadle.scheduler.store.run_listing import decode_cursor, encode_cursor

STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.RUNNING)
WORKFLOWS = ("wf.a", "wf.b")


def _insert(
    uow: UnitOfWork, run_id: str, at: datetime | None, parent: str | None = None, **fields: object
) -> None:
    state = replace(initial_state(run_id, "wf.a", at or datetime.now().astimezone()), **fields)
    context = replace(state.context, parent_run_id=parent)
    uow.insert_run(replace(state, created_at=at, context=context))


def _stored(store: Store, t0: datetime, count: int = 60) -> list[tuple[datetime, str]]:
    """``count`` runs over a few distinct times (ties broken by id), statuses and workflows."""
    rng = random.Random(7)
    keys = []
    with store.unit_of_work() as uow:
        for i in range(count):
            at = t0 + timedelta(seconds=rng.randrange(12))
            run_id = f"run-{rng.randrange(10**6):06d}-{i}"
            _insert(
                uow,
                run_id,
                at,
                status=STATUSES[i % 3],
                workflow=WORKFLOWS[i % 2],
                parent="parent-1" if i % 5 == 0 else None,
            )
            keys.append((at, run_id))
    return keys


def _all_pages(uow: UnitOfWork, where: RunFilter, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = uow.list_runs_page(where, limit=limit, cursor=cursor)
        pages.append([run.id for run in page.runs])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def _newest_first(store: Store, where: RunFilter) -> list[str]:
    with store.unit_of_work() as uow:
        summaries = uow.list_runs_page(where, limit=1000).runs
    return [s.id for s in summaries]


@pytest.mark.parametrize("limit", [1, 7, 20, 60, 100])
def test_pages_cover_every_run_once_in_order(store: Store, build, limit: int) -> None:
    keys = _stored(store, build.t0)
    expected = [run_id for _, run_id in sorted(keys, reverse=True)]
    with store.unit_of_work() as uow:
        pages = _all_pages(uow, RunFilter(), limit)
    assert [run_id for page in pages for run_id in page] == expected
    assert all(len(page) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= limit


@pytest.mark.parametrize(
    "where",
    [
        RunFilter(status=RunStatus.FAILED),
        RunFilter(workflow="wf.b"),
        RunFilter(status=RunStatus.RUNNING, workflow="wf.a"),
        RunFilter(parent_run_id="parent-1"),
        RunFilter(created_after="+3", created_before="+9"),  # type: ignore[arg-type]
        RunFilter(status=RunStatus.SUCCEEDED, created_after="+5"),  # type: ignore[arg-type]
    ],
    ids=["status", "workflow", "status+workflow", "parent", "range", "status+since"],
)
def test_filtered_pages_hold_exactly_the_matching_runs(
    store: Store, build, where: RunFilter
) -> None:
    def at(value: object) -> datetime | None:  # "+N": N seconds after t0
        return build.t0 + timedelta(seconds=int(value[1:])) if isinstance(value, str) else None

    where = replace(
        where, created_after=at(where.created_after), created_before=at(where.created_before)
    )
    keys = _stored(store, build.t0)
    with store.unit_of_work() as uow:
        matching = {
            s.id
            for s in uow.list_runs_page(limit=1000).runs
            if (where.status is None or s.status is where.status)
            and (where.workflow is None or s.workflow == where.workflow)
            and (where.parent_run_id is None or s.parent_run_id == where.parent_run_id)
            and (where.created_after is None or s.created_at >= where.created_after)
            and (where.created_before is None or s.created_at < where.created_before)
        }
        pages = _all_pages(uow, where, 4)
    expected = [run_id for _, run_id in sorted(keys, reverse=True) if run_id in matching]
    assert 0 < len(expected) < len(keys)
    assert [run_id for page in pages for run_id in page] == expected


def test_pages_are_stable_while_runs_are_inserted(store: Store, build, clock) -> None:
    keys = _stored(store, build.t0, count=30)
    expected = [run_id for _, run_id in sorted(keys, reverse=True)]
    seen, cursor, extra = [], None, 0
    while True:
        with store.unit_of_work() as uow:
            page = uow.list_runs_page(limit=4, cursor=cursor)
        seen.extend(run.id for run in page.runs)
        with store.unit_of_work() as uow:  # new runs are newer than any page already read
            for _ in range(3):
                extra += 1
                _insert(uow, f"new-{extra:03d}", build.t0 + timedelta(minutes=1, seconds=extra))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == expected
    assert _newest_first(store, RunFilter())[:extra] == [
        f"new-{i:03d}" for i in range(extra, 0, -1)
    ]


def test_runs_without_a_creation_time_come_last_by_id(store: Store, build) -> None:
    with store.unit_of_work() as uow:
        for run_id, at in [("b", build.t0), ("u2", None), ("a", build.t0), ("u1", None)]:
            _insert(uow, run_id, at)
        pages = _all_pages(uow, RunFilter(), 1)
        ranged = _all_pages(uow, RunFilter(created_after=build.t0), 3)
    assert pages == [["b"], ["a"], ["u2"], ["u1"]]
    assert ranged == [["b", "a"]]


def test_list_runs_is_the_first_page(store: Store, build) -> None:
    keys = _stored(store, build.t0, count=12)
    with store.unit_of_work() as uow:
        first = uow.list_runs(status=RunStatus.FAILED, limit=3)
        page = uow.list_runs_page(RunFilter(status=RunStatus.FAILED), limit=3)
    assert first == list(page.runs)
    assert page.next_cursor is not None
    assert len(keys) == 12


def test_cursors_are_opaque_and_checked(store: Store, build) -> None:
    cursor = encode_cursor(build.t0, "run-1")
    assert "run-1" not in cursor
    assert decode_cursor(cursor) == (build.t0, "run-1")
    assert decode_cursor(encode_cursor(None, "x")) == (None, "x")
    with store.unit_of_work() as uow:
        for bad in ["nonsense", "", encode_cursor(build.t0, "r")[:-3], "W10"]:
            with pytest.raises(ParameterError, match="invalid cursor"):
                uow.list_runs_page(cursor=bad)
        with pytest.raises(ParameterError, match="1 to 1000"):
            uow.list_runs_page(limit=0)


def test_a_page_uses_its_index_on_postgresql(pg_store: Store, build) -> None:
    _stored(pg_store, build.t0, count=10)
    with pg_store.engine.begin() as connection:
        connection.execute(text("ANALYZE runs"))
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        plans = {
            name: "\n".join(
                row[0]
                for row in connection.execute(
                    text(
                        f"EXPLAIN SELECT id FROM runs WHERE {condition} "
                        "AND created_at IS NOT NULL AND (created_at, id) < (now(), 'z') "
                        "ORDER BY created_at DESC, id DESC LIMIT 21"
                    )
                )
            )
            for name, condition in [
                ("status", "status = 'failed'"),
                ("workflow", "workflow = 'wf.a'"),
                ("all", "true"),
            ]
        }
    assert "ix_runs_status_created_at_id" in plans["status"]
    assert "ix_runs_workflow_created_at_id" in plans["workflow"]
    assert "ix_runs_created_at_id" in plans["all"]
    assert all("Sort" not in plan for plan in plans.values()), plans
