"""``/api/v1/rules``: viewers look at their workspace's rules and matches, operators enable
and disable them (audited); one error shape, 4xx never 500."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from tests.rule_seed import seed_rules

from treadle.client import Client
from treadle.common.access import Role
from treadle.scheduler.service.access import issue
from treadle.scheduler.store import Store

from .conftest import FakeClock

URL = "/api/v1/rules"
Bearer = Callable[[Role], dict[str, str]]
ErrorShape = Callable[..., dict[str, Any]]


def test_viewers_read_operators_switch_and_matches_say_what_happened(
    api: TestClient,
    bearer: Bearer,
    client: Client,
    store: Store,
    clock: FakeClock,
    tmp_path: Path,
    error_shape: ErrorShape,
) -> None:
    seed_rules(store, tmp_path, clock(), action="api.single")
    viewer, operator = bearer(Role.VIEWER), bearer(Role.OPERATOR)
    listed = api.get(URL, headers=viewer)
    assert listed.status_code == 200, listed.json()
    assert [r["ref"] for r in listed.json()["items"]] == ["seed.nightly", "seed.on_order"]
    one = api.get(f"{URL}/seed.nightly", headers=viewer).json()
    assert (one["schedule"], one["matches"], one["enabled"]) == ("rule:seed.nightly", {}, True)
    assert one["next_fire"] is not None

    assert api.post(f"{URL}/seed.nightly/disable", headers=viewer).status_code == 403
    off = api.post(f"{URL}/seed.nightly/disable", headers=operator)
    assert off.status_code == 200, off.json()
    assert (off.json()["enabled"], off.json()["next_fire"]) == (False, None)
    on = api.post(f"{URL}/nightly/enable", headers=operator).json()  # by name
    assert on["enabled"] is True

    for event_id, total in (("ev-1", 500), ("ev-2", 1)):
        body = {"type": "shop.order.created", "data": {"total": total}, "id": event_id}
        assert api.post("/api/v1/events", json=body, headers=operator).status_code == 200
    matches = api.get(f"{URL}/seed.on_order/matches", headers=viewer).json()["items"]
    by_event = {m["event_id"]: m for m in matches}
    assert by_event["ev-2"]["outcome"] == "criteria_false"
    assert by_event["ev-1"]["outcome"] == "started", by_event["ev-1"]
    assert client.get(by_event["ev-1"]["run_id"]).workflow == "api.single"
    counts = api.get(f"{URL}/seed.on_order", headers=viewer).json()["matches"]
    assert counts == {"started": 1, "criteria_false": 1}

    missing = api.get(f"{URL}/seed.nope", headers=viewer)
    assert missing.status_code == 404
    error_shape(missing.json(), "not_found", "no rule named 'seed.nope'")
    assert api.post(f"{URL}/seed.nope/enable", headers=operator).status_code == 404
    assert api.get(URL).status_code == 401
    audit = api.get("/api/v1/audit", headers=bearer(Role.ADMIN)).json()["items"]
    actions = {entry["action"] for entry in audit}
    assert {"rule.enable", "rule.disable"} <= actions


def test_another_workspace_sees_none_of_them(
    api: TestClient, store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    seed_rules(store, tmp_path, clock(), action="api.single")
    from treadle.common.access import Principal

    with store.unit_of_work() as uow:
        issued = issue(
            uow, name="other", role=Role.ADMIN, workspace="other", expires_at=None,
            created_by=Principal("test-setup", Role.ADMIN, "default"), now=clock(),
        )  # fmt: skip
    other = {"Authorization": f"Bearer {issued.plaintext}"}
    assert api.get(URL, headers=other).json()["items"] == []
    assert api.get(f"{URL}/seed.nightly", headers=other).status_code == 404
    assert api.post(f"{URL}/seed.nightly/disable", headers=other).status_code == 404
