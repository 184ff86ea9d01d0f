"""The sandbox and seeds over HTTP: checking a definition, refused starts, chosen seeds.

``POST /api/v1/sandbox/check`` answers the sandbox's report and stores nothing; a start
whose parameters break the policy in force is 422 ``sandbox_violation`` with the report as
``details`` and starts nothing; ``seed`` in an execute request is the run's seed, shown in
the run document, and the same seed with the same results gives the same decisions.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from treadle.api.app import create_app
from treadle.client import Client
from treadle.common.access import AuditOutcome, Role
from treadle.common.settings import Settings
from treadle.scheduler.store import Store

from .workflow_requests import GREET, YAML, Bearer, ErrorShape, audit_entries

RISKY = textwrap.dedent(
    """\
    ref: shop.risky
    tasks:
      - name: post
        action: core.http
        input: {url: "https://api.example.com/orders?a=1&b=2", method: POST}
        next: [{do: [evil]}]
      - name: evil
        action: aos.eval_code
        input: {code: "../../etc/passwd"}
    """
)


@pytest.mark.usefixtures("client")  # its workflows are the only ones published
def test_checking_a_definition_answers_the_report_and_stores_nothing(
    api: TestClient, bearer: Bearer, error_shape: ErrorShape
) -> None:
    def check(text: str, headers: Any = None) -> Any:
        sent = {**(headers if headers is not None else bearer(Role.VIEWER)), **YAML}
        return api.post("/api/v1/sandbox/check", content=text.encode(), headers=sent)

    risky = check(RISKY)
    safe = check(GREET)
    broken = check("ref: shop.broken\ntasks: []\n")
    anonymous = check(GREET, headers={})

    assert risky.status_code == 200, risky.json()
    report = risky.json()
    assert (report["valid"], report["ref"], report["policy"]) == (False, "shop.risky", "default")
    assert [(v["task"], v["reason"], v["field"]) for v in report["violations"]] == [
        ("evil", "forbidden_action", "action"),
        ("evil", "path_traversal", "input.code"),
    ]
    assert report["violations"][1]["location"] == "<body>:9:13"
    assert [(w["task"], w["reason"]) for w in report["warnings"]] == [
        ("post", "undeclared_side_effects")
    ]
    assert safe.json() == {
        "valid": True,
        "ref": "shop.greet",
        "policy": "default",
        "violations": [],
        "warnings": [],
    }
    assert broken.status_code == 422
    error_shape(broken.json(), "invalid_definition", "no tasks")
    assert anonymous.status_code == 401
    listed = api.get("/api/v1/workflows", headers=bearer(Role.VIEWER)).json()["items"]
    assert [w["ref"] for w in listed] == ["api.fan_out", "api.on_order", "api.single"]


@pytest.fixture
def policed(database_url: str, store: Store, clock: Callable[[], Any]) -> Iterator[TestClient]:
    """The API of a deployment whose workflows run under the default sandbox policy."""
    settings = Settings(database_url=database_url, sandbox_policy=json.dumps({"workflows": {}}))
    with TestClient(create_app(settings, store=store, clock=clock)) as test_client:
        yield test_client


def test_a_start_that_breaks_the_policy_is_refused_with_the_report(
    policed: TestClient,
    publish: Callable[..., Any],
    bearer: Bearer,
    client: Client,
    store: Store,
    error_shape: ErrorShape,
) -> None:
    assert publish(GREET).status_code == 201
    operator = bearer(Role.OPERATOR)

    def execute(name: str) -> Any:
        body = {"parameters": {"name": name}}
        return policed.post("/api/v1/workflows/shop.greet/execute", json=body, headers=operator)

    refused = execute("{{ keystore.api_key }}")
    checked = policed.post(
        "/api/v1/sandbox/check", content=GREET.encode(), headers={**operator, **YAML}
    )
    started = execute("Ada")

    assert refused.status_code == 422
    error = error_shape(refused.json(), "sandbox_violation", "template injection")
    assert error["details"] == {
        "valid": False,
        "violations": [
            {
                "reason": "template_injection",
                "message": "parameter 'name' looks like template injection ('{{')",
                "field": "parameters.name",
                "pattern_class": "template",
                "pattern": "\\{\\{",
            }
        ],
        "warnings": [],
    }
    assert checked.json()["policy"] == "workspace"
    assert started.status_code == 201
    assert [run.id for run in client.list_runs(workflow="shop.greet").runs] == [
        started.json()["id"]
    ]
    outcomes = [e.outcome for e in audit_entries(store, "run.start")]
    assert outcomes == [AuditOutcome.FAILED, AuditOutcome.OK]


SEEDED = textwrap.dedent(
    """\
    ref: shop.seeded
    tasks:
      - name: roll
        action: core.echo
        input: {message: "{{ ((system.seed * 2654435761 + 5) % 4294967296) | string }}"}
        next: [{do: [again]}]
      - name: again
        action: core.echo
        input: {message: "{{ task.roll.result.message }}-{{ (system.seed * 31) % 1000 }}"}
    """
)


def test_a_chosen_seed_gives_the_same_decisions(
    api: TestClient,
    publish: Callable[..., Any],
    bearer: Bearer,
    runner: Any,
    error_shape: ErrorShape,
) -> None:
    assert publish(SEEDED).status_code == 201
    operator = bearer(Role.OPERATOR)

    def run(seed: Any) -> Any:
        body = {"seed": seed}
        return api.post("/api/v1/workflows/shop.seeded/execute", json=body, headers=operator)

    def decisions(run_id: str) -> list[tuple[str, str, Any]]:
        runner.follow(run_id)  # the scheduler and workers' part
        document = api.get(f"/api/v1/runs/{run_id}", headers=operator).json()
        assert document["seed"] == seeded[run_id]
        return [(t["name"], t["status"], t["result"]) for t in document["tasks"]]

    seeded: dict[str, int] = {}
    for seed in (7, 7, 8):
        started = run(seed)
        assert started.status_code == 201, started.json()
        assert started.json()["seed"] == seed
        seeded[started.json()["id"]] = seed
    one, two, other = (decisions(run_id) for run_id in seeded)

    assert one == two
    assert one[0] == ("roll", "succeeded", {"message": str((7 * 2654435761 + 5) % 4294967296)})
    assert other != one
    for bad in (-1, 2**63, "seven", 1.5):
        refused = run(bad)
        assert refused.status_code == 422, bad
        error_shape(refused.json(), "validation_error", "body field 'seed'")
