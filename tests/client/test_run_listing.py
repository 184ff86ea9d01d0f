"""Listing runs page by page through ``Client.list_runs`` and ``treadle runs list --cursor``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from treadle import Client
from treadle.common.errors import ParameterError
from treadle.common.statuses import RunStatus
from treadle.scheduler.core.state import initial_state
from treadle.scheduler.store import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def stored(database_url: str) -> list[str]:
    """25 runs a minute apart (odd ones failed, of ``wf.odd``); their ids, newest first."""
    store = Store.open(database_url, migrate=False)
    try:
        with store.unit_of_work() as uow:
            for i in range(25):
                state = initial_state(f"r-{i:02d}", "wf.odd" if i % 2 else "wf.even", T0)
                status = RunStatus.FAILED if i % 2 else RunStatus.SUCCEEDED
                uow.insert_run(replace(state, created_at=T0 + timedelta(minutes=i), status=status))
    finally:
        store.close()
    return [f"r-{i:02d}" for i in range(24, -1, -1)]


def test_the_client_pages_through_filtered_runs(client: Client, stored: list[str]) -> None:
    seen, cursor = [], None
    while True:
        page = client.list_runs(status="failed", workflow="wf.odd", limit=5, cursor=cursor)
        seen.extend(run.id for run in page.runs)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [run_id for run_id in stored if int(run_id[2:]) % 2]

    window = client.list_runs(
        created_after=T0 + timedelta(minutes=3), created_before=T0 + timedelta(minutes=6)
    )
    assert [run.id for run in window.runs] == ["r-05", "r-04", "r-03"]
    assert window.next_cursor is None
    assert client.list_runs(status=RunStatus.SUCCEEDED, limit=1).runs[0].id == "r-24"
    with pytest.raises(ParameterError, match="cursor"):
        client.list_runs(cursor="not-a-cursor")


def test_runs_list_prints_the_next_cursor_and_continues_from_it(
    treadle: Any, stored: list[str]
) -> None:
    first = treadle("runs", "list", "--limit", "10", code=0)
    assert [line.split()[0] for line in first.stdout.splitlines()] == stored[:10]
    hint = first.stderr.strip().splitlines()[-1]
    assert hint.startswith("next page: --cursor ")
    cursor = hint.split()[-1]

    second = treadle("runs", "list", "--limit", "10", "--cursor", cursor, "--json", code=0)
    assert [run["id"] for run in second.json()] == stored[10:20]
    third_cursor = second.stderr.strip().splitlines()[-1].split()[-1]
    third = treadle("runs", "list", "--limit", "10", "--cursor", third_cursor, code=0)
    assert [line.split()[0] for line in third.stdout.splitlines()] == stored[20:]
    assert "next page" not in third.stderr

    since = treadle("runs", "list", "--since", "2026-01-05T09:22:00", "--json", code=0)
    assert [run["id"] for run in since.json()] == ["r-24", "r-23", "r-22"]
    bad = treadle("runs", "list", "--cursor", "garbage", code=2)
    assert "cursor" in bad.stderr
