"""Tokens remembered per process: revocation within the bound, expiry at once, no statement.

An app remembers the tokens it verified for ``api_token_cache_seconds`` (by its clock, moved
here by the test): a token revoked meanwhile is still accepted until the bound passes, then
refused; expiry never waits for the bound; and a request whose token is remembered and whose
rate-limit requests are leased reads the database for its route only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from treadle.api.app import create_app
from treadle.api.token_cache import TokenCache
from treadle.common.access import DEFAULT_WORKSPACE, Principal, Role, parse_token
from treadle.common.settings import Settings
from treadle.scheduler.service.access import revoke
from treadle.scheduler.store import Store, TokenEntry

from .conftest import T0, FakeClock

BOUND = 5


def _app(database_url: str, store: Store, clock: FakeClock, **settings: Any) -> TestClient:
    chosen = Settings(database_url=database_url, **{"api_token_cache_seconds": BOUND, **settings})
    return TestClient(create_app(chosen, store=store, clock=clock))


@pytest.fixture
def cached(database_url: str, store: Store, clock: FakeClock) -> Iterator[TestClient]:
    with _app(database_url, store, clock) as api:
        yield api


def _revoke(store: Store, clock: FakeClock, token: str) -> None:
    token_id = parse_token(token)
    assert token_id is not None
    admin = Principal("test-setup", Role.ADMIN, DEFAULT_WORKSPACE)
    with store.unit_of_work() as uow:
        assert revoke(uow, token_id, by=admin, now=clock())


def test_a_revoked_token_is_refused_once_the_cache_bound_passes(
    cached: TestClient,
    store: Store,
    clock: FakeClock,
    make_token: Callable[..., str],
    error_shape: Callable[..., dict[str, object]],
) -> None:
    token = make_token("soon-revoked", Role.VIEWER)
    headers = {"Authorization": f"Bearer {token}"}
    assert cached.get("/api/v1/runs", headers=headers).status_code == 200

    _revoke(store, clock, token)
    clock.advance(BOUND - 1)
    assert cached.get("/api/v1/runs", headers=headers).status_code == 200  # within the bound

    clock.advance(1)
    refused = cached.get("/api/v1/runs", headers=headers)
    assert refused.status_code == 401
    error_shape(refused.json(), "unauthenticated", "invalid, expired or revoked token")
    clock.advance(BOUND)  # refused tokens are not remembered: still refused
    assert cached.get("/api/v1/runs", headers=headers).status_code == 401


def test_without_a_cache_a_revoked_token_is_refused_at_once(
    database_url: str, store: Store, clock: FakeClock, make_token: Callable[..., str]
) -> None:
    token = make_token("revoked-now", Role.VIEWER)
    headers = {"Authorization": f"Bearer {token}"}
    with _app(database_url, store, clock, api_token_cache_seconds=0) as api:
        assert api.get("/api/v1/runs", headers=headers).status_code == 200
        _revoke(store, clock, token)
        assert api.get("/api/v1/runs", headers=headers).status_code == 401


def test_a_remembered_token_is_refused_from_its_expiry_on(
    cached: TestClient, clock: FakeClock, make_token: Callable[..., str]
) -> None:
    token = make_token("short", Role.VIEWER, expires_at=clock() + timedelta(seconds=2))
    headers = {"Authorization": f"Bearer {token}"}
    assert cached.get("/api/v1/runs", headers=headers).status_code == 200
    clock.advance(2)  # within the cache bound, but expired
    assert cached.get("/api/v1/runs", headers=headers).status_code == 401


def test_a_remembered_token_reads_the_database_for_the_route_only(
    cached: TestClient,
    store: Store,
    bearer: Callable[[Role], dict[str, str]],
    start_run: Callable[..., str],
) -> None:
    run_id = start_run()
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    assert cached.get(f"/api/v1/runs/{run_id}", headers=bearer(Role.VIEWER)).status_code == 200
    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        again = cached.get(f"/api/v1/runs/{run_id}", headers=bearer(Role.VIEWER))
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert again.status_code == 200
    assert statements  # the run was read ...
    assert not [s for s in statements if "api_tokens" in s or "api_rate_windows" in s]
    assert not [s for s in statements if s.lstrip().upper().startswith(("INSERT", "UPDATE"))]


def test_last_used_is_written_about_once_a_minute_with_the_cache(
    cached: TestClient, store: Store, clock: FakeClock, make_token: Callable[..., str]
) -> None:
    token = make_token("busy", Role.VIEWER)
    token_id = parse_token(token)
    headers = {"Authorization": f"Bearer {token}"}

    def last_used() -> object:
        with store.snapshot() as uow:
            entry = uow.token_by_id(str(token_id))
        assert entry is not None
        return entry.last_used_at

    assert cached.get("/api/v1/runs", headers=headers).status_code == 200
    assert last_used() == T0
    clock.advance(30)
    assert cached.get("/api/v1/runs", headers=headers).status_code == 200
    assert last_used() == T0  # not due yet
    clock.advance(30)
    assert cached.get("/api/v1/runs", headers=headers).status_code == 200
    assert last_used() == T0 + timedelta(seconds=60)


def _entry(number: int) -> TokenEntry:
    return TokenEntry(
        id=f"{number:012x}",
        name=f"t{number}",
        role=Role.VIEWER,
        workspace=DEFAULT_WORKSPACE,
        token_hash=f"hash-{number}",
        created_at=T0,
        created_by="test",
    )


def test_the_cache_forgets_its_oldest_tokens_past_its_capacity() -> None:
    cache = TokenCache(BOUND, capacity=2)
    for number in range(3):
        cache.remember(f"key-{number}", _entry(number), T0)
    assert cache.lookup("key-0", T0) is None
    assert cache.lookup("key-1", T0) == _entry(1)
    assert cache.lookup("key-2", T0) == _entry(2)
    assert cache.lookup("key-2", T0 + timedelta(seconds=BOUND)) is None
    assert cache.lookup("key-1", T0 - timedelta(seconds=1)) is None  # the clock went back


def test_a_zero_bound_remembers_nothing() -> None:
    cache = TokenCache(0)
    cache.remember("key", _entry(1), T0)
    assert cache.lookup("key", T0) is None
