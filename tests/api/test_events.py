"""``POST /api/v1/events``: idempotent by id, starting triggered runs, releasing waits.

The ``api.on_order`` workflow of the conftest is started by events of type
``order.placed``; a run that waits for an event is started and carried on by the embedded
runner (the ``runner`` fixture), as the services would.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from treadle.api.models.events import EventOutcome
from treadle.client import Client
from treadle.common.access import AuditOutcome, Role
from treadle.common.loader import load_workflow_text
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.service.starting import RunOptions
from treadle.scheduler.store import Store

ErrorShape = Callable[..., dict[str, Any]]
Bearer = Callable[[Role], dict[str, str]]

URL = "/api/v1/events"

AWAIT_REPLY = """\
ref: api.await_reply
tasks:
  - name: await_reply
    action: core.wait_for_event
    input:
      type: "mail.*"
      subject: contacts/c-1
      filter: "{{ event.data.replied }}"
"""


def audit(store: Store) -> list[Any]:
    with store.unit_of_work() as uow:
        return uow.list_audit(workspace=None, action="event.send")


def test_the_same_event_id_twice_starts_its_runs_once(
    api: TestClient, bearer: Bearer, client: Client, store: Store
) -> None:
    event = {"id": "order-7", "type": "order.placed", "subject": "orders/7", "data": {"n": 7}}

    first = api.post(URL, headers=bearer(Role.OPERATOR), json=event)
    again = api.post(URL, headers=bearer(Role.OPERATOR), json=event)

    assert first.status_code == 200, first.json()
    outcome = EventOutcome.model_validate(first.json())
    assert (outcome.event_id, outcome.duplicate, outcome.updated_runs) == ("order-7", False, [])
    [started] = outcome.started_runs
    assert client.get(started).workflow == "api.on_order"
    assert again.status_code == 200
    assert again.json() == {
        "event_id": "order-7",
        "duplicate": True,
        "started_runs": [],
        "updated_runs": [],
        "refused": {},
    }
    assert [run.id for run in client.list_runs(workflow="api.on_order").runs] == [started]
    entries = audit(store)
    assert [(e.target, e.outcome) for e in entries] == [
        ("order-7", AuditOutcome.OK),
        ("order-7", AuditOutcome.OK),
    ]
    assert entries[0].details == {"type": "order.placed", "subject": "orders/7", "duplicate": True}
    assert entries[1].details == {"type": "order.placed", "subject": "orders/7"}
    assert entries[1].actor == "token:operator-token"


def test_an_event_without_an_id_gets_one(api: TestClient, bearer: Bearer, store: Store) -> None:
    event = {"type": "nobody.cares", "data": None}
    response = api.post(URL, headers=bearer(Role.ADMIN), json=event)
    assert response.status_code == 200
    outcome = response.json()
    assert outcome["event_id"].startswith("ev-")
    assert outcome["started_runs"] == outcome["updated_runs"] == []
    [entry] = audit(store)
    assert entry.target == outcome["event_id"]


def test_an_event_releases_the_wait_it_matches(
    api: TestClient, bearer: Bearer, runner: EmbeddedRunner
) -> None:
    spec = load_workflow_text(textwrap.dedent(AWAIT_REPLY), "<await_reply>")
    run_id = runner.start(spec, {}, RunOptions(identity={"login": "t"}))
    assert runner.follow(run_id).waiting
    headers = bearer(Role.OPERATOR)

    other = {"type": "mail.received", "subject": "contacts/c-2", "data": {"replied": True}}
    assert api.post(URL, headers=headers, json=other).json()["updated_runs"] == []
    matching = {"type": "mail.received", "subject": "contacts/c-1", "data": {"replied": True}}
    outcome = api.post(URL, headers=headers, json=matching).json()

    assert outcome["updated_runs"] == [run_id]
    followed = runner.follow(run_id)
    assert followed.state.status.value == "succeeded"
    result = followed.state.executions[1].result
    assert (result["type"], result["subject"], result["data"]) == (
        "mail.received",
        "contacts/c-1",
        {"replied": True},
    )


def test_only_operators_send_events(
    api: TestClient, bearer: Bearer, client: Client, store: Store, error_shape: ErrorShape
) -> None:
    event = {"type": "order.placed", "data": {}}
    refused = api.post(URL, headers=bearer(Role.VIEWER), json=event)
    assert refused.status_code == 403
    error_shape(refused.json(), "forbidden", "operator")
    assert api.post(URL, json=event).status_code == 401
    assert client.list_runs(workflow="api.on_order").runs == ()
    assert audit(store) == []


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"data": {}}, "body field 'type'"),
        ({"type": "   ", "data": {}}, "body field 'type'"),
        ({"type": "x"}, "body field 'data'"),
        ({"type": "x", "data": 1, "id": ""}, "body field 'id'"),
        ({"type": "x", "data": 1, "subject": 5}, "body field 'subject'"),
        ({"type": "x", "data": 1, "priority": "high"}, "body field 'priority'"),
        (["order.placed"], "the body"),
    ],
)
def test_a_bad_event_is_422_naming_the_field(
    api: TestClient, bearer: Bearer, body: Any, where: str, error_shape: ErrorShape
) -> None:
    response = api.post(URL, headers=bearer(Role.OPERATOR), json=body)
    assert response.status_code == 422
    error_shape(response.json(), "validation_error", where)


def test_a_body_that_is_not_json_is_400(
    api: TestClient, bearer: Bearer, error_shape: ErrorShape
) -> None:
    response = api.post(
        URL,
        headers={**bearer(Role.OPERATOR), "Content-Type": "application/json"},
        content=b"{'type': 'x'}",
    )
    assert response.status_code == 400
    error_shape(response.json(), "invalid_json")


def test_data_over_the_size_limit_is_refused_and_the_attempt_audited(
    api: TestClient, bearer: Bearer, client: Client, store: Store, error_shape: ErrorShape
) -> None:
    event = {"id": "big-1", "type": "order.placed", "data": "x" * 1_100_000}
    response = api.post(URL, headers=bearer(Role.OPERATOR), json=event)
    assert response.status_code == 422
    error_shape(response.json(), "limit_exceeded", "max_payload_bytes")
    assert client.list_runs(workflow="api.on_order").runs == ()
    [entry] = audit(store)
    assert (entry.target, entry.outcome) == ("big-1", AuditOutcome.FAILED)
    with store.unit_of_work() as uow:
        assert uow.get_received_event("big-1") is None
