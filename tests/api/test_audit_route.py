"""``GET /api/v1/audit``: admins read their workspace's audit log a page at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from treadle.common.access import Principal, Role
from treadle.scheduler.service.access import issue
from treadle.scheduler.store import Store

from .conftest import FakeClock

ErrorShape = Callable[..., dict[str, Any]]
Bearer = Callable[[Role], dict[str, str]]


def test_an_admin_pages_through_the_changes_of_its_workspace(
    api: TestClient, bearer: Bearer, store: Store, clock: FakeClock
) -> None:
    for key in ("a", "b", "c"):
        assert api.put(
            f"/api/v1/kv/{key}", json={"value": 1}, headers=bearer(Role.ADMIN)
        ).is_success
    with store.unit_of_work() as uow:  # another workspace's admin changes something
        other = issue(
            uow,
            name="other",
            role=Role.ADMIN,
            workspace="team-a",
            expires_at=None,
            created_by=Principal("setup", Role.ADMIN, "team-a"),
            now=clock(),
        )
    api.put(
        "/api/v1/kv/z", json={"value": 1}, headers={"Authorization": f"Bearer {other.plaintext}"}
    )

    first = api.get("/api/v1/audit?action=kv.set&limit=2", headers=bearer(Role.ADMIN)).json()
    assert [e["target"] for e in first["items"]] == ["c", "b"]
    assert {e["actor"] for e in first["items"]} == {"token:admin-token"}
    assert first["items"][0]["outcome"] == "ok"
    second = api.get(
        f"/api/v1/audit?action=kv.set&limit=2&cursor={first['next_cursor']}",
        headers=bearer(Role.ADMIN),
    ).json()
    assert [e["target"] for e in second["items"]] == ["a"]
    assert second["next_cursor"] is None
    theirs = api.get(
        "/api/v1/audit?action=kv.set", headers={"Authorization": f"Bearer {other.plaintext}"}
    ).json()
    assert [(e["target"], e["workspace"]) for e in theirs["items"]] == [("z", "team-a")]


def test_only_admins_read_it_and_a_bad_cursor_is_422(
    api: TestClient, bearer: Bearer, error_shape: ErrorShape
) -> None:
    assert api.get("/api/v1/audit", headers=bearer(Role.OPERATOR)).status_code == 403
    assert api.get("/api/v1/audit").status_code == 401
    bad = api.get("/api/v1/audit?cursor=abc", headers=bearer(Role.ADMIN))
    assert bad.status_code == 422
    error_shape(bad.json(), "validation_error")
