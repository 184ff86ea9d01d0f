"""The packs routes as an operator uses them: list the registered packs, reload them from
the server's pack paths, and what a pack file owning a workflow means for the workflows
routes (replacing or deleting it is 409 naming the file).

The app here is the conftest's, with a pack of the test's own (``shop``, in a temporary
folder) on its ``pack_paths``, as ``TREADLE_PACK_PATHS`` would give it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from treadle.api.app import create_app
from treadle.common.access import AuditOutcome, Role
from treadle.common.settings import Settings
from treadle.scheduler.store import Store

ErrorShape = Callable[..., dict[str, Any]]
Bearer = Callable[[Role], dict[str, str]]

ORDER = """\
ref: shop.order
parameters:
  amount: {type: number, required: true}
tasks:
  - name: charge
    action: shop.charge
    input: {amount: "{{ parameters.amount }}"}
"""

CHARGE = """\
name: charge
runner_type: python
entry_point: charge.py:charge
parameters:
  amount: {type: number, required: true}
"""


def add_refund(folder: Path) -> None:
    write(folder, "actions/refund.yaml", CHARGE.replace("charge", "refund"))
    write(folder, "actions/refund.py", "def refund(amount):\n    return {'refunded': amount}\n")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """The ``shop`` pack: an action and a workflow calling it."""
    folder = tmp_path / "packs" / "shop"
    write(folder, "pack.yaml", 'ref: shop\nversion: "1.0"\n')
    write(folder, "actions/charge.yaml", CHARGE)
    write(folder, "actions/charge.py", "def charge(amount):\n    return {'charged': amount}\n")
    write(folder, "workflows/order.yaml", ORDER)
    return folder


@pytest.fixture
def api(database_url: str, store: Store, clock: Any, shop: Path) -> Iterator[TestClient]:
    """The conftest's app, with the shop pack on its pack paths."""
    settings = Settings(database_url=database_url, pack_paths=[str(shop.parent)])
    with TestClient(create_app(settings, store=store, clock=clock)) as test_client:
        yield test_client


@pytest.fixture
def reload(api: TestClient, bearer: Bearer) -> Callable[..., Any]:
    """POST /packs/reload as an admin; its JSON, the status asserted."""

    def post(expect: int = 200) -> Any:
        response = api.post("/api/v1/packs/reload", headers=bearer(Role.ADMIN))
        assert response.status_code == expect, response.json()
        return response.json()

    return post


def packs_listed(api: TestClient, bearer: Bearer, **params: Any) -> Any:
    response = api.get("/api/v1/packs", headers=bearer(Role.VIEWER), params=params)
    assert response.status_code == 200, response.json()
    return response.json()


def test_a_reload_registers_the_packs_and_publishes_their_workflows(
    api: TestClient, bearer: Bearer, reload: Callable[..., Any], shop: Path, store: Store
) -> None:
    assert packs_listed(api, bearer) == {"items": [], "next_cursor": None}

    report = reload()
    assert report["paths"][1:] == [str(shop.parent)]
    assert report["paths"][0].endswith("packs")  # the shipped packs come first
    assert report["packs"] == {
        "added": ["core", "examples", "shop"],
        "updated": [],
        "unchanged": [],
        "not_found": [],
    }
    assert "shop.charge" in report["actions"]["added"]
    assert "shop.order" not in report["actions"]["added"]  # a workflow, reported as one
    assert {"ref": "shop.order", "version": 1, "new": True} in report["workflows"]
    assert report["warnings"] == []

    listed = packs_listed(api, bearer)
    assert [pack["name"] for pack in listed["items"]] == ["core", "examples", "shop"]
    shop_pack = listed["items"][2]
    assert shop_pack["version"] == "1.0"
    assert shop_pack["path"] == str(shop)
    assert (shop_pack["workflows"], shop_pack["actions"]) == (["shop.order"], ["shop.charge"])
    assert shop_pack["registered_at"] == "2026-03-02T09:00:00Z"
    first = packs_listed(api, bearer, limit=2)
    assert [pack["name"] for pack in first["items"]] == ["core", "examples"]
    rest = packs_listed(api, bearer, cursor=first["next_cursor"])
    assert ([pack["name"] for pack in rest["items"]], rest["next_cursor"]) == (["shop"], None)

    workflow = api.get("/api/v1/workflows/shop.order", headers=bearer(Role.VIEWER)).json()
    assert (workflow["version"], workflow["author"]) == (1, "token:admin-token")
    assert workflow["source"] == {"kind": "pack", "pack": "shop", "path": str(shop)}
    started = api.post(
        "/api/v1/workflows/shop.order/execute",
        json={"parameters": {"amount": 12}},
        headers=bearer(Role.OPERATOR),
    )
    assert started.status_code == 201, started.json()

    with store.unit_of_work() as uow:
        [entry] = [
            e for e in uow.list_audit(workspace=None, action=None) if e.action == "pack.reload"
        ]
    assert (entry.outcome, entry.actor, entry.target) == (
        AuditOutcome.OK,
        "token:admin-token",
        None,
    )
    assert entry.details is not None
    assert "shop.order v1" in entry.details["published"]


def test_a_second_reload_reports_what_changed_on_disk(
    reload: Callable[..., Any], shop: Path
) -> None:
    reload()
    unchanged = reload()
    assert unchanged["packs"]["unchanged"] == ["core", "examples", "shop"]
    assert [w for w in unchanged["workflows"] if w["new"]] == []
    assert unchanged["actions"] == {"added": [], "removed": [], "changed": []}

    write(shop, "pack.yaml", 'ref: shop\nversion: "1.1"\n')
    write(shop, "actions/charge.yaml", CHARGE + "queue: payments\n")
    add_refund(shop)
    write(shop, "workflows/order.yaml", ORDER.replace("name: charge", "name: pay"))
    changed = reload()
    assert changed["packs"]["updated"] == ["shop"]
    assert changed["actions"] == {
        "added": ["shop.refund"],
        "removed": [],
        "changed": ["shop.charge"],
    }
    assert [w for w in changed["workflows"] if w["new"]] == [
        {"ref": "shop.order", "version": 2, "new": True}
    ]

    (shop / "actions" / "refund.yaml").unlink()
    assert reload()["actions"]["removed"] == ["shop.refund"]


def test_a_reload_with_a_broken_pack_file_changes_nothing(
    api: TestClient,
    bearer: Bearer,
    reload: Callable[..., Any],
    shop: Path,
    store: Store,
    error_shape: ErrorShape,
) -> None:
    reload()
    write(shop, "workflows/order.yaml", ORDER.replace("action: shop.charge", "acton: shop.charge"))
    add_refund(shop)
    refused = reload(expect=422)
    error = error_shape(refused, "invalid_definition", "order.yaml:6:5")
    assert {(d["file"], d["line"], d["column"]) for d in error["details"]} >= {
        (str(shop / "workflows" / "order.yaml"), 6, 5)
    }
    listed = packs_listed(api, bearer)["items"]
    assert listed[2]["actions"] == ["shop.charge"]  # shop.refund was not registered
    versions = api.get("/api/v1/workflows/shop.order/versions", headers=bearer(Role.VIEWER))
    assert [v["version"] for v in versions.json()["versions"]] == [1]
    with store.unit_of_work() as uow:
        reloads = [
            e for e in uow.list_audit(workspace=None, action=None) if e.action == "pack.reload"
        ]
    assert sorted(e.outcome for e in reloads) == [AuditOutcome.FAILED, AuditOutcome.OK]


def test_only_an_admin_reloads(api: TestClient, bearer: Bearer, error_shape: ErrorShape) -> None:
    for role in (Role.VIEWER, Role.OPERATOR):
        refused = api.post("/api/v1/packs/reload", headers=bearer(role))
        assert refused.status_code == 403
        error_shape(refused.json(), "forbidden", role.value, "admin")
    assert packs_listed(api, bearer)["items"] == []


def test_a_workflow_of_a_pack_file_is_changed_through_its_file_only(
    api: TestClient,
    bearer: Bearer,
    reload: Callable[..., Any],
    shop: Path,
    error_shape: ErrorShape,
) -> None:
    admin = {**bearer(Role.ADMIN), "Content-Type": "application/yaml"}
    replacement = ORDER.replace("name: charge", "name: steal")
    file = str(shop / "workflows" / "order.yaml")

    # before any reload: the server's own pack paths say so
    replaced = api.post("/api/v1/workflows", content=replacement, headers=admin)
    assert replaced.status_code == 409
    error_shape(replaced.json(), "conflict", file, "pack 'shop'", "change the pack file")
    put = api.put("/api/v1/workflows/shop.order", content=replacement, headers=admin)
    assert put.status_code == 409
    in_pack = api.post("/api/v1/packs/shop/workflows", content=replacement, headers=admin)
    assert in_pack.status_code == 409

    reload()
    deleted = api.delete("/api/v1/workflows/shop.order", headers=bearer(Role.ADMIN))
    assert deleted.status_code == 409
    error_shape(deleted.json(), "conflict", file)
    shown = api.get("/api/v1/workflows/shop.order", headers=bearer(Role.VIEWER)).json()
    assert shown["definition"]["tasks"][0]["name"] == "charge"

    # a pack the scheduler registered from a folder this server does not have
    (shop / "workflows" / "order.yaml").unlink()
    elsewhere = api.post("/api/v1/workflows", content=replacement, headers=admin)
    assert elsewhere.status_code == 409
    error_shape(elsewhere.json(), "conflict", f"pack 'shop' at {shop}", "registered")

    # a new workflow in the pack's namespace that no file defines lives in the database
    extra = ORDER.replace("shop.order", "shop.extra")
    created = api.post("/api/v1/workflows", content=extra, headers=admin)
    assert created.status_code == 201, created.json()
    assert created.json()["source"]["kind"] == "database"
