"""Resuming a run its budget stopped over the HTTP API, and ``ApiClient.resume(budget=...)``.

A cost budget of 0 stops a run before its first dispatch, so no scheduler is needed: the
run document shows the stop; ``POST /runs/{id}/resume`` without a higher limit is a 409,
with a bad or unknown limit a 422 (the one error shape, nothing changed), and with a
higher limit it resumes (the task is dispatched). The audit log keeps the new limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from treadle.apiclient import ApiClient
from treadle.client import Client
from treadle.common.access import Role
from treadle.common.loader import load_workflow_text
from treadle.scheduler.service.controls import ControlRefused

FROZEN = """\
ref: api.frozen
budget: {cost_usd: 0, attempts: 3}
tasks:
  - name: only
    action: core.noop
"""


@pytest.fixture
def frozen_run(client: Client) -> str:
    client.register(load_workflow_text(FROZEN, "<frozen>"))
    return client.start("api.frozen")


def test_resume_takes_new_budget_limits(
    api: TestClient,
    frozen_run: str,
    bearer: Callable[[Role], dict[str, str]],
    error_shape: Callable[..., dict[str, object]],
) -> None:
    path = f"/api/v1/runs/{frozen_run}"
    operator = bearer(Role.OPERATOR)

    def resume(body: Any, status: int) -> Any:
        done = api.post(f"{path}/resume", headers=operator, json=body)
        assert done.status_code == status, done.json()
        return done.json()

    shown = api.get(path, headers=bearer(Role.VIEWER)).json()
    assert shown["status"] == "paused"
    assert shown["budget"]["stopped"]["kind"] == "cost_usd"
    assert shown["why"][0]["reason"] == "budget"

    error_shape(resume(None, 409), "conflict", "stopped on its cost_usd budget", "--budget")
    error_shape(resume({"budget": {"cost": 1}}, 422), "invalid_parameters", "cost")
    error_shape(resume({"budget": {"attempts": 0}}, 422), "invalid_parameters", "attempts")
    error_shape(
        resume({"budget": {"cost_usd": 0}}, 409), "conflict", "stopped on its cost_usd budget"
    )
    paused = api.post(f"{path}/pause", headers=operator, json={"budget": {"cost_usd": 5}})
    error_shape(paused.json(), "conflict")  # a paused run cannot be paused (nothing changes)
    assert api.get(path, headers=operator).json()["status"] == "paused"

    resumed = resume({"reason": "more money", "budget": {"cost_usd": 2.5}}, 200)
    assert resumed["status"] == "running"
    assert resumed["budget"]["limits"] == {"cost_usd": 2.5, "attempts": 3}
    assert resumed["tasks"][0]["status"] == "running"  # dispatched
    audit = api.get(
        "/api/v1/audit", headers=bearer(Role.ADMIN), params={"action": "run.resume"}
    ).json()["items"]
    assert audit[0]["details"] == {"reason": "more money", "budget": {"cost_usd": 2.5}}


def test_the_api_client_resumes_with_a_budget(
    api: TestClient, frozen_run: str, tokens: dict[Role, str]
) -> None:
    with ApiClient("http://testserver", tokens[Role.OPERATOR], transport=api) as remote:
        with pytest.raises(ControlRefused, match="stopped on its cost_usd budget"):
            remote.resume(frozen_run)
        info = remote.resume(frozen_run, budget={"cost_usd": 1, "wall_time": "1h"})
    assert info.status.value == "running"
    assert info.budget is not None
    assert info.budget["limits"] == {"cost_usd": 1.0, "wall_time": 3600.0, "attempts": 3}


def test_a_start_may_give_a_budget(
    api: TestClient,
    client: Client,
    tokens: dict[Role, str],
    bearer: Callable[[Role], dict[str, str]],
    error_shape: Callable[..., dict[str, object]],
) -> None:
    client.register(load_workflow_text(FROZEN, "<frozen>"))
    with ApiClient("http://testserver", tokens[Role.OPERATOR], transport=api) as remote:
        run_id = remote.start("api.frozen", budget={"cost_usd": 3})
        assert remote.get(run_id).status.value == "running"  # 3 USD: the task went out
    bad = api.post(
        "/api/v1/workflows/api.frozen/execute",
        headers=bearer(Role.OPERATOR),
        json={"budget": {"cost_usd": -1}},
    )
    assert bad.status_code == 422
    error_shape(bad.json(), "invalid_parameters", "cost_usd")
