"""Rate limits leased in shares: never more than the limit, however many processes serve.

Each app (an API process) leases a share of a token's minute from the shared row and
admits from it without the database; the tests drive two apps on one database, as two
uvicorn workers would be, with the test's clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from treadle.api.app import create_app
from treadle.api.rate_limit import LEASE
from treadle.common.access import Role
from treadle.common.settings import Settings
from treadle.scheduler.store import Store

from .conftest import FakeClock

LIMIT = 50


@pytest.fixture
def two_apps(database_url: str, store: Store, clock: FakeClock) -> Iterator[list[TestClient]]:
    settings = Settings(database_url=database_url, api_rate_limit_per_minute=LIMIT)
    with (
        TestClient(create_app(settings, store=store, clock=clock)) as first,
        TestClient(create_app(settings, store=store, clock=clock)) as second,
    ):
        yield [first, second]


def test_two_processes_together_admit_no_more_than_the_limit(
    two_apps: list[TestClient], clock: FakeClock, bearer: Callable[[Role], dict[str, str]]
) -> None:
    clock.advance(20)
    answers = [
        two_apps[number % 2].get("/api/v1/runs", headers=bearer(Role.VIEWER))
        for number in range(LIMIT + 30)
    ]
    admitted = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert len(admitted) + len(refused) == len(answers)
    assert LIMIT - LEASE <= len(admitted) <= LIMIT
    assert {a.headers["Retry-After"] for a in refused} == {"40"}

    clock.advance(40)  # a new minute: both processes admit again
    for api in two_apps:
        assert api.get("/api/v1/runs", headers=bearer(Role.VIEWER)).status_code == 200


def test_one_process_admits_exactly_the_limit(
    two_apps: list[TestClient], bearer: Callable[[Role], dict[str, str]]
) -> None:
    api = two_apps[0]
    codes = [
        api.get("/api/v1/runs", headers=bearer(Role.OPERATOR)).status_code for _ in range(LIMIT + 3)
    ]
    assert codes == [200] * LIMIT + [429] * 3


def test_a_process_that_knows_the_minute_used_up_refuses_without_the_database(
    two_apps: list[TestClient], store: Store, bearer: Callable[[Role], dict[str, str]]
) -> None:
    api = two_apps[0]
    while api.get("/api/v1/runs", headers=bearer(Role.VIEWER)).status_code == 200:
        pass
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        assert api.get("/api/v1/runs", headers=bearer(Role.VIEWER)).status_code == 429
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert statements == []


def test_the_shared_row_counts_what_was_leased(
    two_apps: list[TestClient], store: Store, bearer: Callable[[Role], dict[str, str]]
) -> None:
    for _ in range(3):
        for api in two_apps:
            assert api.get("/api/v1/runs", headers=bearer(Role.VIEWER)).status_code == 200
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT requests FROM api_rate_windows").fetchall()
    # each process leased one share (a quarter of the limit, at most LEASE) for 3 requests
    share = min(LEASE, LIMIT // 4)
    assert [row[0] for row in rows] == [2 * share]
