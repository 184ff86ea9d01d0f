"""``/api/v1/schedules``: admins manage their workspace's schedules; one error shape, 4xx
never 500; every change audited; fires listed with their outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from treadle.client import Client
from treadle.common.access import Role

URL = "/api/v1/schedules"
Bearer = Callable[[Role], dict[str, str]]
ErrorShape = Callable[..., dict[str, Any]]


def test_admins_create_list_show_pause_resume_and_delete(
    api: TestClient, bearer: Bearer, client: Client, error_shape: ErrorShape
) -> None:
    admin = bearer(Role.ADMIN)
    body = {
        "name": "nightly",
        "workflow": "api.single",
        "cron": "0 17 * * 1-5",
        "timezone": "America/New_York",
        "overlap": "buffer_all",
        "catchup_window_seconds": 3600,
        "missed": "none",
        "jitter_seconds": 10,
    }
    created = api.post(URL, json=body, headers=admin)
    assert created.status_code == 201, created.json()
    shown = created.json()
    assert (shown["name"], shown["workspace"], shown["overlap"], shown["missed"]) == (
        "nightly", "default", "buffer_all", "none"
    )  # fmt: skip
    assert shown["next_fire"] is not None

    assert [s["name"] for s in api.get(URL, headers=admin).json()["items"]] == ["nightly"]
    one = api.get(f"{URL}/nightly", headers=admin).json()
    assert one["fires"] == {}

    paused = api.post(f"{URL}/nightly/pause", json={"reason": "freeze"}, headers=admin).json()
    assert (paused["enabled"], paused["paused_reason"]) == (False, "freeze")
    assert api.post(f"{URL}/nightly/resume", headers=admin).json()["enabled"] is True

    taken = api.post(URL, json=body, headers=admin)
    assert taken.status_code == 409
    error_shape(taken.json(), "conflict", "nightly")

    assert api.delete(f"{URL}/nightly", headers=admin).status_code == 204
    gone = api.get(f"{URL}/nightly", headers=admin)
    assert gone.status_code == 404
    error_shape(gone.json(), "not_found", "no schedule named 'nightly'")

    audit = api.get("/api/v1/audit", headers=admin).json()["items"]
    actions = {entry["action"] for entry in audit}
    assert {"schedule.create", "schedule.pause", "schedule.resume", "schedule.delete"} <= actions


def test_bad_schedules_are_422_with_every_problem(
    api: TestClient, bearer: Bearer, error_shape: ErrorShape
) -> None:
    admin = bearer(Role.ADMIN)
    bad = api.post(
        URL,
        json={"name": "x", "workflow": "api.single", "cron": "61 * * * *", "timezone": "Nope/No"},
        headers=admin,
    )
    assert bad.status_code == 422
    error = error_shape(bad.json(), "invalid_parameters", "61 is outside 0-59", "Nope/No")
    assert error["details"]
    neither = api.post(URL, json={"name": "y", "workflow": "api.single"}, headers=admin)
    assert neither.status_code == 422
    error_shape(neither.json(), "invalid_parameters", "exactly one of 'cron' and 'interval'")
    policy = api.post(
        URL,
        json={"name": "z", "workflow": "w", "interval_seconds": 60, "overlap": "sometimes"},
        headers=admin,
    )
    assert policy.status_code == 422
    backwards = api.post(
        URL,
        json={"name": "b", "workflow": "api.single", "interval_seconds": 5},
        headers=admin,
    )
    assert backwards.status_code == 201
    wrong = api.post(
        f"{URL}/b/backfill",
        json={"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        headers=admin,
    )
    assert wrong.status_code == 422
    too_many = api.post(
        f"{URL}/b/backfill",
        json={"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
        headers=admin,
    )
    assert too_many.status_code == 422
    error_shape(too_many.json(), "limit_exceeded", "at most 1000")


def test_only_admins_and_only_their_workspace(
    api: TestClient, bearer: Bearer, make_token: Callable[..., str]
) -> None:
    body = {"name": "n", "workflow": "api.single", "interval_seconds": 60}
    for role in (Role.VIEWER, Role.OPERATOR):
        assert api.post(URL, json=body, headers=bearer(role)).status_code == 403
        assert api.get(URL, headers=bearer(role)).status_code == 403
    assert api.post(URL, json=body, headers=bearer(Role.ADMIN)).status_code == 201
    assert api.get(URL).status_code == 401


def test_trigger_now_starts_a_run_and_the_fires_say_so(
    api: TestClient, bearer: Bearer, client: Client
) -> None:
    admin = bearer(Role.ADMIN)
    body = {"name": "now", "workflow": "api.single", "interval_seconds": 3600}
    assert api.post(URL, json=body, headers=admin).status_code == 201
    fired = api.post(f"{URL}/now/trigger", headers=admin)
    assert fired.status_code == 200, fired.json()
    fire = fired.json()
    assert (fire["kind"], fire["status"]) == ("manual", "started")
    run = client.get(fire["run_id"])
    assert run.workflow == "api.single"
    again = api.post(f"{URL}/now/trigger", headers=admin).json()  # overlap skip: still going?
    assert again["status"] in ("started", "skipped_overlap")
    listed = api.get(f"{URL}/now/fires", headers=admin).json()["items"]
    assert [f["kind"] for f in listed] == ["manual", "manual"]
    filled = api.post(
        f"{URL}/now/backfill",
        json={"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T02:00:00Z"},
        headers=admin,
    )
    assert filled.status_code == 200, filled.json()
    assert [f["status"] for f in filled.json()["items"]] == ["started"] * 3
    missing = api.post(f"{URL}/nothing/trigger", headers=admin)
    assert missing.status_code == 404
