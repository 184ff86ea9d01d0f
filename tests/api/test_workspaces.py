"""Workspaces: a token sees and changes its own workspace's objects, and no others.

Tokens of ``team-a`` and ``team-b`` work beside the default workspace (where the test's
``Client`` acts, as the CLI does). Another workspace's run, inquiry, key or workflow
answers 404 exactly as an unknown one does; workflows from the server (shared) are seen by
all; each workspace keeps its own refs, keys, event ids and idempotency keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from treadle.client import Client
from treadle.common.access import Principal, Role
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.service.access import issue
from treadle.scheduler.store import Store

from .conftest import FakeClock
from .test_inquiries import ask

ErrorShape = Callable[..., dict[str, Any]]
Bearer = Callable[[Role], dict[str, str]]

TEAM_FLOW = """\
ref: team.flow
vars:
  region: "{{ keystore.region }}"
  label: "{label}"
tasks:
  - name: only
    action: core.noop
"""


def _token(store: Store, clock: FakeClock, workspace: str, role: Role) -> dict[str, str]:
    creator = Principal("test-setup", Role.ADMIN, workspace)
    with store.unit_of_work() as uow:
        issued = issue(
            uow,
            name=f"{workspace}-{role.value}",
            role=role,
            workspace=workspace,
            expires_at=None,
            created_by=creator,
            now=clock(),
        )
    return {"Authorization": f"Bearer {issued.plaintext}"}


@pytest.fixture
def team_a(store: Store, clock: FakeClock) -> dict[Role, dict[str, str]]:
    return {role: _token(store, clock, "team-a", role) for role in Role}


@pytest.fixture
def team_b(store: Store, clock: FakeClock) -> dict[Role, dict[str, str]]:
    return {role: _token(store, clock, "team-b", role) for role in Role}


def _publish(api: TestClient, headers: dict[str, str], label: str) -> Any:
    return api.post(
        "/api/v1/workflows",
        content=TEAM_FLOW.replace("{label}", label),
        headers={**headers, "Content-Type": "application/yaml"},
    )


def test_another_workspaces_run_is_404_like_an_unknown_one(
    api: TestClient,
    bearer: Bearer,
    team_a: dict[Role, dict[str, str]],
    start_run: Callable[..., str],
    error_shape: ErrorShape,
) -> None:
    run_id = start_run()  # by the Client: the default workspace

    assert api.get(f"/api/v1/runs/{run_id}", headers=bearer(Role.VIEWER)).status_code == 200
    for path in ("", "/tasks", "/graph", "/context", "/events"):
        answer = api.get(f"/api/v1/runs/{run_id}{path}", headers=team_a[Role.ADMIN])
        assert answer.status_code == 404, (path, answer.json())
        error_shape(answer.json(), "not_found", f"run {run_id} not found")
    paused = api.post(f"/api/v1/runs/{run_id}/pause", headers=team_a[Role.ADMIN])
    assert paused.status_code == 404
    listed = api.get("/api/v1/runs", headers=team_a[Role.VIEWER]).json()
    assert listed["items"] == []
    document = api.get(f"/api/v1/runs/{run_id}", headers=bearer(Role.VIEWER)).json()
    assert document["status"] == "running"  # the refused pause changed nothing


def test_a_run_started_in_a_workspace_stays_in_it(
    api: TestClient,
    bearer: Bearer,
    team_a: dict[Role, dict[str, str]],
    team_b: dict[Role, dict[str, str]],
    client: Client,
) -> None:
    started = api.post("/api/v1/workflows/api.single/execute", headers=team_a[Role.OPERATOR])
    assert started.status_code == 201, started.json()
    run_id = started.json()["id"]

    assert api.get(f"/api/v1/runs/{run_id}", headers=team_a[Role.VIEWER]).status_code == 200
    assert api.get(f"/api/v1/runs/{run_id}", headers=team_b[Role.VIEWER]).status_code == 404
    assert api.get(f"/api/v1/runs/{run_id}", headers=bearer(Role.VIEWER)).status_code == 404
    [item] = api.get("/api/v1/runs", headers=team_a[Role.VIEWER]).json()["items"]
    assert item["id"] == run_id
    assert api.get("/api/v1/runs", headers=team_b[Role.VIEWER]).json()["items"] == []
    assert client.get(run_id).workflow == "api.single"  # the database path sees it all


def test_an_idempotency_key_counts_within_its_workspace(
    api: TestClient,
    team_a: dict[Role, dict[str, str]],
    team_b: dict[Role, dict[str, str]],
    client: Client,
) -> None:
    key = {"Idempotency-Key": "deploy-42"}
    url = "/api/v1/workflows/api.single/execute"
    first = api.post(url, headers={**team_a[Role.OPERATOR], **key})
    again = api.post(url, headers={**team_a[Role.OPERATOR], **key})
    other = api.post(url, headers={**team_b[Role.OPERATOR], **key})
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.json()["id"] == first.json()["id"]
    assert other.json()["id"] != first.json()["id"]


def test_each_workspace_keeps_its_own_workflows(
    api: TestClient,
    bearer: Bearer,
    team_a: dict[Role, dict[str, str]],
    team_b: dict[Role, dict[str, str]],
    client: Client,
) -> None:
    assert _publish(api, team_a[Role.ADMIN], "from a").status_code == 201
    assert api.get("/api/v1/workflows/team.flow", headers=team_b[Role.VIEWER]).status_code == 404
    assert api.get("/api/v1/workflows/team.flow", headers=bearer(Role.VIEWER)).status_code == 404
    refs_b = [
        w["ref"] for w in api.get("/api/v1/workflows", headers=team_b[Role.VIEWER]).json()["items"]
    ]
    assert "team.flow" not in refs_b
    assert "api.single" in refs_b  # shared: every workspace sees it
    started_b = api.post("/api/v1/workflows/team.flow/execute", headers=team_b[Role.OPERATOR])
    assert started_b.status_code == 404

    published_b = _publish(api, team_b[Role.ADMIN], "from b")
    assert published_b.status_code == 201, published_b.json()
    assert published_b.json()["version"] == 1  # its own first version, not a's second
    shown_a = api.get("/api/v1/workflows/team.flow", headers=team_a[Role.VIEWER]).json()
    shown_b = api.get("/api/v1/workflows/team.flow", headers=team_b[Role.VIEWER]).json()
    assert "from a" in str(shown_a["definition"])
    assert "from b" not in str(shown_a["definition"])
    assert "from b" in str(shown_b["definition"])

    deleted = api.delete("/api/v1/workflows/team.flow", headers=team_b[Role.ADMIN])
    assert deleted.status_code == 200, deleted.json()
    assert api.get("/api/v1/workflows/team.flow", headers=team_a[Role.VIEWER]).status_code == 200
    again = api.post("/api/v1/workflows/team.flow/execute", headers=team_a[Role.OPERATOR])
    assert again.status_code == 201, again.json()


def test_a_workspace_cannot_replace_or_delete_a_shared_workflow(
    api: TestClient, team_a: dict[Role, dict[str, str]], error_shape: ErrorShape, client: Client
) -> None:
    body = "ref: api.single\ntasks:\n  - name: other\n    action: core.noop\n"
    replaced = api.post(
        "/api/v1/workflows",
        content=body,
        headers={**team_a[Role.ADMIN], "Content-Type": "application/yaml"},
    )
    assert replaced.status_code == 409
    error_shape(replaced.json(), "conflict", "'api.single' is shared by every workspace")
    deleted = api.delete("/api/v1/workflows/api.single", headers=team_a[Role.ADMIN])
    assert deleted.status_code == 409
    assert api.get("/api/v1/workflows/api.single", headers=team_a[Role.VIEWER]).status_code == 200


def test_keys_belong_to_a_workspace_and_its_runs_read_them(
    api: TestClient,
    bearer: Bearer,
    team_a: dict[Role, dict[str, str]],
    team_b: dict[Role, dict[str, str]],
) -> None:
    put = api.put("/api/v1/kv/region", json={"value": "eu-west"}, headers=team_a[Role.ADMIN])
    assert put.status_code == 200, put.json()
    api.put("/api/v1/kv/region", json={"value": "us-east"}, headers=team_b[Role.ADMIN])

    assert api.get("/api/v1/kv/region", headers=team_a[Role.VIEWER]).json()["value"] == "eu-west"
    assert api.get("/api/v1/kv/region", headers=team_b[Role.VIEWER]).json()["value"] == "us-east"
    assert api.get("/api/v1/kv/region", headers=bearer(Role.VIEWER)).status_code == 404
    assert api.get("/api/v1/kv", headers=bearer(Role.VIEWER)).json()["items"] == []

    assert _publish(api, team_a[Role.ADMIN], "a").status_code == 201
    run_id = api.post("/api/v1/workflows/team.flow/execute", headers=team_a[Role.OPERATOR]).json()[
        "id"
    ]
    context = api.get(f"/api/v1/runs/{run_id}/context", headers=team_a[Role.VIEWER]).json()
    assert context["vars"]["region"] == "eu-west"


def test_events_start_and_count_within_their_workspace(
    api: TestClient,
    bearer: Bearer,
    team_a: dict[Role, dict[str, str]],
    team_b: dict[Role, dict[str, str]],
    client: Client,
) -> None:
    event = {"type": "order.placed", "id": "order-1", "data": {}}
    sent_a = api.post("/api/v1/events", json=event, headers=team_a[Role.OPERATOR]).json()
    sent_b = api.post("/api/v1/events", json=event, headers=team_b[Role.OPERATOR]).json()
    again_a = api.post("/api/v1/events", json=event, headers=team_a[Role.OPERATOR]).json()

    assert sent_a["duplicate"] is False
    assert sent_b["duplicate"] is False
    assert again_a["duplicate"] is True
    [run_a] = sent_a["started_runs"]  # api.on_order is shared: its trigger fires in both
    [run_b] = sent_b["started_runs"]
    assert api.get(f"/api/v1/runs/{run_a}", headers=team_a[Role.VIEWER]).status_code == 200
    assert api.get(f"/api/v1/runs/{run_a}", headers=team_b[Role.VIEWER]).status_code == 404
    assert api.get(f"/api/v1/runs/{run_b}", headers=team_b[Role.VIEWER]).status_code == 200
    assert api.get(f"/api/v1/runs/{run_b}", headers=bearer(Role.VIEWER)).status_code == 404


def test_another_workspaces_inquiry_is_404_and_cannot_be_answered(
    api: TestClient,
    bearer: Bearer,
    team_a: dict[Role, dict[str, str]],
    runner: EmbeddedRunner,
) -> None:
    _, inquiry_id = ask(runner)  # the default workspace's run asks

    assert api.get("/api/v1/inquiries", headers=team_a[Role.VIEWER]).json()["items"] == []
    assert (
        api.get(f"/api/v1/inquiries/{inquiry_id}", headers=team_a[Role.VIEWER]).status_code == 404
    )
    answered = api.post(
        f"/api/v1/inquiries/{inquiry_id}/respond",
        json={"response": {"approved": True}},
        headers=team_a[Role.OPERATOR],
    )
    assert answered.status_code == 404
    shown = api.get(f"/api/v1/inquiries/{inquiry_id}", headers=bearer(Role.VIEWER)).json()
    assert shown["status"] == "pending"
