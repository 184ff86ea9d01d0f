"""``/api/v1/emergency-stop``: admins stop their workspace (an admin of ``default``
everything) and let go; one error shape, 4xx never 500; every change audited, refusals
too. What schedulers then do with the runs: ``tests/store/test_emergency_stop.py``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from treadle.common.access import Principal, Role
from treadle.scheduler.service.access import issue
from treadle.scheduler.store import Store

from .conftest import FakeClock

URL = "/api/v1/emergency-stop"
Bearer = Callable[[Role], dict[str, str]]
ErrorShape = Callable[..., dict[str, Any]]


def _token(store: Store, clock: FakeClock, workspace: str, role: Role) -> dict[str, str]:
    creator = Principal("test-setup", Role.ADMIN, workspace)
    with store.unit_of_work() as uow:
        issued = issue(
            uow, name=f"{workspace}-{role.value}", role=role, workspace=workspace,
            expires_at=None, created_by=creator, now=clock(),
        )  # fmt: skip
    return {"Authorization": f"Bearer {issued.plaintext}"}


def test_an_admin_stops_everything_and_lifts_it_and_both_are_audited(
    api: TestClient, bearer: Bearer
) -> None:
    admin = bearer(Role.ADMIN)
    on = api.post(f"{URL}/on", json={"reason": "bad deploy", "scope": "global"}, headers=admin)
    assert on.status_code == 200, on.json()
    stop = on.json()
    assert (stop["scope"], stop["workspace"], stop["reason"], stop["new"]) == (
        "global", None, "bad deploy", True
    )  # fmt: skip
    assert (stop["set_by"], stop["terminate"], stop["source"]) == (
        "token:admin-token", False, "command"
    )  # fmt: skip
    kept = api.post(
        f"{URL}/on", json={"reason": "again", "scope": "global", "terminate": True}, headers=admin
    ).json()
    assert (kept["new"], kept["reason"], kept["terminate"]) == (False, "bad deploy", True)

    [holding] = api.get(URL, headers=admin).json()["items"]
    assert holding["scope"] == "global"

    off = api.post(f"{URL}/off", json={"scope": "global", "reason": "fixed"}, headers=admin)
    assert off.status_code == 200, off.json()
    assert (off.json()["lifted_by"], off.json()["lift_reason"]) == ("token:admin-token", "fixed")
    assert api.get(URL, headers=admin).json()["items"] == []

    audit = api.get("/api/v1/audit", headers=admin).json()["items"]
    stops = [(e["action"], e["target"], e["outcome"]) for e in reversed(audit)]
    assert [s for s in stops if s[0].startswith("emergency_stop")] == [
        ("emergency_stop.on", "global", "ok"),
        ("emergency_stop.on", "global", "ok"),
        ("emergency_stop.off", "global", "ok"),
    ]


def test_another_workspaces_admin_stops_its_own_workspace_only(
    api: TestClient, store: Store, clock: FakeClock, bearer: Bearer, error_shape: ErrorShape
) -> None:
    team = _token(store, clock, "team-a", Role.ADMIN)
    refused = api.post(f"{URL}/on", json={"reason": "x", "scope": "global"}, headers=team)
    assert refused.status_code == 403
    error_shape(refused.json(), "forbidden", "needs an admin of the 'default' workspace")

    mine = api.post(f"{URL}/on", json={"reason": "noisy"}, headers=team).json()
    assert (mine["scope"], mine["workspace"]) == ("workspace", "team-a")
    assert api.get(URL, headers=bearer(Role.ADMIN)).json()["items"] == []  # not default's
    api.post(f"{URL}/on", json={"reason": "all", "scope": "global"}, headers=bearer(Role.ADMIN))
    scopes = [s["scope"] for s in api.get(URL, headers=team).json()["items"]]
    assert scopes == ["workspace", "global"]

    audit = api.get("/api/v1/audit", headers=team).json()["items"]
    assert ("emergency_stop.on", "global", "refused") in [
        (e["action"], e["target"], e["outcome"]) for e in audit
    ]


def test_bad_requests_are_4xx_in_the_one_shape(
    api: TestClient, bearer: Bearer, error_shape: ErrorShape
) -> None:
    admin = bearer(Role.ADMIN)
    for role in (Role.VIEWER, Role.OPERATOR):
        denied = api.post(f"{URL}/on", json={"reason": "x"}, headers=bearer(role))
        assert denied.status_code == 403
        error_shape(denied.json(), "forbidden")
    assert api.get(URL).status_code == 401
    blank = api.post(f"{URL}/on", json={"reason": ""}, headers=admin)
    assert blank.status_code == 422
    spaces = api.post(f"{URL}/on", json={"reason": "   "}, headers=admin)
    assert spaces.status_code == 422
    error_shape(spaces.json(), "invalid_parameters", "a reason is needed")
    odd = api.post(f"{URL}/on", json={"reason": "x", "scope": "planet"}, headers=admin)
    assert odd.status_code == 422
    none = api.post(f"{URL}/off", json={}, headers=admin)
    assert none.status_code == 409
    error_shape(none.json(), "conflict", "no emergency stop holds workspace default")
