"""The keystore routes: admins set and delete, anyone reads, and a secret is never read back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from treadle.api.models.kv import KeyEntry
from treadle.common.access import AuditOutcome, Role
from treadle.scheduler.store import Store

ErrorShape = Callable[..., dict[str, Any]]
Bearer = Callable[[Role], dict[str, str]]

URL = "/api/v1/kv"
SECRET = "sk-live-0123456789abcdef"


def audit(store: Store, action: str) -> list[Any]:
    with store.unit_of_work() as uow:
        return uow.list_audit(workspace=None, action=action)


def test_an_admin_sets_a_value_everyone_reads(
    api: TestClient, bearer: Bearer, store: Store
) -> None:
    put = api.put(f"{URL}/region", headers=bearer(Role.ADMIN), json={"value": {"name": "eu-1"}})

    assert put.status_code == 200, put.json()
    entry = KeyEntry.model_validate(put.json())
    assert (entry.key, entry.value, entry.secret) == ("region", {"name": "eu-1"}, False)
    assert put.json()["updated_at"] == "2026-03-02T09:00:00Z"
    viewer = bearer(Role.VIEWER)
    assert api.get(f"{URL}/region", headers=viewer).json() == put.json()
    assert api.get(URL, headers=viewer).json() == {"items": [put.json()]}
    with store.unit_of_work() as uow:
        assert uow.kv_get("region") == {"name": "eu-1"}
    [entry_audit] = audit(store, "kv.set")
    assert (entry_audit.target, entry_audit.outcome) == ("region", AuditOutcome.OK)
    assert entry_audit.details == {"secret": False}
    assert entry_audit.actor == "token:admin-token"


def test_a_secret_value_is_never_read_back(api: TestClient, bearer: Bearer, store: Store) -> None:
    admin = bearer(Role.ADMIN)
    bodies: list[str] = []

    put = api.put(f"{URL}/api_key", headers=admin, json={"value": SECRET, "secret": True})
    bodies.append(put.text)
    assert put.status_code == 200, put.json()
    assert put.json()["value"] is None
    assert put.json()["secret"] is True
    for role in Role:
        one = api.get(f"{URL}/api_key", headers=bearer(role))
        listed = api.get(URL, headers=bearer(role))
        bodies.extend([one.text, listed.text])
        assert one.json() == put.json()
        assert listed.json()["items"] == [put.json()]
    again = api.put(f"{URL}/api_key", headers=admin, json={"value": SECRET + "-2", "secret": True})
    bodies.append(again.text)

    assert all(SECRET not in body for body in bodies)
    for entry in audit(store, "kv.set"):
        assert SECRET not in str(entry.details)
        assert entry.details == {"secret": True}


def test_a_key_is_deleted_once(
    api: TestClient, bearer: Bearer, store: Store, error_shape: ErrorShape
) -> None:
    admin = bearer(Role.ADMIN)
    api.put(f"{URL}/region", headers=admin, json={"value": "eu-1"})

    deleted = api.delete(f"{URL}/region", headers=admin)
    assert deleted.status_code == 204
    assert deleted.content == b""
    missing = api.get(f"{URL}/region", headers=bearer(Role.VIEWER))
    assert missing.status_code == 404
    error_shape(missing.json(), "not_found", "region")
    again = api.delete(f"{URL}/region", headers=admin)
    assert again.status_code == 404
    outcomes = [(e.target, e.outcome) for e in audit(store, "kv.delete")]
    assert outcomes == [("region", AuditOutcome.FAILED), ("region", AuditOutcome.OK)]


def test_keys_may_hold_slashes(api: TestClient, bearer: Bearer) -> None:
    put = api.put(f"{URL}/team/a", headers=bearer(Role.ADMIN), json={"value": 1})
    assert put.json()["key"] == "team/a"
    assert api.get(f"{URL}/team/a", headers=bearer(Role.VIEWER)).json()["value"] == 1
    assert api.delete(f"{URL}/team/a", headers=bearer(Role.ADMIN)).status_code == 204


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_only_admins_change_the_keystore(
    api: TestClient, bearer: Bearer, role: Role, store: Store, error_shape: ErrorShape
) -> None:
    api.put(f"{URL}/region", headers=bearer(Role.ADMIN), json={"value": "eu-1"})

    put = api.put(f"{URL}/region", headers=bearer(role), json={"value": "us-1"})
    delete = api.delete(f"{URL}/region", headers=bearer(role))

    assert put.status_code == delete.status_code == 403
    error_shape(put.json(), "forbidden", "admin")
    assert api.get(f"{URL}/region", headers=bearer(role)).json()["value"] == "eu-1"
    assert api.get(URL).status_code == 401
    assert api.put(f"{URL}/region", json={"value": 1}).status_code == 401


def test_an_unknown_key_is_404(api: TestClient, bearer: Bearer, error_shape: ErrorShape) -> None:
    response = api.get(f"{URL}/nope", headers=bearer(Role.VIEWER))
    assert response.status_code == 404
    error_shape(response.json(), "not_found", "keystore has no entry 'nope'")


@pytest.mark.parametrize(
    ("key", "body", "where"),
    [
        ("_private", {"value": 1}, "path parameter 'key'"),
        ("region", {}, "body field 'value'"),
        ("region", {"value": 1, "secret": "maybe"}, "body field 'secret'"),
        ("region", {"value": 1, "ttl": 60}, "body field 'ttl'"),
        ("region", [1], "the body"),
    ],
)
def test_a_bad_write_is_422_naming_the_field(
    api: TestClient,
    bearer: Bearer,
    store: Store,
    key: str,
    body: Any,
    where: str,
    error_shape: ErrorShape,
) -> None:
    response = api.put(f"{URL}/{key}", headers=bearer(Role.ADMIN), json=body)
    assert response.status_code == 422
    error_shape(response.json(), "validation_error", where)
    with store.unit_of_work() as uow:
        assert uow.kv_list() == []


def test_a_value_over_the_size_limit_is_refused(
    api: TestClient, bearer: Bearer, store: Store, error_shape: ErrorShape
) -> None:
    response = api.put(f"{URL}/big", headers=bearer(Role.ADMIN), json={"value": "x" * 1_100_000})
    assert response.status_code == 422
    error_shape(response.json(), "limit_exceeded", "max_payload_bytes")
    [entry] = audit(store, "kv.set")
    assert entry.outcome is AuditOutcome.FAILED
    with store.unit_of_work() as uow:
        assert uow.kv_list() == []
