"""The OpenAPI document, the docs page and its local assets, and the health checks."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from treadle.api.app import create_app
from treadle.common.settings import Settings

ErrorShape = Callable[..., dict[str, Any]]

#: Paths anyone may GET, without a token.
OPEN_PATHS = {"/healthz", "/readyz"}

#: Operations authenticated otherwise than by a token: a webhook delivery, by its signature.
SIGNED_OPERATIONS = {("post", "/api/v1/webhooks/{name}"): [{"webhook_signature": []}]}


def test_the_openapi_document_declares_the_bearer_scheme_on_every_api_route(
    api: TestClient,
) -> None:
    response = api.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearer"]["description"],
    }
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    assert {path for path, _m, _o in operations} >= {
        "/api/v1/runs",
        "/api/v1/runs/{run_id}",
        "/api/v1/runs/{run_id}/tasks",
        "/api/v1/runs/{run_id}/tasks/{task}/items",
        "/api/v1/runs/{run_id}/events",
        "/api/v1/runs/{run_id}/pause",
        "/api/v1/workflow-executions/{run_id}/compensate",
    }
    for path, method, operation in operations:
        if path in OPEN_PATHS:
            assert "security" not in operation, path
            continue
        if (method, path) in SIGNED_OPERATIONS:
            assert operation.get("security") == SIGNED_OPERATIONS[method, path], path
            continue
        assert operation.get("security") == [{"bearer": []}], (method, path)
        errors = ("401", "404", "422", "503") + (("400", "403", "409") if method == "post" else ())
        for status in errors:
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (path, status)
    ids = [operation["operationId"] for _p, _m, operation in operations]
    assert len(ids) == len(set(ids))
    by_path = {(p, m): o["operationId"] for p, m, o in operations}
    assert by_path[("/api/v1/runs/{run_id}", "get")] == "get_run"
    assert by_path[("/api/v1/workflow-executions/{run_id}", "get")] == (
        "get_run_as_workflow_execution"
    )
    pause = document["paths"]["/api/v1/runs/{run_id}/pause"]["post"]
    assert pause["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RunDocument"
    }
    assert "403" not in document["paths"]["/api/v1/runs/{run_id}"]["get"]["responses"]


def test_the_docs_page_loads_only_local_assets(api: TestClient) -> None:
    page = api.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "http://" not in html
    assert "https://" not in html
    assert "/api/v1/openapi.json" in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {asset.rsplit("/", 1)[-1] for asset in assets} == {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "favicon.png",
    }
    for asset in assets:
        assert asset.startswith("/api/static/"), asset
        assert api.get(asset).status_code == 200, asset
    bundle = api.get("/api/static/swagger-ui-bundle.js").text
    assert "openapi: 3.1.x" in bundle  # Swagger UI 5: it renders FastAPI's OpenAPI 3.1


def test_healthz_answers_while_the_process_is_up(api: TestClient) -> None:
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_on_sqlite_checks_the_database_only(api: TestClient) -> None:
    response = api.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}


def test_readyz_names_what_is_down(error_shape: ErrorShape) -> None:
    settings = Settings(
        database_url="postgresql+psycopg2://treadle@127.0.0.1:1/none",
        broker_url="amqp://guest:guest@127.0.0.1:1//",
    )
    with TestClient(create_app(settings)) as api:
        assert api.get("/healthz").status_code == 200
        response = api.get("/readyz")
    assert response.status_code == 503
    error = error_shape(response.json(), "service_unavailable", "database", "broker")
    checks = error["details"]
    assert set(checks) == {"database", "broker"}
    assert "127.0.0.1:1" in checks["database"]
    assert "127.0.0.1:1" in checks["broker"]
    assert "guest:guest" not in str(error)  # no password in what anyone may read
