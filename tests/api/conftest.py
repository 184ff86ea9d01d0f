"""Fixtures for the HTTP API tests: an app on a real store, tokens of each role, runs.

``api`` is FastAPI's ``TestClient`` on :func:`treadle.api.app.create_app` over a migrated
SQLite database of the test's own, with a clock the test can move. Runs are started with
:class:`treadle.Client` on the same database; no scheduler runs them, so a started run stays
``running`` with its first tasks dispatched, which is all reading and controlling it needs.
``tokens`` holds a token of each role, issued as ``treadle tokens create`` would.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from treadle.api.app import create_app
from treadle.client import Client
from treadle.common.access import DEFAULT_WORKSPACE, Principal, Role
from treadle.common.loader import load_workflow_text
from treadle.common.settings import Settings
from treadle.scheduler.service.access import issue
from treadle.scheduler.service.golden import golden_bytes, golden_lines
from treadle.scheduler.service.renderings import load_stored_run
from treadle.scheduler.store import Store

from .golden_support import DICE, FLOW, KEY

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

#: A run of this stays running: five items dispatched, nobody to run them.
FAN_OUT = """\
ref: api.fan_out
parameters:
  name: {type: string, required: true}
  password: {type: string, secret: true, default: "hunter2-secret"}
tasks:
  - name: each
    action: core.noop
    with_items: [a, b, c, d, e]
    input: {value: "{{ item }} for {{ parameters.name }}"}
"""

#: One task: a run of this has one attempt in flight (cancel, retry, compensate).
SINGLE = """\
ref: api.single
tasks:
  - name: only
    action: core.noop
"""

#: Started by outside events of type ``order.placed``.
ON_ORDER = """\
ref: api.on_order
trigger:
  type: event
  event_type: order.placed
tasks:
  - name: ship
    action: core.noop
"""


class FakeClock:
    """The app's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def workflow_text(text: str) -> str:
    return textwrap.dedent(text)


def issue_token(
    store: Store, name: str, role: Role, now: datetime, *, expires_at: datetime | None = None
) -> str:
    """A new token's text, issued by the test as an admin of the default workspace."""
    creator = Principal("test-setup", Role.ADMIN, DEFAULT_WORKSPACE)
    with store.unit_of_work() as uow:
        issued = issue(
            uow,
            name=name,
            role=role,
            workspace=DEFAULT_WORKSPACE,
            expires_at=expires_at,
            created_by=creator,
            now=now,
        )
    return issued.plaintext


@pytest.fixture
def database_url(migrated_database_url: Callable[[str], str]) -> str:
    return migrated_database_url("sqlite")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tokens(store: Store, clock: FakeClock) -> dict[Role, str]:
    return {role: issue_token(store, f"{role.value}-token", role, clock()) for role in Role}


@pytest.fixture
def make_token(store: Store, clock: FakeClock) -> Callable[..., str]:
    """:func:`issue_token` now (by the test's clock): ``make_token(name, role, expires_at=)``."""

    def make(name: str, role: Role, *, expires_at: datetime | None = None) -> str:
        return issue_token(store, name, role, clock(), expires_at=expires_at)

    return make


@pytest.fixture
def client(database_url: str, store: Store) -> Iterator[Client]:
    with Client(database_url) as made:
        made.register(load_workflow_text(workflow_text(FAN_OUT), "<fan_out>"))
        made.register(load_workflow_text(workflow_text(SINGLE), "<single>"))
        made.register(load_workflow_text(workflow_text(ON_ORDER), "<on_order>"))
        yield made


@pytest.fixture
def api(database_url: str, store: Store, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=database_url), store=store, clock=clock)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def bearer(tokens: dict[Role, str]) -> Callable[[Role], dict[str, str]]:
    """The ``Authorization`` header of the token of a role."""

    def header(role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[role]}"}

    return header


@pytest.fixture
def start_run(client: Client) -> Callable[..., str]:
    """Start a run of ``api.fan_out`` (or of ``api.single``: ``start_run(single=True)``)."""

    def start(name: str = "Ada", *, single: bool = False) -> str:
        if single:
            return client.start("api.single")
        return client.start("api.fan_out", {"name": name})

    return start


def assert_error(body: object, type_: str, *fragments: str) -> dict[str, object]:
    """``body`` has the API's error shape, this ``type``, and a message with each fragment."""
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict)
    assert set(error) == {"type", "message", "details"}, error
    assert error["type"] == type_, error
    for fragment in fragments:
        assert fragment in str(error["message"]), error
    return error


@pytest.fixture
def error_shape() -> Callable[..., dict[str, object]]:
    """:func:`assert_error`, for the test modules."""
    return assert_error


# -- runs the services would carry on -------------------------------------------------------


@pytest.fixture(scope="session")
def shipped_catalog() -> object:
    """The packs shipped with Treadle (``examples.inquiry``, ``examples.hello_world`` ...)."""
    from pathlib import Path

    from treadle.common.loader import load_packs

    loaded = load_packs([Path(__file__).resolve().parents[2] / "packs"])
    assert [str(issue) for issue in loaded.issues] == []
    return loaded


@pytest.fixture
def runner(database_url: str, store: Store, clock: FakeClock, shipped_catalog: object) -> Iterator:
    """An embedded runner on the test's database, on the test's clock, with the shipped
    packs: it starts runs that really reach their inquiries and carries them on after the
    API changed them (``runner.follow(run_id)``), standing in for the scheduler and workers.
    """
    from treadle.common.catalog import Catalog
    from treadle.embedded import EmbeddedRunner

    assert isinstance(shipped_catalog, Catalog)
    made = EmbeddedRunner(Settings(database_url=database_url), shipped_catalog, clock=clock)
    try:
        yield made
    finally:
        made.close()


# -- the workflows routes' tests ---------------------------------------------------------------


@pytest.fixture
def publish(api: TestClient, bearer: Callable[[Role], dict[str, str]]) -> Callable[..., Any]:
    """POST a definition (YAML unless ``content_type``); the response."""

    def post(
        text: str,
        *,
        role: Role = Role.ADMIN,
        content_type: str = "application/yaml",
        path: str = "/api/v1/workflows",
        method: str = "POST",
    ) -> Any:
        headers = {**bearer(role), "Content-Type": content_type}
        return api.request(method, path, content=text.encode(), headers=headers)

    return post


@pytest.fixture
def viewer(api: TestClient, bearer: Callable[[Role], dict[str, str]]) -> Callable[..., Any]:
    """GET ``path`` as a viewer; its JSON, the status asserted (200 unless ``expect``)."""

    def get(path: str, expect: int = 200, **params: Any) -> Any:
        response = api.get(path, headers=bearer(Role.VIEWER), params=params)
        assert response.status_code == expect, response.json()
        return response.json()

    return get


# -- golden records and replays (test_golden_api.py, test_replay_api.py) ---------------------


@pytest.fixture
def golden_api(database_url: str, store: Store, clock: FakeClock) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, golden_key=KEY)
    with TestClient(create_app(settings, store=store, clock=clock)) as test_client:
        yield test_client


@pytest.fixture
def record(runner: Any, store: Store) -> bytes:
    """The golden record of a run of ``gold.flow`` that ran to its end."""
    run_id = runner.start(load_workflow_text(FLOW, "<flow>"), {})
    runner.follow(run_id)
    data = golden_bytes(golden_lines(load_stored_run(store, run_id)))
    assert b'"status":"succeeded"' in data
    return data


@pytest.fixture
def dice_run(client: Client) -> str:
    """A run of ``gold.dice`` v1, its ``roll`` dispatched (seed 42)."""
    client.register(load_workflow_text(DICE, "<dice>"))
    return client.start("gold.dice", seed=42)
