"""Managing webhooks: admins only, secrets shown once and stored encrypted, names unique
across workspaces, and webhooks a pack declares (their secret in the keystore).

The pack of these tests (``hooks``, in a temporary folder) is on the app's pack paths, as
``TREADLE_PACK_PATHS`` would give it, and is registered by ``POST /api/v1/packs/reload``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from treadle.api.app import create_app
from treadle.client import Client
from treadle.common.access import DEFAULT_WORKSPACE, Principal, Role
from treadle.common.settings import Settings
from treadle.common.webhooks import signed_headers
from treadle.scheduler.service.access import issue
from treadle.scheduler.store import Store
from treadle.scheduler.store.models import runs, webhooks

from .conftest import FakeClock

ErrorShape = Callable[..., dict[str, Any]]
Bearer = Callable[[Role], dict[str, str]]

URL = "/api/v1/webhooks"

PACK = """\
ref: hooks
version: "1.0"
webhooks:
  - name: forge
    event_type: order.placed
    keystore_secret: forge.webhook_secret
"""


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    folder = tmp_path / "packs" / "hooks"
    folder.mkdir(parents=True)
    (folder / "pack.yaml").write_text(PACK)
    return folder


@pytest.fixture
def api(database_url: str, store: Store, clock: FakeClock, pack: Path) -> Iterator[TestClient]:
    """The conftest's app, with the ``hooks`` pack on its pack paths."""
    settings = Settings(database_url=database_url, pack_paths=[str(pack.parent)])
    with TestClient(create_app(settings, store=store, clock=clock)) as test_client:
        yield test_client


def deliver(api: TestClient, clock: FakeClock, name: str, secret: str, body: bytes) -> Any:
    headers = signed_headers(secret, int(clock().timestamp()), body)
    return api.post(f"{URL}/{name}", content=body, headers=headers)


def stored_rows(store: Store) -> list[Any]:
    with store.unit_of_work() as uow:
        return list(uow.connection.execute(select(webhooks).order_by(webhooks.c.name)).mappings())


def test_a_generated_secret_is_shown_once_and_stored_encrypted(
    api: TestClient, bearer: Bearer, client: Client, clock: FakeClock, store: Store
) -> None:
    body = {"name": "ci", "event_type": "order.placed"}
    created = api.post(URL, headers=bearer(Role.ADMIN), json=body)

    assert created.status_code == 201, created.json()
    shown = created.json()
    secret = shown.pop("secret")
    assert secret.startswith("whsec_")
    assert len(secret) > 40
    assert shown == {
        "name": "ci",
        "workspace": "default",
        "event_type": "order.placed",
        "source": "api",
        "pack": None,
        "keystore_secret": None,
        "created_at": "2026-03-02T09:00:00Z",
        "created_by": "token:admin-token",
        "url": "/api/v1/webhooks/ci",
    }
    [row] = stored_rows(store)
    assert secret not in str(dict(row))
    assert store.keys.keyring().decrypt(row["ciphertext"]) == secret
    listed = api.get(URL, headers=bearer(Role.ADMIN))
    assert listed.status_code == 200
    assert listed.json() == {"items": [shown]}
    assert secret not in listed.text
    assert row["ciphertext"] not in listed.text
    assert deliver(api, clock, "ci", secret, b"{}").status_code == 200
    with store.unit_of_work() as uow:
        [entry] = uow.list_audit(workspace=None, action="webhook.create")
    assert entry.details == {"event_type": "order.placed", "generated_secret": True}
    assert secret not in str(entry)


def test_a_given_secret_is_never_returned(
    api: TestClient, bearer: Bearer, clock: FakeClock, store: Store
) -> None:
    body = {"name": "ci", "event_type": "order.placed", "secret": "my-own-secret-0123"}
    created = api.post(URL, headers=bearer(Role.ADMIN), json=body)
    assert created.status_code == 201
    assert created.json()["secret"] is None
    assert "my-own-secret-0123" not in str(stored_rows(store))
    assert deliver(api, clock, "ci", "my-own-secret-0123", b"[]").status_code == 200


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_only_admins_manage_webhooks(
    api: TestClient, bearer: Bearer, store: Store, error_shape: ErrorShape, role: Role
) -> None:
    body = {"name": "ci", "event_type": "order.placed"}
    refused = api.post(URL, headers=bearer(role), json=body)
    assert refused.status_code == 403
    error_shape(refused.json(), "forbidden", "admin")
    assert stored_rows(store) == []
    assert api.get(URL, headers=bearer(role)).status_code == 403
    assert api.post(URL, headers=bearer(Role.ADMIN), json=body).status_code == 201
    assert api.delete(f"{URL}/ci", headers=bearer(role)).status_code == 403
    assert [row["name"] for row in stored_rows(store)] == ["ci"]
    assert api.get(URL).status_code == 401  # no token


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"name": "a/b", "event_type": "x"}, "body field 'name'"),
        ({"name": "-a", "event_type": "x"}, "body field 'name'"),
        ({"name": "a", "event_type": " "}, "body field 'event_type'"),
        ({"name": "a"}, "body field 'event_type'"),
        ({"name": "a", "event_type": "x", "secret": "short"}, "body field 'secret'"),
        ({"name": "a", "event_type": "x", "url": "https://x"}, "body field 'url'"),
    ],
)
def test_a_bad_webhook_is_422_naming_the_field(
    api: TestClient, bearer: Bearer, error_shape: ErrorShape, body: Any, where: str
) -> None:
    response = api.post(URL, headers=bearer(Role.ADMIN), json=body)
    assert response.status_code == 422
    error_shape(response.json(), "validation_error", where)


def test_names_are_unique_across_workspaces_and_each_sees_its_own(
    api: TestClient,
    bearer: Bearer,
    client: Client,
    store: Store,
    clock: FakeClock,
    error_shape: ErrorShape,
) -> None:
    creator = Principal("test-setup", Role.ADMIN, DEFAULT_WORKSPACE)
    with store.unit_of_work() as uow:
        other = issue(
            uow,
            name="team-a-admin",
            role=Role.ADMIN,
            workspace="team-a",
            expires_at=None,
            created_by=creator,
            now=clock(),
        ).plaintext
    team_a = {"Authorization": f"Bearer {other}"}
    made = api.post(URL, headers=team_a, json={"name": "ci", "event_type": "order.placed"})
    assert made.status_code == 201
    assert made.json()["workspace"] == "team-a"

    taken = api.post(URL, headers=bearer(Role.ADMIN), json={"name": "ci", "event_type": "x"})
    assert taken.status_code == 409
    error_shape(taken.json(), "conflict", "already a webhook named 'ci'")
    assert api.get(URL, headers=bearer(Role.ADMIN)).json() == {"items": []}
    assert [item["name"] for item in api.get(URL, headers=team_a).json()["items"]] == ["ci"]
    gone = api.delete(f"{URL}/ci", headers=bearer(Role.ADMIN))
    assert gone.status_code == 404
    error_shape(gone.json(), "not_found", "webhook 'ci'")
    assert [row["workspace"] for row in stored_rows(store)] == ["team-a"]

    delivered = deliver(api, clock, "ci", made.json()["secret"], b'{"n": 1}')
    assert delivered.status_code == 200, delivered.json()
    [started] = delivered.json()["started_runs"]
    with store.unit_of_work() as uow:
        stmt = select(runs.c.workspace).where(runs.c.id == started)
        assert uow.connection.execute(stmt).scalar_one() == "team-a"
    assert api.delete(f"{URL}/ci", headers=team_a).status_code == 204
    assert stored_rows(store) == []


def test_a_pack_declares_a_webhook_whose_secret_is_in_the_keystore(
    api: TestClient,
    bearer: Bearer,
    client: Client,
    clock: FakeClock,
    pack: Path,
    store: Store,
    error_shape: ErrorShape,
) -> None:
    admin = bearer(Role.ADMIN)
    assert api.post("/api/v1/packs/reload", headers=admin).status_code == 200
    [listed] = api.get(URL, headers=admin).json()["items"]
    assert {k: listed[k] for k in ("name", "source", "pack", "keystore_secret", "workspace")} == {
        "name": "forge",
        "source": "pack",
        "pack": "hooks",
        "keystore_secret": "forge.webhook_secret",
        "workspace": "default",
    }
    # no secret in the keystore yet: every delivery is refused
    assert deliver(api, clock, "forge", "pack-secret-0123456", b"{}").status_code == 401
    put = api.put(
        "/api/v1/kv/forge.webhook_secret",
        headers=admin,
        json={"value": "pack-secret-0123456", "secret": True},
    )
    assert put.status_code == 200
    delivered = deliver(api, clock, "forge", "pack-secret-0123456", b'{"n": 2}')
    assert delivered.status_code == 200, delivered.json()
    assert len(delivered.json()["started_runs"]) == 1

    refused = api.delete(f"{URL}/forge", headers=admin)
    assert refused.status_code == 409
    error_shape(refused.json(), "conflict", "pack 'hooks'", "pack.yaml")
    taken = api.post(URL, headers=admin, json={"name": "forge", "event_type": "x"})
    assert taken.status_code == 409
    error_shape(taken.json(), "conflict", "declared by pack 'hooks'")

    (pack / "pack.yaml").write_text(PACK.split("webhooks:", maxsplit=1)[0])  # the webhook removed
    assert api.post("/api/v1/packs/reload", headers=admin).status_code == 200
    assert api.get(URL, headers=admin).json() == {"items": []}


def test_a_pack_webhook_whose_name_is_taken_is_a_reload_warning(
    api: TestClient, bearer: Bearer, pack: Path, store: Store
) -> None:
    admin = bearer(Role.ADMIN)
    made = api.post(URL, headers=admin, json={"name": "forge", "event_type": "mine"})
    assert made.status_code == 201
    reloaded = api.post("/api/v1/packs/reload", headers=admin)
    assert reloaded.status_code == 200
    [warning] = [w for w in reloaded.json()["warnings"] if "forge" in w["message"]]
    assert warning["file"] == str(pack / "pack.yaml")
    assert "made first" in warning["message"]
    [row] = stored_rows(store)
    assert (row["event_type"], row["pack"]) == ("mine", None)


def test_a_pack_file_holding_a_secret_is_refused(
    api: TestClient, bearer: Bearer, pack: Path, store: Store, error_shape: ErrorShape
) -> None:
    text = PACK.replace("keystore_secret: forge.webhook_secret", "secret: hunter2-in-a-file")
    (pack / "pack.yaml").write_text(textwrap.dedent(text))
    reloaded = api.post("/api/v1/packs/reload", headers=bearer(Role.ADMIN))
    assert reloaded.status_code == 422
    error = error_shape(reloaded.json(), "invalid_definition")
    messages = " ".join(problem["message"] for problem in error["details"])
    assert "never holds a webhook's secret" in messages
    assert stored_rows(store) == []
