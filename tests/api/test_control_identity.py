"""Who asked for a control is in the run's event log, through the API and the client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from treadle.client import Client
from treadle.common.access import Role
from treadle.common.settings import os_login


def _controls(api: TestClient, run_id: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    page = api.get(f"/api/v1/runs/{run_id}/events", headers=headers).json()
    return [
        e
        for e in page["items"]
        if e["kind"].endswith("_requested") and e["kind"] != "run_requested"
    ]


def test_a_control_names_who_asked_for_it_in_the_run_events(
    api: TestClient,
    client: Client,
    bearer: Callable[[Role], dict[str, str]],
    start_run: Callable[..., str],
) -> None:
    run_id = start_run(single=True)
    paused = api.post(
        f"/api/v1/runs/{run_id}/pause", headers=bearer(Role.OPERATOR), json={"reason": "lunch"}
    )
    assert paused.status_code == 200, paused.json()
    client.resume(run_id, reason="back")

    controls = _controls(api, run_id, bearer(Role.VIEWER))
    seen = [(e["kind"], e["data"].get("by"), e["data"].get("reason")) for e in controls]
    assert seen == [
        ("pause_requested", "token:operator-token", "lunch"),
        ("resume_requested", f"client:{os_login()}", "back"),
    ]
