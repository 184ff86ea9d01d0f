"""``POST /api/v1/webhooks/{name}``: signed deliveries become events; nothing else gets in.

The ``api.on_order`` workflow of the conftest is started by events of type
``order.placed``: a webhook of that type starts it. Every refusal is checked by reading
the tables afterwards (events, deliveries, runs, audit): a refused delivery stores nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from treadle.client import Client
from treadle.common.access import AuditOutcome, Role
from treadle.common.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, signed_headers
from treadle.scheduler.store import Store
from treadle.scheduler.store.models import events, runs, webhook_deliveries

from .conftest import FakeClock

ErrorShape = Callable[..., dict[str, Any]]
Bearer = Callable[[Role], dict[str, str]]

SECRET = "s3cret-shared-with-the-shop"
HOOK = "/api/v1/webhooks/shop"
ORDER = json.dumps({"n": 7, "items": ["tea"]}).encode()


@pytest.fixture
def shop(api: TestClient, bearer: Bearer, client: Client) -> dict[str, Any]:
    """A webhook ``shop`` whose deliveries are ``order.placed`` events (made by an admin)."""
    body = {"name": "shop", "event_type": "order.placed", "secret": SECRET}
    response = api.post("/api/v1/webhooks", headers=bearer(Role.ADMIN), json=body)
    assert response.status_code == 201, response.json()
    created: dict[str, Any] = response.json()
    return created


def signed(clock: FakeClock, body: bytes = ORDER, secret: str = SECRET) -> dict[str, str]:
    """The headers of a delivery of ``body`` signed now (by the app's clock)."""
    return {**signed_headers(secret, int(clock().timestamp()), body), "Content-Type": "x/y"}


def count(store: Store, table: Any) -> int:
    with store.unit_of_work() as uow:
        return int(uow.connection.execute(select(func.count()).select_from(table)).scalar_one())


def deliveries_audited(store: Store) -> list[Any]:
    with store.unit_of_work() as uow:
        return uow.list_audit(workspace=None, action="webhook.deliver")


def assert_nothing_stored(store: Store, client: Client) -> None:
    assert count(store, events) == 0
    assert count(store, webhook_deliveries) == 0
    assert client.list_runs(workflow="api.on_order").runs == ()
    assert deliveries_audited(store) == []


def test_a_signed_delivery_becomes_an_event_that_starts_a_run(
    api: TestClient, shop: dict[str, Any], clock: FakeClock, client: Client, store: Store
) -> None:
    response = api.post(HOOK, content=ORDER, headers=signed(clock))

    assert response.status_code == 200, response.json()
    outcome = response.json()
    [started] = outcome["started_runs"]
    assert outcome["updated_runs"] == []
    assert outcome["event_id"].startswith("wh-shop-")
    run = client.get(started)
    assert run.workflow == "api.on_order"
    with store.unit_of_work() as uow:
        event = uow.get_received_event(outcome["event_id"])
        assert event is not None
        assert (event.type, event.subject, event.data) == (
            "order.placed",
            "webhooks/shop",
            {"n": 7, "items": ["tea"]},
        )
        workspace = uow.connection.execute(select(runs.c.workspace)).scalar_one()
    assert workspace == shop["workspace"] == "default"
    [entry] = deliveries_audited(store)
    assert (entry.actor, entry.target, entry.outcome) == ("webhook:shop", "shop", AuditOutcome.OK)
    assert entry.details == {"event_type": "order.placed", "event_id": outcome["event_id"]}


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body_in_hex(
    api: TestClient, shop: dict[str, Any], clock: FakeClock
) -> None:
    """The scheme docs/api.md gives, computed here by hand."""
    import hashlib
    import hmac

    timestamp = str(int(clock().timestamp()))
    digest = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + ORDER, hashlib.sha256)
    assert digest.hexdigest() == sign(SECRET, timestamp, ORDER)
    headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: f"sha256={digest.hexdigest()}"}
    assert api.post(HOOK, content=ORDER, headers=headers).status_code == 200


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h, b: ({**h, SIGNATURE_HEADER: "sha256=" + "0" * 64}, b), id="zeros"),
        pytest.param(lambda h, b: (h, b + b" "), id="body-changed"),
        pytest.param(lambda h, b: ({**h, SIGNATURE_HEADER: "sha1=abc"}, b), id="malformed"),
        pytest.param(
            lambda h, b: ({k: v for k, v in h.items() if k != SIGNATURE_HEADER}, b),
            id="no-signature",
        ),
        pytest.param(
            lambda h, b: ({k: v for k, v in h.items() if k != TIMESTAMP_HEADER}, b),
            id="no-timestamp",
        ),
        pytest.param(lambda h, b: ({**h, TIMESTAMP_HEADER: "soon"}, b), id="bad-timestamp"),
    ],
)
def test_a_bad_or_missing_signature_is_401_and_stores_nothing(
    api: TestClient,
    shop: dict[str, Any],
    clock: FakeClock,
    client: Client,
    store: Store,
    error_shape: ErrorShape,
    tamper: Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]],
) -> None:
    headers, body = tamper(signed(clock), ORDER)
    response = api.post(HOOK, content=body, headers=headers)
    assert response.status_code == 401
    error_shape(response.json(), "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("HMAC-SHA256")
    assert_nothing_stored(store, client)


def test_a_wrong_secret_and_an_unknown_webhook_get_the_same_answer(
    api: TestClient, shop: dict[str, Any], clock: FakeClock, client: Client, store: Store
) -> None:
    wrong = api.post(HOOK, content=ORDER, headers=signed(clock, secret="another-secret-123"))
    unknown = api.post("/api/v1/webhooks/nope", content=ORDER, headers=signed(clock))
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "does not verify" in wrong.json()["error"]["message"]
    assert_nothing_stored(store, client)


@pytest.mark.parametrize("seconds", [301, -301])
def test_a_timestamp_out_of_tolerance_is_401(
    api: TestClient,
    shop: dict[str, Any],
    clock: FakeClock,
    client: Client,
    store: Store,
    error_shape: ErrorShape,
    seconds: int,
) -> None:
    headers = signed(clock)  # signed now; arrives `seconds` later (or earlier)
    clock.advance(seconds)
    response = api.post(HOOK, content=ORDER, headers=headers)
    assert response.status_code == 401
    error_shape(response.json(), "unauthenticated", "301 s away", "tolerance of 300 s")
    assert_nothing_stored(store, client)
    clock.advance(-seconds + (300 if seconds > 0 else -300))  # at the edge: accepted
    assert api.post(HOOK, content=ORDER, headers=headers).status_code == 200


def test_a_replayed_delivery_is_409_and_starts_nothing_more(
    api: TestClient,
    shop: dict[str, Any],
    clock: FakeClock,
    client: Client,
    store: Store,
    error_shape: ErrorShape,
) -> None:
    headers = signed(clock)
    first = api.post(HOOK, content=ORDER, headers=headers)
    clock.advance(30)
    again = api.post(HOOK, content=ORDER, headers=headers)

    assert first.status_code == 200
    assert again.status_code == 409
    error_shape(again.json(), "conflict", "accepted before", "replays are refused")
    assert len(client.list_runs(workflow="api.on_order").runs) == 1
    assert count(store, events) == 1
    assert [e.outcome for e in deliveries_audited(store)] == [AuditOutcome.OK]
    # the same order signed anew is a new delivery
    assert api.post(HOOK, content=ORDER, headers=signed(clock)).status_code == 200
    assert len(client.list_runs(workflow="api.on_order").runs) == 2


def test_deliveries_are_forgotten_once_their_timestamp_left_the_tolerance(
    api: TestClient, shop: dict[str, Any], clock: FakeClock, store: Store
) -> None:
    old = signed(clock)
    assert api.post(HOOK, content=ORDER, headers=old).status_code == 200
    assert count(store, webhook_deliveries) == 1
    clock.advance(301)
    assert api.post(HOOK, content=b"{}", headers=signed(clock, b"{}")).status_code == 200
    assert count(store, webhook_deliveries) == 1  # the old one pruned, the new one kept
    assert api.post(HOOK, content=ORDER, headers=old).status_code == 401  # stale anyway


@pytest.mark.parametrize("body", [b"{'n': 7}", b"\xff\xfe", b"[1, 2"])
def test_a_signed_body_that_is_not_json_is_400_and_stores_nothing(
    api: TestClient,
    shop: dict[str, Any],
    clock: FakeClock,
    client: Client,
    store: Store,
    error_shape: ErrorShape,
    body: bytes,
) -> None:
    response = api.post(HOOK, content=body, headers=signed(clock, body))
    assert response.status_code == 400
    error_shape(response.json(), "invalid_json")
    assert_nothing_stored(store, client)


def test_an_empty_body_is_an_event_without_data(
    api: TestClient, shop: dict[str, Any], clock: FakeClock, store: Store
) -> None:
    response = api.post(HOOK, content=b"", headers=signed(clock, b""))
    assert response.status_code == 200, response.json()
    with store.unit_of_work() as uow:
        event = uow.get_received_event(response.json()["event_id"])
    assert event is not None
    assert event.data is None


def test_a_body_over_the_limit_is_413_before_anything_else(
    api: TestClient, shop: dict[str, Any], clock: FakeClock, client: Client, store: Store
) -> None:
    body = b'"' + b"x" * 2_100_000 + b'"'
    response = api.post(HOOK, content=body, headers=signed(clock, body))
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"
    assert_nothing_stored(store, client)


def test_signed_data_over_the_payload_limit_is_422_and_the_attempt_audited(
    api: TestClient, shop: dict[str, Any], clock: FakeClock, client: Client, store: Store
) -> None:
    body = b'"' + b"x" * 1_100_000 + b'"'
    response = api.post(HOOK, content=body, headers=signed(clock, body))
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "limit_exceeded"
    assert count(store, events) == count(store, webhook_deliveries) == 0
    assert client.list_runs(workflow="api.on_order").runs == ()
    [entry] = deliveries_audited(store)
    assert (entry.actor, entry.outcome) == ("webhook:shop", AuditOutcome.FAILED)


def test_a_deleted_webhook_refuses_deliveries(
    api: TestClient, bearer: Bearer, shop: dict[str, Any], clock: FakeClock
) -> None:
    assert api.delete(HOOK, headers=bearer(Role.ADMIN)).status_code == 204
    assert api.post(HOOK, content=ORDER, headers=signed(clock)).status_code == 401


def test_deliveries_on_postgresql(
    fresh_database_url: Callable[[str], str], clock: FakeClock
) -> None:
    """The same on PostgreSQL: a delivery starts its run, its replay is refused, a bad
    signature stores nothing."""
    from treadle.api.app import create_app
    from treadle.common.loader import load_workflow_text
    from treadle.common.secret_box import generate_key
    from treadle.common.settings import Settings

    from .conftest import ON_ORDER, issue_token, workflow_text

    url = fresh_database_url("postgresql")
    with Store.open(url, secret_key=generate_key()) as store, Client(url) as client:
        client.register(load_workflow_text(workflow_text(ON_ORDER), "<on_order>"))
        admin = {"Authorization": f"Bearer {issue_token(store, 'pg', Role.ADMIN, clock())}"}
        app = create_app(Settings(database_url=url), store=store, clock=clock)
        with TestClient(app) as api:
            body = {"name": "shop", "event_type": "order.placed", "secret": SECRET}
            assert api.post("/api/v1/webhooks", headers=admin, json=body).status_code == 201
            bad = api.post(HOOK, content=ORDER, headers=signed(clock, secret="x" * 20))
            assert bad.status_code == 401
            assert_nothing_stored(store, client)
            headers = signed(clock)
            first = api.post(HOOK, content=ORDER, headers=headers)
            assert first.status_code == 200, first.json()
            assert api.post(HOOK, content=ORDER, headers=headers).status_code == 409
        [run] = client.list_runs(workflow="api.on_order").runs
        assert first.json()["started_runs"] == [run.id]
        assert count(store, webhook_deliveries) == 1
