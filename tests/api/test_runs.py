"""The runs routes as a client program uses them: list and page, read, page items and
events, control; and the same under the ``/api/v1/workflow-executions`` alias."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from treadle.api.models.runs import RunDocument
from treadle.client import Client
from treadle.common.access import Role

ErrorShape = Callable[..., dict[str, Any]]
Bearer = Callable[[Role], dict[str, str]]

PREFIXES = ("/api/v1/runs", "/api/v1/workflow-executions")


@pytest.fixture
def viewer(api: TestClient, bearer: Bearer) -> Callable[..., Any]:
    """GET ``path`` as a viewer; its JSON, the status asserted (200 unless ``expect``)."""

    def get(path: str, expect: int = 200, **params: Any) -> Any:
        response = api.get(path, headers=bearer(Role.VIEWER), params=params)
        assert response.status_code == expect, response.json()
        return response.json()

    return get


@pytest.mark.parametrize("prefix", PREFIXES)
def test_runs_page_newest_first_by_cursor_covering_each_run_once(
    client: Client, start_run: Callable[..., str], viewer: Callable[..., Any], prefix: str
) -> None:
    started = [start_run(f"user-{i}") for i in range(7)]
    newest_first = [run.id for run in client.list_runs(limit=100).runs]
    assert sorted(newest_first) == sorted(started)

    seen: list[str] = []
    pages: list[int] = []
    cursor = None
    while True:
        params = {"limit": 3} if cursor is None else {"limit": 3, "cursor": cursor}
        page = viewer(prefix, **params)
        assert set(page) == {"items", "next_cursor"}
        seen.extend(item["id"] for item in page["items"])
        pages.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
        start_run("latecomer")  # newer than any cursor: never shifts the pages
    assert pages == [3, 3, 1]
    assert seen == newest_first
    first = viewer(prefix, limit=1)["items"][0]
    assert first["workflow"] == "api.fan_out"
    assert first["status"] == "running"
    assert first["created_at"].endswith("Z")
    assert first["parent_run"] is None


def test_runs_are_filtered_by_status_workflow_trigger_and_start_time(
    api: TestClient,
    client: Client,
    start_run: Callable[..., str],
    bearer: Bearer,
    viewer: Callable[..., Any],
) -> None:
    fan_out = start_run()
    single = start_run(single=True)
    api.post(f"/api/v1/runs/{single}/cancel", headers=bearer(Role.OPERATOR))
    triggered = client.send_event("order.placed", event_id="order-7").started_runs
    assert len(triggered) == 1

    def ids(**params: Any) -> list[str]:
        return [item["id"] for item in viewer("/api/v1/runs", **params)["items"]]

    assert ids(status="canceled") == [single]
    assert ids(workflow="api.fan_out") == [fan_out]
    assert ids(trigger="order-7") == triggered
    assert ids(trigger="order-8") == []
    created = client.get(fan_out).created_at
    assert created is not None
    after = (created + timedelta(microseconds=1)).replace(tzinfo=None).isoformat()
    assert fan_out not in ids(started_after=after)  # no offset: UTC
    assert set(ids(started_before=after)) == {fan_out}
    assert fan_out in ids(started_after=created.isoformat())


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_run_reads_as_the_client_reads_it(
    client: Client, start_run: Callable[..., str], viewer: Callable[..., Any], prefix: str
) -> None:
    run_id = start_run()
    document = viewer(f"{prefix}/{run_id}")
    assert document["id"] == run_id
    assert document["status"] == "running"
    assert document["parameters"] == {"name": "Ada", "password": "***"}
    [task] = document["tasks"]
    assert task["name"] == "each"
    assert task["items_summary"]["total"] == 5
    assert "items" not in task
    assert RunDocument.model_validate(document) == RunDocument.model_validate(
        client.get(run_id).model_dump(by_alias=True)
    )

    with_items = viewer(f"{prefix}/{run_id}", items="true")
    assert [item["item"] for item in with_items["tasks"][0]["items"]] == ["a", "b", "c", "d", "e"]

    tasks = viewer(f"{prefix}/{run_id}/tasks")
    assert tasks == {"run": run_id, "tasks": document["tasks"]}


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_tasks_items_page_by_cursor(
    start_run: Callable[..., str],
    viewer: Callable[..., Any],
    error_shape: ErrorShape,
    prefix: str,
) -> None:
    run_id = start_run()
    seen, cursor = [], None
    while True:
        params = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = viewer(f"{prefix}/{run_id}/tasks/each/items", **params)
        assert (page["run"], page["task"], page["execution"]) == (run_id, "each", 1)
        seen.append([item["item"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [["a", "b"], ["c", "d"], ["e"]]

    missing = viewer(f"{prefix}/{run_id}/tasks/nope/items", expect=404)
    error_shape(missing, "not_found", "no execution of task 'nope'")
    too_many = viewer(f"{prefix}/{run_id}/tasks/each/items", expect=422, limit=1001)
    error_shape(too_many, "validation_error", "query parameter 'limit'")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_event_log_pages_oldest_first_with_secrets_masked(
    api: TestClient,
    start_run: Callable[..., str],
    bearer: Bearer,
    viewer: Callable[..., Any],
    error_shape: ErrorShape,
    prefix: str,
) -> None:
    run_id = start_run()
    for control, reason in (("pause", "lunch"), ("resume", None), ("pause", "tea")):
        body = {"reason": reason} if reason else None
        done = api.post(f"{prefix}/{run_id}/{control}", headers=bearer(Role.OPERATOR), json=body)
        assert done.status_code == 200, done.json()

    first = viewer(f"{prefix}/{run_id}/events", limit=2)
    second = viewer(f"{prefix}/{run_id}/events", limit=2, cursor=first["next_cursor"])
    assert second["next_cursor"] is None
    events = first["items"] + second["items"]
    assert [(e["seq"], e["kind"]) for e in events] == [
        (1, "run_requested"),
        (2, "pause_requested"),
        (3, "resume_requested"),
        (4, "pause_requested"),
    ]
    assert events[1]["data"] == {"reason": "lunch", "by": "token:operator-token"}
    context = events[0]["data"]["context"]
    assert context["parameters"] == {"name": "Ada", "password": "***"}
    assert "keystore" not in context
    assert "hunter2-secret" not in str(first)

    bad = viewer(f"{prefix}/{run_id}/events", expect=422, cursor="x1")
    error_shape(bad, "invalid_parameters", "cursor")
    error_shape(viewer(f"{prefix}/r-nope/events", expect=404), "not_found", "r-nope")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_controls_change_the_run_and_answer_the_run_as_left(
    api: TestClient,
    client: Client,
    start_run: Callable[..., str],
    bearer: Bearer,
    error_shape: ErrorShape,
    prefix: str,
) -> None:
    run_id = start_run(single=True)
    operator = bearer(Role.OPERATOR)

    def control(name: str, status: int = 200, reason: str | None = None) -> Any:
        body = {"reason": reason} if reason is not None else None
        response = api.post(f"{prefix}/{run_id}/{name}", headers=operator, json=body)
        assert response.status_code == status, response.json()
        return response.json()

    assert control("pause")["status"] == "pausing"
    assert client.get(run_id).status == "pausing"
    assert control("resume")["status"] == "running"
    canceled = control("cancel", reason="no longer needed")
    assert canceled["status"] == "canceled"
    assert canceled["error"]["message"] == "no longer needed"
    error_shape(control("cancel", status=409), "conflict", "only runs that have not ended")
    assert control("retry")["status"] == "running"
    assert control("compensate")["status"] == "compensated"
    assert client.get(run_id).status == "compensated"


def test_the_alias_routes_answer_what_the_runs_routes_answer(
    start_run: Callable[..., str], viewer: Callable[..., Any]
) -> None:
    run_id = start_run()
    for path in ("", f"/{run_id}", f"/{run_id}/tasks", f"/{run_id}/events"):
        assert viewer(f"/api/v1/workflow-executions{path}") == viewer(f"/api/v1/runs{path}")


@pytest.mark.parametrize("cursor", ["²", "abc", "-1"])
def test_an_event_cursor_no_page_returned_is_a_422_naming_it(
    api: TestClient,
    bearer: Callable[[Role], dict[str, str]],
    start_run: Callable[..., str],
    error_shape: Callable[..., dict[str, object]],
    cursor: str,
) -> None:
    run_id = start_run()
    answer = api.get(
        f"/api/v1/runs/{run_id}/events", params={"cursor": cursor}, headers=bearer(Role.VIEWER)
    )
    assert answer.status_code == 422
    error_shape(answer.json(), "invalid_parameters", "is not a next cursor")
