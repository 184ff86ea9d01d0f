"""Rate limits per token: counted across API processes, 429 with Retry-After, nothing done."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from treadle.api.app import create_app
from treadle.common.access import Role
from treadle.common.settings import Settings
from treadle.scheduler.store import Store

from .conftest import FakeClock

LIMIT = 3


@pytest.fixture
def limited(database_url: str, store: Store, clock: FakeClock) -> Iterator[list[TestClient]]:
    """Two apps on one database, as two API processes would be, each limited to LIMIT."""
    settings = Settings(database_url=database_url, api_rate_limit_per_minute=LIMIT)
    with (
        TestClient(create_app(settings, store=store, clock=clock)) as first,
        TestClient(create_app(settings, store=store, clock=clock)) as second,
    ):
        yield [first, second]


def test_a_token_past_its_limit_gets_429_with_retry_after_from_every_process(
    limited: list[TestClient],
    clock: FakeClock,
    bearer: Callable[[Role], dict[str, str]],
    error_shape: Callable[..., dict[str, object]],
) -> None:
    first, second = limited
    clock.advance(15)  # 15 s into the minute
    answers = [
        api.get("/api/v1/runs", headers=bearer(Role.VIEWER)) for api in (first, second, first)
    ]
    assert [a.status_code for a in answers] == [200] * LIMIT

    refused = second.get("/api/v1/runs", headers=bearer(Role.VIEWER))
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "45"
    error_shape(refused.json(), "too_many_requests", "token:viewer-token", f"more than {LIMIT}")
    # another token has its own count
    assert first.get("/api/v1/runs", headers=bearer(Role.OPERATOR)).status_code == 200

    clock.advance(45)  # the next minute
    assert first.get("/api/v1/runs", headers=bearer(Role.VIEWER)).status_code == 200


def test_a_refused_request_changes_nothing(
    limited: list[TestClient],
    bearer: Callable[[Role], dict[str, str]],
    start_run: Callable[..., str],
) -> None:
    [api, _other] = limited
    run_id = start_run(single=True)
    for _ in range(LIMIT):
        assert api.get(f"/api/v1/runs/{run_id}", headers=bearer(Role.OPERATOR)).status_code == 200
    paused = api.post(f"/api/v1/runs/{run_id}/pause", headers=bearer(Role.OPERATOR), json={})
    assert paused.status_code == 429
    assert (
        api.get(f"/api/v1/runs/{run_id}", headers=bearer(Role.VIEWER)).json()["status"] == "running"
    )


def test_a_bad_token_is_refused_before_anything_is_counted(
    limited: list[TestClient], bearer: Callable[[Role], dict[str, str]]
) -> None:
    [api, _other] = limited
    for _ in range(LIMIT + 2):
        assert (
            api.get("/api/v1/runs", headers={"Authorization": "Bearer trd_nope"}).status_code == 401
        )
    assert api.get("/api/v1/runs", headers=bearer(Role.VIEWER)).status_code == 200
