"""The workflows routes as a client program uses them: publish (YAML or JSON), list, read,
compare, validate, delete and execute workflows; the Attune paths; the workflows/v1 shapes.

Every test reads the answers a client sees, on the conftest's app over a real SQLite store.
A deleted workflow cannot be executed: 404 ``not_found`` saying it was deleted (the same
answer as reading it), while runs started before go on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from treadle.api.app import create_app
from treadle.client import Client
from treadle.clientlib.versions import unified_diff
from treadle.common.access import AuditOutcome, Role
from treadle.common.settings import Settings
from treadle.scheduler.store import Store

from .workflow_requests import GREET, Bearer, ErrorShape, audit_entries


def test_publishing_creates_a_version_and_only_a_change_makes_the_next(
    publish: Callable[..., Any], viewer: Callable[..., Any], store: Store
) -> None:
    created = publish(GREET)
    assert created.status_code == 201, created.json()
    assert created.headers["location"] == "/api/v1/workflows/shop.greet"
    body = created.json()
    assert (body["ref"], body["version"], body["new"]) == ("shop.greet", 1, True)
    assert (body["label"], body["pack"], body["tags"]) == ("Greet", "shop", ["people", "hello"])
    assert body["author"] == "token:admin-token"
    assert body["source"] == {"kind": "database", "pack": None, "path": None}
    assert [p["name"] for p in body["parameters"]] == ["name"]
    assert body["definition"]["tasks"][0]["input"] == {"message": "hi {{ parameters.name }}"}
    assert body["action_routes"]["core.echo"]["runner"] == "python"

    again = publish(GREET + "# only a comment\n")
    assert again.status_code == 200
    assert (again.json()["version"], again.json()["new"]) == (1, False)

    changed = publish(GREET.replace("hi {{", "hello {{"))
    assert changed.status_code == 201
    assert (changed.json()["version"], changed.json()["new"]) == (2, True)
    shown = viewer("/api/v1/workflows/shop.greet")
    assert shown["version"] == 2
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert viewer("/api/v1/workflows/shop.greet", version=1)["definition"]["tasks"][0]["input"] == {
        "message": "hi {{ parameters.name }}"
    }

    published = audit_entries(store, "workflow.")
    assert [(e.action, e.target, e.outcome) for e in published] == [
        ("workflow.publish", "shop.greet", AuditOutcome.OK)
    ] * 3
    assert [e.details for e in published] == [
        {"version": 1, "new": True},
        {"version": 1, "new": False},
        {"version": 2, "new": True},
    ]


def test_the_same_definition_as_json_is_the_same_version(
    publish: Callable[..., Any], client: Client
) -> None:
    import yaml

    assert publish(GREET).status_code == 201
    as_json = json.dumps(yaml.safe_load(GREET), indent=2)
    same = publish(as_json, content_type="application/json")
    assert same.status_code == 200, same.json()
    assert (same.json()["version"], same.json()["new"]) == (1, False)
    assert [v.version for v in client.versions("shop.greet")] == [1]


def test_workflows_published_over_http_survive_a_restart(
    publish: Callable[..., Any], database_url: str, bearer: Bearer, clock: Any
) -> None:
    assert publish(GREET).status_code == 201
    with Store.open(database_url) as reopened:
        app = create_app(Settings(database_url=database_url), store=reopened, clock=clock)
        with TestClient(app) as restarted:
            shown = restarted.get("/api/v1/workflows/shop.greet", headers=bearer(Role.VIEWER))
            assert shown.status_code == 200
            assert shown.json()["version"] == 1
            started = restarted.post(
                "/api/v1/workflows/shop.greet/execute",
                json={"parameters": {"name": "Ada"}},
                headers=bearer(Role.OPERATOR),
            )
            assert started.status_code == 201, started.json()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_only_an_admin_publishes_or_deletes(
    publish: Callable[..., Any],
    api: TestClient,
    bearer: Bearer,
    viewer: Callable[..., Any],
    error_shape: ErrorShape,
    role: Role,
) -> None:
    refused = publish(GREET, role=role)
    assert refused.status_code == 403
    error_shape(refused.json(), "forbidden", role.value, "admin")
    error_shape(viewer("/api/v1/workflows/shop.greet", expect=404), "not_found", "shop.greet")

    assert publish(GREET).status_code == 201
    deleting = api.delete("/api/v1/workflows/shop.greet", headers=bearer(role))
    assert deleting.status_code == 403
    error_shape(deleting.json(), "forbidden", "admin")
    assert viewer("/api/v1/workflows/shop.greet")["version"] == 1


def test_a_bad_definition_is_422_with_line_and_column_and_stores_nothing(
    publish: Callable[..., Any],
    viewer: Callable[..., Any],
    error_shape: ErrorShape,
    store: Store,
) -> None:
    typo = GREET.replace("    input: {message", "    inptu: {message")
    refused = publish(typo)
    assert refused.status_code == 422
    error = error_shape(refused.json(), "invalid_definition", "<body>:10:5", "'inptu'")
    assert error["details"] == [  # every problem at once, as `treadle validate` lists them
        {
            "file": "<body>",
            "line": 9,
            "column": 5,
            "message": "task 'say' does not give the required input 'message' of 'core.echo'",
        },
        {
            "file": "<body>",
            "line": 10,
            "column": 5,
            "message": "unknown field 'inptu' in task 'say' (did you mean 'input'?)",
        },
    ]

    unknown_task = publish(GREET.replace("do: done", "do: dnoe"))
    assert unknown_task.status_code == 422
    error = error_shape(unknown_task.json(), "invalid_definition", "'dnoe'")
    assert [(d["line"], d["column"]) for d in error["details"]] == [(11, 17)]

    not_yaml = publish("ref: shop.greet\ntasks: [\n")
    assert not_yaml.status_code == 422
    error = error_shape(not_yaml.json(), "invalid_definition", "YAML syntax error")
    assert error["details"][0]["line"] == 3

    error_shape(viewer("/api/v1/workflows/shop.greet", expect=404), "not_found")
    error_shape(viewer("/api/v1/workflows/shop.greet/versions", expect=404), "not_found")
    refusals = audit_entries(store, "workflow.publish")
    assert [e.outcome for e in refusals] == [AuditOutcome.FAILED] * 3


def test_a_body_that_is_not_a_definition_says_why(
    publish: Callable[..., Any], error_shape: ErrorShape
) -> None:
    broken_json = publish('{"ref": "shop.greet",\n "tasks": [}', content_type="application/json")
    assert broken_json.status_code == 400
    error = error_shape(broken_json.json(), "invalid_json")
    assert "line 2 column 12" in error["details"][0]["message"]

    wrong_type = publish(GREET, content_type="text/plain")
    assert wrong_type.status_code == 415
    error_shape(wrong_type.json(), "unsupported_media_type", "application/yaml", "text/plain")

    too_big = publish("# " + "x" * (1024 * 1024) + "\n")
    assert too_big.status_code == 413
    error_shape(too_big.json(), "request_too_large", "at most")

    a_list = publish('["not", "a", "workflow"]', content_type="application/json")
    assert a_list.status_code == 422
    error_shape(a_list.json(), "invalid_definition", "must be a mapping")


def test_a_workflow_of_a_pack_file_cannot_be_replaced_nor_deleted(
    publish: Callable[..., Any], api: TestClient, bearer: Bearer, error_shape: ErrorShape
) -> None:
    # examples.hello_world is a file of the shipped examples pack, which the server has
    text = "ref: examples.hello_world\ntasks: [{name: only, action: core.noop}]\n"
    replaced = publish(text)
    assert replaced.status_code == 409
    error_shape(
        replaced.json(), "conflict", "examples/workflows/hello_world.yaml", "change the pack file"
    )
    deleted = api.delete("/api/v1/workflows/examples.hello_world", headers=bearer(Role.ADMIN))
    assert deleted.status_code == 409
    error_shape(deleted.json(), "conflict", "examples/workflows/hello_world.yaml")


# -- reading -----------------------------------------------------------------------------------


def test_workflows_list_by_ref_filtered_by_pack_and_tag_a_page_at_a_time(
    publish: Callable[..., Any], viewer: Callable[..., Any], error_shape: ErrorShape
) -> None:
    for name in ("b", "a", "e", "d", "c"):
        assert publish(GREET.replace("shop.greet", f"shop.{name}")).status_code == 201
    untagged = GREET.replace("metadata: {tags: [people, hello]}\n", "")
    assert publish(untagged.replace("shop.greet", "shop_2.x")).status_code == 201
    assert publish(untagged.replace("shop.greet", "shopping.y")).status_code == 201

    seen, cursor = [], None
    while True:
        params = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = viewer("/api/v1/workflows", **params)
        assert set(page) == {"items", "next_cursor"}
        seen.append([item["ref"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [
        ["shop.a", "shop.b"],
        ["shop.c", "shop.d"],
        ["shop.e", "shop_2.x"],
        ["shopping.y"],
    ]

    def refs(**params: Any) -> list[str]:
        return [item["ref"] for item in viewer("/api/v1/workflows", **params)["items"]]

    assert refs(pack="shop") == ["shop.a", "shop.b", "shop.c", "shop.d", "shop.e"]
    assert refs(pack="shop_2") == ["shop_2.x"]  # '_' is not a wildcard
    assert refs(tag="hello", limit=3) == ["shop.a", "shop.b", "shop.c"]
    assert refs(tag="nobody") == []
    tagged = viewer("/api/v1/workflows", tag="hello", limit=4)
    assert (
        viewer("/api/v1/workflows", tag="hello", cursor=tagged["next_cursor"])["items"][0]["ref"]
        == "shop.e"
    )
    error_shape(viewer("/api/v1/workflows", expect=422, cursor="nope"), "invalid_parameters")


def test_versions_and_the_diff_are_those_of_the_cli(
    publish: Callable[..., Any], viewer: Callable[..., Any], client: Client, error_shape: ErrorShape
) -> None:
    publish(GREET)
    error_shape(
        viewer("/api/v1/workflows/shop.greet/diff", expect=409), "conflict", "nothing to compare"
    )
    publish(GREET.replace("hi {{", "hello {{"))
    publish(GREET.replace("hi {{", "hey {{"))

    versions = viewer("/api/v1/workflows/shop.greet/versions")
    assert versions["workflow"] == "shop.greet"
    assert [(v["version"], v["author"], v["deleted"]) for v in versions["versions"]] == [
        (1, "token:admin-token", False),
        (2, "token:admin-token", False),
        (3, "token:admin-token", False),
    ]
    assert [v["content_hash"] for v in versions["versions"]] == [
        v.content_hash for v in client.versions("shop.greet")
    ]

    latest = viewer("/api/v1/workflows/shop.greet/diff")
    assert (latest["from"], latest["to"]) == (2, 3)
    assert "-    message: hello {{ parameters.name }}\n" in latest["diff"]
    assert "+    message: hey {{ parameters.name }}\n" in latest["diff"]
    first = viewer("/api/v1/workflows/shop.greet/diff", **{"from": 1, "to": 2})
    expected = unified_diff(
        client.definition_text("shop.greet", 1),
        client.definition_text("shop.greet", 2),
        old_label="shop.greet@v1",
        new_label="shop.greet@v2",
    )
    assert first["diff"] == expected
    assert first["diff"].startswith("--- shop.greet@v1\n+++ shop.greet@v2\n")
    assert viewer("/api/v1/workflows/shop.greet/diff", **{"from": 2, "to": 2})["diff"] == ""
    as_json = viewer("/api/v1/workflows/shop.greet/diff", json="true")["diff"].splitlines()
    changed = [line for line in as_json if line[:1] in "+-" and '"message"' in line]
    assert [line.split(": ", 1)[1] for line in changed] == [
        '"hello {{ parameters.name }}"',
        '"hey {{ parameters.name }}"',
    ]
    missing = viewer("/api/v1/workflows/shop.greet/diff", expect=404, **{"from": 7})
    error_shape(missing, "not_found", "no version 7", "published: 1, 2, 3")


def test_the_v1_shapes_by_query_or_accept_header(
    publish: Callable[..., Any], api: TestClient, bearer: Bearer, viewer: Callable[..., Any]
) -> None:
    publish(GREET)
    publish(GREET.replace("hi {{", "hello {{"))
    shown = viewer("/api/v1/workflows/shop.greet", format="v1")
    accepted = api.get(
        "/api/v1/workflows/shop.greet",
        headers={**bearer(Role.VIEWER), "Accept": "application/vnd.treadle.workflows-v1+json"},
    )
    assert accepted.headers["content-type"] == "application/vnd.treadle.workflows-v1+json"
    assert accepted.json() == shown
    definition, version = shown["definition"], shown["version"]
    assert definition["id"] == "shop.greet"
    assert (definition["name"], definition["latest_version"]) == ("Greet", 2)
    assert definition["tags"] == ["people", "hello"]
    assert (version["id"], version["definition_id"], version["version"]) == (
        "shop.greet@v2",
        "shop.greet",
        2,
    )
    assert [(s["id"], s["step_type"]) for s in version["steps"]] == [
        ("say", "STEP_TYPE_AGENT_ACTION"),
        ("done", "STEP_TYPE_AGENT_ACTION"),
    ]
    assert version["edges"] == [{"from_step_id": "say", "to_step_id": "done"}]
    assert version["trigger"] == {"trigger_type": "TRIGGER_TYPE_MANUAL"}

    versions = viewer("/api/v1/workflows/shop.greet/versions", format="v1")["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    listed = viewer("/api/v1/workflows", format="v1")["items"]
    assert listed == [definition]
    assert viewer("/api/v1/workflows/shop.greet", format="treadle")["ref"] == "shop.greet"


def test_validating_stores_nothing_and_reports_what_publishing_would(
    publish: Callable[..., Any], viewer: Callable[..., Any], error_shape: ErrorShape
) -> None:
    calls_unknown = GREET.replace("action: core.noop", "action: shop.not_yet_written")
    valid = publish(calls_unknown, role=Role.VIEWER, path="/api/v1/workflows/validate")
    assert valid.status_code == 200, valid.json()
    body = valid.json()
    assert (body["valid"], body["ref"]) == (True, "shop.greet")
    [warning] = body["warnings"]
    assert warning["severity"] == "warning"
    assert "shop.not_yet_written" in warning["message"]
    assert (warning["file"], warning["line"]) == ("<body>", 13)

    invalid = publish(
        GREET.replace("do: done", "do: dnoe"), role=Role.VIEWER, path="/api/v1/workflows/validate"
    )
    assert invalid.status_code == 422
    error_shape(invalid.json(), "invalid_definition", "<body>:11:17", "'dnoe'")
    error_shape(viewer("/api/v1/workflows/shop.greet", expect=404), "not_found")


# -- the Attune paths --------------------------------------------------------------------------


def test_the_attune_paths_answer_what_the_workflows_routes_answer(
    publish: Callable[..., Any], viewer: Callable[..., Any], error_shape: ErrorShape
) -> None:
    in_pack = publish(GREET, path="/api/v1/packs/shop/workflows")
    assert in_pack.status_code == 201, in_pack.json()
    assert viewer("/api/v1/packs/shop/workflows") == viewer("/api/v1/workflows", pack="shop")
    other_pack = publish(GREET, path="/api/v1/packs/billing/workflows")
    assert other_pack.status_code == 422
    error = error_shape(other_pack.json(), "invalid_definition", "not a workflow of pack")
    assert (error["details"][0]["line"], error["details"][0]["column"]) == (1, 1)

    without_ref = GREET.replace("ref: shop.greet\n", "").replace("hi {{", "hello {{")
    updated = publish(without_ref, method="PUT", path="/api/v1/workflows/shop.greet")
    assert updated.status_code == 201, updated.json()
    assert (updated.json()["ref"], updated.json()["version"]) == ("shop.greet", 2)
    renamed = publish(GREET, method="PUT", path="/api/v1/workflows/shop.other")
    assert renamed.status_code == 422
    error_shape(renamed.json(), "invalid_definition", "'shop.greet' is not 'shop.other'")

    def validation(text: str, path: str) -> Any:
        return publish(text.replace("name: done", "name: fin"), path=path).json()

    via_ref = validation(GREET, "/api/v1/workflows/shop.greet/validate")
    assert via_ref == validation(GREET, "/api/v1/workflows/validate")  # the same 422
    error_shape(via_ref, "invalid_definition", "unknown task 'done'")
    # the path's ref stands in for a missing one, as PUT does
    taken = validation(without_ref, "/api/v1/workflows/shop.greet/validate")
    error_shape(taken, "invalid_definition", "<body>:10:17", "unknown task 'done'")
    error_shape(
        validation(without_ref, "/api/v1/workflows/validate"), "invalid_definition", "needs a 'ref'"
    )


# -- executing and deleting --------------------------------------------------------------------
