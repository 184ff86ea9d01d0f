"""``GET /metrics``: the API process's metrics, behind a token, labelled by route template.

A real app (``create_app``) on a real SQLite store, driven with FastAPI's TestClient:
``/metrics`` refuses a request without a token (401, in the API's error shape) and serves
any role's; requests are counted by the *template* of their route (never a run id), method
and status code, an unknown path as ``unmatched``; the runs the API starts and cancels are
counted (``treadle_runs_*``, by the run service observer the API registers); every series
served is one of the catalogue's ``api`` and ``runs`` metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from treadle.client import Client
from treadle.common.access import Role
from treadle.common.metrics_catalog import MetricSource, of_source

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(api: TestClient, headers: dict[str, str]) -> Samples:
    response = api.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    return samples.get((metric, frozenset(labels.items())), 0.0)


def test_metrics_need_a_token_and_any_role_reads_them(
    api: TestClient, bearer: Callable[[Role], dict[str, str]], error_shape: Any
) -> None:
    refused = api.get("/metrics")
    assert refused.status_code == 401
    error_shape(refused.json(), "unauthenticated")
    wrong = api.get("/metrics", headers={"Authorization": "Bearer trd_not-a-token"})
    assert wrong.status_code == 401
    for role in Role:
        samples = scrape(api, bearer(role))
        assert (
            value(samples, "treadle_api_requests_total", route="/metrics", method="GET", code="401")
            == 2
        )


def test_requests_are_counted_by_route_template_and_runs_by_what_the_api_saved(
    api: TestClient, bearer: Callable[[Role], dict[str, str]], client: Client
) -> None:
    operator = bearer(Role.OPERATOR)
    started = api.post(
        "/api/v1/workflows/api.single/execute", json={"parameters": {}}, headers=operator
    )
    assert started.status_code == 201, started.json()
    run_id = started.json()["id"]
    for _ in range(3):
        assert api.get(f"/api/v1/runs/{run_id}", headers=operator).status_code == 200
    assert api.get("/api/v1/runs/no-such-run", headers=operator).status_code == 404
    assert api.get("/no/such/path").status_code == 404
    assert api.post(f"/api/v1/runs/{run_id}/cancel", headers=operator).status_code == 200

    samples = scrape(api, bearer(Role.VIEWER))
    requests = "treadle_api_requests_total"
    run_route = "/api/v1/runs/{run_id}"
    assert value(samples, requests, route=run_route, method="GET", code="200") == 3
    assert value(samples, requests, route=run_route, method="GET", code="404") == 1
    assert (
        value(samples, requests, route="/api/v1/workflows/{ref}/execute", method="POST", code="201")
        == 1
    )
    assert value(samples, requests, route="unmatched", method="GET", code="404") == 1
    assert value(samples, "treadle_api_request_seconds_count", route=run_route) == 4
    routes = {dict(labels).get("route") for name, labels in samples if name == requests}
    assert not any(run_id in str(route) or "no-such-run" in str(route) for route in routes)

    # The runs this process saved: started by its execute, ended by its cancel.
    assert value(samples, "treadle_runs_started_total", workflow="api.single") == 1
    assert (
        value(samples, "treadle_runs_finished_total", workflow="api.single", status="canceled") == 1
    )
    assert (
        value(
            samples, "treadle_run_duration_seconds_count", workflow="api.single", status="canceled"
        )
        == 1
    )

    exported = {
        series
        for source in (MetricSource.API, MetricSource.RUNS)
        for spec in of_source(source)
        for series in (*spec.series, f"{spec.name}_created")
    }
    served = {name for name, _labels in samples}
    assert served <= exported, served - exported
