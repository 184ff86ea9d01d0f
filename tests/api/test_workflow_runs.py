"""The workflows routes that start runs or stop them from starting: execute (once per
idempotency key), delete (no new run; runs started before go on; event triggers stop),
unknown workflows, the OpenAPI document, and all of it on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from treadle.api.app import create_app
from treadle.client import Client
from treadle.common.access import AuditOutcome, Role
from treadle.common.errors import NotFound
from treadle.common.settings import Settings
from treadle.scheduler.store import Store

from .workflow_requests import GREET, YAML, Bearer, ErrorShape, audit_entries


def test_executing_starts_a_run_once_per_idempotency_key(
    publish: Callable[..., Any],
    api: TestClient,
    bearer: Bearer,
    client: Client,
    store: Store,
    error_shape: ErrorShape,
) -> None:
    publish(GREET)
    operator = bearer(Role.OPERATOR)

    def execute(body: Any = None, key: str | None = None, headers: Any = operator) -> Any:
        sent = {**headers, **({"Idempotency-Key": key} if key else {})}
        return api.post("/api/v1/workflows/shop.greet/execute", json=body, headers=sent)

    first = execute({"parameters": {"name": "Ada"}}, key="order-42")
    assert first.status_code == 201, first.json()
    run_id = first.json()["id"]
    assert first.headers["location"] == f"/api/v1/runs/{run_id}"
    assert (first.json()["workflow"], first.json()["status"]) == ("shop.greet", "running")
    assert first.json()["parameters"] == {"name": "Ada"}
    assert client.get(run_id).version == 1

    again = execute({"parameters": {"name": "Ada"}}, key="order-42")
    assert again.status_code == 200
    assert again.json()["id"] == run_id
    assert client.start("shop.greet", {"name": "Ada"}, idempotency_key="order-42") == run_id
    assert len(client.list_runs(workflow="shop.greet").runs) == 1

    bad = execute({"parameters": {}})
    assert bad.status_code == 422
    error_shape(bad.json(), "invalid_parameters", "name")
    unknown_version = execute({"parameters": {"name": "Ada"}, "version": 9})
    assert unknown_version.status_code == 404
    error_shape(unknown_version.json(), "not_found", "no version 9", "published versions: 1")
    error_shape(execute(headers=bearer(Role.VIEWER)).json(), "forbidden", "operator")
    assert len(client.list_runs(workflow="shop.greet").runs) == 1

    starts = audit_entries(store, "run.start")
    assert [(e.target, e.outcome, e.actor.split(":")[0]) for e in starts] == [
        ("shop.greet", AuditOutcome.OK, "token"),
        ("shop.greet", AuditOutcome.OK, "token"),
        ("shop.greet", AuditOutcome.OK, "client"),  # the Client's start, on the database
        ("shop.greet", AuditOutcome.FAILED, "token"),
        ("shop.greet", AuditOutcome.FAILED, "token"),
    ]
    assert starts[0].details == {
        "version": 1,
        "idempotency_key": "order-42",
        "run": run_id,
        "created": True,
    }
    assert starts[1].details is not None
    assert starts[1].details["created"] is False


def test_a_deleted_workflow_starts_no_run_while_runs_started_before_go_on(
    publish: Callable[..., Any],
    api: TestClient,
    bearer: Bearer,
    client: Client,
    viewer: Callable[..., Any],
    store: Store,
    error_shape: ErrorShape,
) -> None:
    publish(GREET)
    before = client.start("shop.greet", {"name": "Ada"})
    deleted = api.delete(
        "/api/v1/workflows/shop.greet", params={"reason": "retired"}, headers=bearer(Role.ADMIN)
    )
    assert deleted.status_code == 200, deleted.json()
    assert deleted.json() == {
        "workflow": "shop.greet",
        "deleted_by": "token:admin-token",
        "deleted_at": "2026-03-02T09:00:00Z",
        "tombstone_version": 2,
        "last_version": 1,
    }

    refused = api.post(
        "/api/v1/workflows/shop.greet/execute",
        json={"parameters": {"name": "Bo"}, "version": 1},
        headers=bearer(Role.OPERATOR),
    )
    assert refused.status_code == 404
    error_shape(refused.json(), "not_found", "'shop.greet' was deleted by token:admin-token")
    with pytest.raises(NotFound, match="was deleted"):
        client.start("shop.greet", {"name": "Bo"})
    error_shape(viewer("/api/v1/workflows/shop.greet", expect=404), "not_found", "was deleted")
    assert viewer("/api/v1/workflows", pack="shop")["items"] == []
    history = viewer("/api/v1/workflows/shop.greet/versions")["versions"]
    assert [(v["version"], v["deleted"], v["runs"]) for v in history] == [
        (1, False, 1),
        (2, True, 0),
    ]
    assert "+deleted:\n" in viewer("/api/v1/workflows/shop.greet/diff")["diff"]

    # the run started before goes on: it is read and controlled as before
    assert viewer(f"/api/v1/runs/{before}")["status"] == "running"
    paused = api.post(f"/api/v1/runs/{before}/pause", headers=bearer(Role.OPERATOR))
    assert paused.status_code == 200, paused.json()
    assert paused.json()["status"] == "pausing"

    twice = api.delete("/api/v1/workflows/shop.greet", headers=bearer(Role.ADMIN))
    assert twice.status_code == 404
    error_shape(twice.json(), "not_found", "was deleted")
    deletions = audit_entries(store, "workflow.delete")
    assert [(e.outcome, e.details and e.details.get("reason")) for e in deletions] == [
        (AuditOutcome.OK, "retired"),
        (AuditOutcome.FAILED, None),
    ]

    back = publish(GREET)
    assert back.status_code == 201
    assert back.json()["version"] == 3
    again = api.post(
        "/api/v1/workflows/shop.greet/execute",
        json={"parameters": {"name": "Cy"}},
        headers=bearer(Role.OPERATOR),
    )
    assert again.status_code == 201, again.json()


def test_a_deleted_workflows_event_trigger_starts_nothing(
    publish: Callable[..., Any], api: TestClient, bearer: Bearer, client: Client
) -> None:
    on_refund = "ref: shop.on_refund\ntrigger: {type: event, event_type: refund.asked}\n" + (
        "tasks: [{name: only, action: core.noop}]\n"
    )
    assert publish(on_refund).status_code == 201
    assert len(client.send_event("refund.asked", event_id="e-1").started_runs) == 1
    assert api.delete("/api/v1/workflows/shop.on_refund", headers=bearer(Role.ADMIN)).is_success
    assert client.send_event("refund.asked", event_id="e-2").started_runs == []


def test_an_unknown_workflow_is_404_everywhere(
    api: TestClient, bearer: Bearer, viewer: Callable[..., Any], error_shape: ErrorShape
) -> None:
    for path in ("", "/versions", "/diff"):
        error_shape(viewer(f"/api/v1/workflows/shop.nope{path}", expect=404), "not_found", "nope")
    executed = api.post("/api/v1/workflows/shop.nope/execute", headers=bearer(Role.OPERATOR))
    assert executed.status_code == 404
    error_shape(executed.json(), "not_found", "'shop.nope' has no published version")
    deleted = api.delete("/api/v1/workflows/shop.nope", headers=bearer(Role.ADMIN))
    assert deleted.status_code == 404


def test_every_route_is_in_the_openapi_document_with_its_own_operation_id(
    api: TestClient,
) -> None:
    document = api.get("/api/v1/openapi.json").json()
    operations = {
        (method.upper(), path): op["operationId"]
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    expected = {
        ("GET", "/api/v1/workflows"): "list_workflows",
        ("POST", "/api/v1/workflows"): "create_workflow",
        ("GET", "/api/v1/workflows/{ref}"): "get_workflow",
        ("PUT", "/api/v1/workflows/{ref}"): "update_workflow",
        ("DELETE", "/api/v1/workflows/{ref}"): "delete_workflow",
        ("GET", "/api/v1/workflows/{ref}/versions"): "list_workflow_versions",
        ("GET", "/api/v1/workflows/{ref}/diff"): "diff_workflow_versions",
        ("POST", "/api/v1/workflows/validate"): "validate_workflow",
        ("POST", "/api/v1/workflows/{ref}/validate"): "validate_workflow_ref",
        ("POST", "/api/v1/workflows/{ref}/execute"): "execute_workflow",
        ("GET", "/api/v1/packs/{pack_ref}/workflows"): "list_pack_workflows",
        ("POST", "/api/v1/packs/{pack_ref}/workflows"): "create_pack_workflow",
        ("GET", "/api/v1/packs"): "list_packs",
        ("POST", "/api/v1/packs/reload"): "reload_packs",
    }
    assert {key: operations.get(key) for key in expected} == expected
    assert len(set(operations.values())) == len(operations)
    create = document["paths"]["/api/v1/workflows"]["post"]
    assert set(create["requestBody"]["content"]) == {"application/yaml", "application/json"}


@pytest.mark.services
def test_publishing_listing_deleting_and_executing_on_postgresql(
    fresh_database_url: Callable[[str], str], clock: Any
) -> None:
    from datetime import UTC, datetime

    from treadle.common.access import DEFAULT_WORKSPACE, Principal
    from treadle.scheduler.service.access import issue

    url = fresh_database_url("postgresql")
    with Store.open(url) as pg:
        with pg.unit_of_work() as uow:
            token = issue(
                uow,
                name="pg-admin",
                role=Role.ADMIN,
                workspace=DEFAULT_WORKSPACE,
                expires_at=None,
                created_by=Principal("test-setup", Role.ADMIN, DEFAULT_WORKSPACE),
                now=datetime.now(UTC),
            ).plaintext
        admin = {"Authorization": f"Bearer {token}"}
        with TestClient(create_app(Settings(database_url=url), store=pg, clock=clock)) as api:
            for ref in ("shop.a", "shop_2.b", "shopx.c"):
                text = GREET.replace("shop.greet", ref)
                created = api.post("/api/v1/workflows", content=text, headers={**admin, **YAML})
                assert created.status_code == 201, created.json()
            listed = api.get("/api/v1/workflows", params={"pack": "shop_2"}, headers=admin)
            assert [item["ref"] for item in listed.json()["items"]] == ["shop_2.b"]
            page = api.get("/api/v1/workflows", params={"limit": 2}, headers=admin).json()
            rest = api.get(
                "/api/v1/workflows", params={"cursor": page["next_cursor"]}, headers=admin
            )
            refs = [i["ref"] for i in page["items"]] + [i["ref"] for i in rest.json()["items"]]
            # each once, in the database's order of refs (its collation's)
            assert sorted(refs) == sorted({"shop.a", "shop_2.b", "shopx.c"})

            started = api.post(
                "/api/v1/workflows/shop.a/execute",
                json={"parameters": {"name": "Ada"}},
                headers={**admin, "Idempotency-Key": "pg-1"},
            )
            assert started.status_code == 201, started.json()
            assert api.delete("/api/v1/workflows/shop.a", headers=admin).status_code == 200
            refused = api.post(
                "/api/v1/workflows/shop.a/execute",
                json={"parameters": {"name": "Bo"}, "version": 1},
                headers=admin,
            )
            assert refused.status_code == 404
            assert "was deleted" in refused.json()["error"]["message"]
            run = api.get(f"/api/v1/runs/{started.json()['id']}", headers=admin).json()
            assert run["status"] == "running"
            reloaded = api.post("/api/v1/packs/reload", headers=admin)
            assert reloaded.status_code == 200, reloaded.json()
            assert reloaded.json()["packs"]["added"] == ["core", "examples"]


def test_a_run_started_with_a_priority_dispatches_its_tasks_with_it(
    publish: Callable[..., Any],
    api: TestClient,
    bearer: Bearer,
    store: Store,
    error_shape: ErrorShape,
) -> None:
    from sqlalchemy import select

    from treadle.scheduler.store.models import outbox

    publish(GREET)
    operator = bearer(Role.OPERATOR)
    path = "/api/v1/workflows/shop.greet/execute"
    urgent = api.post(path, json={"parameters": {"name": "Ada"}, "priority": 9}, headers=operator)
    assert urgent.status_code == 201, urgent.json()
    plain = api.post(path, json={"parameters": {"name": "Bo"}}, headers=operator)
    with store.unit_of_work() as uow:
        priorities = {
            row.run_id: row.payload["priority"]
            for row in uow.connection.execute(
                select(outbox.c.run_id, outbox.c.payload).where(outbox.c.kind == "dispatch_task")
            )
        }
    assert priorities == {urgent.json()["id"]: 9, plain.json()["id"]: 5}

    refused = api.post(path, json={"parameters": {"name": "Cy"}, "priority": 10}, headers=operator)
    assert refused.status_code == 422
    error_shape(refused.json(), "validation_error", "priority")
