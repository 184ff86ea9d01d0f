"""What a caller sees when a request is refused: 401, 403, 404, 405, 400/422, 409, 503, 500.

Every one of them answers ``{"error": {"type", "message", "details"}}``; the tests read the
responses as a client program would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from treadle.api.app import create_app
from treadle.client import Client
from treadle.common.access import AuditOutcome, Role
from treadle.common.settings import Settings, os_login
from treadle.scheduler.store import Store

ErrorShape = Callable[..., dict[str, Any]]
Bearer = Callable[[Role], dict[str, str]]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"Authorization": "Bearer "}, id="empty-token"),
        pytest.param({"Authorization": "Basic dXNlcjpwdw=="}, id="not-bearer"),
        pytest.param({"Authorization": "Bearer not-a-token"}, id="garbage"),
        pytest.param(
            {"Authorization": "Bearer trd_0123456789ab_" + "A" * 43}, id="well-formed-unknown"
        ),
    ],
)
def test_a_request_without_a_valid_token_is_401_with_a_bearer_challenge(
    api: TestClient, headers: dict[str, str], error_shape: ErrorShape
) -> None:
    response = api.get("/api/v1/runs", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    error = error_shape(response.json(), "unauthenticated")
    assert "not-a-token" not in error["message"]  # the token is never repeated
    assert "A" * 43 not in error["message"]


def test_a_token_works_until_its_expiry(
    api: TestClient, clock: Any, make_token: Callable[..., str], error_shape: ErrorShape
) -> None:
    token = make_token("short-lived", Role.VIEWER, expires_at=clock() + timedelta(hours=1))
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/runs", headers=headers).status_code == 200

    clock.advance(3600)
    response = api.get("/api/v1/runs", headers=headers)
    assert response.status_code == 401
    error_shape(response.json(), "unauthenticated", "expired")


def test_a_viewer_reads_but_may_not_control_a_run(
    api: TestClient,
    client: Client,
    start_run: Callable[..., str],
    bearer: Bearer,
    error_shape: ErrorShape,
) -> None:
    run_id = start_run()
    assert api.get(f"/api/v1/runs/{run_id}", headers=bearer(Role.VIEWER)).status_code == 200

    response = api.post(
        f"/api/v1/runs/{run_id}/pause", headers=bearer(Role.VIEWER), json={"reason": "lunch"}
    )
    assert response.status_code == 403
    error_shape(response.json(), "forbidden", "viewer", "operator")
    assert client.get(run_id).status == "running"  # nothing changed

    for role in (Role.OPERATOR, Role.ADMIN):
        control = "pause" if role is Role.OPERATOR else "resume"
        done = api.post(f"/api/v1/runs/{run_id}/{control}", headers=bearer(role))
        assert done.status_code == 200, done.json()
    assert client.get(run_id).status == "running"


def test_controls_are_in_the_audit_log_with_who_and_how_they_ended(
    api: TestClient,
    store: Store,
    start_run: Callable[..., str],
    bearer: Bearer,
    error_shape: ErrorShape,
) -> None:
    run_id = start_run()
    paused = api.post(
        f"/api/v1/runs/{run_id}/pause", headers=bearer(Role.OPERATOR), json={"reason": "lunch"}
    )
    assert paused.status_code == 200
    refused = api.post(f"/api/v1/runs/{run_id}/retry", headers=bearer(Role.OPERATOR))
    assert refused.status_code == 409
    error_shape(refused.json(), "conflict", f"run {run_id} is pausing", "can be retried")
    missing = api.post("/api/v1/runs/no-such-run/cancel", headers=bearer(Role.ADMIN))
    assert missing.status_code == 404

    with store.unit_of_work() as uow:
        entries = uow.list_audit(workspace=None, action=None)
    runs = [e for e in reversed(entries) if e.action.startswith("run.")]
    assert [(e.action, e.target, e.outcome, e.actor) for e in runs] == [
        ("run.start", "api.fan_out", AuditOutcome.OK, f"client:{os_login()}"),  # start_run
        ("run.pause", run_id, AuditOutcome.OK, "token:operator-token"),
        ("run.retry", run_id, AuditOutcome.REFUSED, "token:operator-token"),
        ("run.cancel", "no-such-run", AuditOutcome.FAILED, "token:admin-token"),
    ]
    assert runs[1].details == {"reason": "lunch"}
    assert runs[1].workspace == "default"
    assert runs[2].details is not None
    assert "can be retried" in str(runs[2].details["error"])


def test_an_unknown_run_and_an_unknown_route_are_404_and_a_wrong_method_405(
    api: TestClient, bearer: Bearer, error_shape: ErrorShape
) -> None:
    response = api.get("/api/v1/runs/r-nope", headers=bearer(Role.VIEWER))
    assert response.status_code == 404
    error_shape(response.json(), "not_found", "run r-nope not found")

    response = api.get("/api/v1/nothing-here", headers=bearer(Role.VIEWER))
    assert response.status_code == 404
    error_shape(response.json(), "not_found", "/api/v1/nothing-here")

    response = api.delete("/api/v1/runs", headers=bearer(Role.ADMIN))
    assert response.status_code == 405
    error_shape(response.json(), "method_not_allowed", "DELETE")
    assert "GET" in response.headers["allow"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("status=sleepy", "status"),
        ("started_after=yesterday", "started_after"),
    ],
)
def test_a_bad_query_parameter_is_422_naming_it(
    api: TestClient, bearer: Bearer, error_shape: ErrorShape, query: str, field: str
) -> None:
    response = api.get(f"/api/v1/runs?{query}", headers=bearer(Role.VIEWER))
    assert response.status_code == 422
    error = error_shape(response.json(), "validation_error", f"query parameter '{field}'")
    assert [problem["loc"] for problem in error["details"]] == [["query", field]]


def test_a_bad_cursor_is_422_saying_so(
    api: TestClient, bearer: Bearer, error_shape: ErrorShape
) -> None:
    response = api.get("/api/v1/runs?cursor=garbage", headers=bearer(Role.VIEWER))
    assert response.status_code == 422
    error = error_shape(response.json(), "invalid_parameters", "cursor", "garbage")
    assert error["details"]["subject"] == "cursor"


def test_a_bad_control_body_is_refused_naming_the_field_and_changes_nothing(
    api: TestClient,
    client: Client,
    start_run: Callable[..., str],
    bearer: Bearer,
    error_shape: ErrorShape,
) -> None:
    run_id = start_run()
    url = f"/api/v1/runs/{run_id}/pause"
    headers = bearer(Role.OPERATOR)

    wrong_type = api.post(url, headers=headers, json={"reason": 5})
    assert wrong_type.status_code == 422
    error = error_shape(wrong_type.json(), "validation_error", "body field 'reason'")
    assert error["details"][0]["loc"] == ["body", "reason"]

    unknown = api.post(url, headers=headers, json={"reasn": "typo"})
    assert unknown.status_code == 422
    error_shape(unknown.json(), "validation_error", "body field 'reasn'")

    malformed = api.post(
        url, headers={**headers, "Content-Type": "application/json"}, content=b'{"reason": '
    )
    assert malformed.status_code == 400
    error_shape(malformed.json(), "invalid_json", "not valid JSON")

    assert client.get(run_id).status == "running"


def test_an_unreachable_database_is_503_not_500(error_shape: ErrorShape) -> None:
    settings = Settings(database_url="postgresql+psycopg2://treadle@127.0.0.1:1/none")
    with TestClient(create_app(settings)) as api:
        response = api.get("/api/v1/runs", headers={"Authorization": "Bearer trd_x"})
    assert response.status_code == 503
    error_shape(response.json(), "service_unavailable", "127.0.0.1:1")


def test_an_unexpected_failure_is_500_in_the_same_shape_and_logged(
    database_url: str,
    store: Store,
    bearer: Bearer,
    error_shape: ErrorShape,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(Settings(database_url=database_url), store=store)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(store, "snapshot", broken)
    with TestClient(app, raise_server_exceptions=False) as api, caplog.at_level(logging.ERROR):
        response = api.get("/api/v1/runs", headers=bearer(Role.VIEWER))
    assert response.status_code == 500
    error = error_shape(response.json(), "internal_error")
    assert "fire" not in error["message"]  # internals stay in the log
    assert "the disk caught fire" in caplog.text
