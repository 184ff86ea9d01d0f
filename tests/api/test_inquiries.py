"""The inquiries routes on runs that really wait: list, read, answer, and every refusal.

Runs of ``examples.inquiry`` are started and carried on by an embedded runner on the
test's database (the ``runner`` fixture), so their inquiries exist as the scheduler opened
them; the API answers them, and the runner then carries the run on as the services would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from treadle.api.models.inquiries import Inquiry
from treadle.common.access import AuditOutcome, Role
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.service.starting import RunOptions
from treadle.scheduler.store import Store

ErrorShape = Callable[..., dict[str, Any]]
Bearer = Callable[[Role], dict[str, str]]

URL = "/api/v1/inquiries"


def ask(runner: EmbeddedRunner, version: str = "1.2.3") -> tuple[str, str]:
    """Start a run of ``examples.inquiry`` and carry it to its question: (run, inquiry)."""
    spec = runner.catalog.workflow("examples.inquiry")
    run_id = runner.start(spec, {"version": version}, RunOptions(identity={"login": "t"}))
    followed = runner.follow(run_id)
    assert followed.waiting
    with runner.store.unit_of_work() as uow:
        [inquiry] = uow.list_inquiries(run_id=run_id)
    return run_id, inquiry.id


@pytest.fixture
def asking(runner: EmbeddedRunner) -> tuple[str, str]:
    return ask(runner)


def audit(store: Store, action: str) -> list[Any]:
    with store.unit_of_work() as uow:
        return uow.list_audit(workspace=None, action=action)


def test_an_inquiry_is_listed_and_read_as_the_run_asked_it(
    api: TestClient, bearer: Bearer, asking: tuple[str, str]
) -> None:
    run_id, inquiry_id = asking

    listed = api.get(URL, headers=bearer(Role.VIEWER))
    assert listed.status_code == 200, listed.json()
    assert listed.json()["next_cursor"] is None
    [item] = listed.json()["items"]
    one = api.get(f"{URL}/{inquiry_id}", headers=bearer(Role.VIEWER)).json()
    assert item == one
    assert Inquiry.model_validate(one).id == inquiry_id
    assert one["run"] == run_id
    assert one["task"] == "ask_approval"
    assert one["status"] == "pending"
    assert one["prompt"] == "Deploy version 1.2.3 to production?"
    assert one["schema"]["required"] == ["approved"]
    assert one["assigned_to"] == "ops"
    assert one["deadline"].endswith("Z")
    assert (one["response"], one["responder"], one["answered_at"]) == (None, None, None)


def test_inquiries_page_oldest_first_and_filter_by_status_and_run(
    api: TestClient, bearer: Bearer, runner: EmbeddedRunner, clock: Any
) -> None:
    asked = []
    for i in range(3):
        asked.append(ask(runner, f"1.0.{i}"))
        clock.advance(1)
    headers = bearer(Role.VIEWER)

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, "status": "pending"}
        if cursor is not None:
            params["cursor"] = cursor
        page = api.get(URL, headers=headers, params=params).json()
        seen.extend(item["id"] for item in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 2
    assert seen == [inquiry for _run, inquiry in asked]

    run_id, inquiry_id = asked[1]
    by_run = api.get(URL, headers=headers, params={"run": run_id}).json()["items"]
    assert [item["id"] for item in by_run] == [inquiry_id]
    answered = api.get(URL, headers=headers, params={"status": "answered"}).json()
    assert answered == {"items": [], "next_cursor": None}


def test_an_answer_is_recorded_audited_and_carries_the_run_on(
    api: TestClient,
    bearer: Bearer,
    asking: tuple[str, str],
    runner: EmbeddedRunner,
    store: Store,
) -> None:
    run_id, inquiry_id = asking

    response = api.post(
        f"{URL}/{inquiry_id}/respond",
        headers=bearer(Role.OPERATOR),
        json={"approved": True, "comment": "ship it"},
    )

    assert response.status_code == 200, response.json()
    answered = response.json()
    assert answered["status"] == "answered"
    assert answered["response"] == {"approved": True, "comment": "ship it"}
    assert answered["responder"] == "token:operator-token"
    assert answered["answered_at"].endswith("Z")
    [entry] = audit(store, "inquiry.respond")
    assert (entry.actor, entry.target, entry.outcome) == (
        "token:operator-token",
        inquiry_id,
        AuditOutcome.OK,
    )
    followed = runner.follow(run_id)
    assert followed.state.status.value == "succeeded"
    assert followed.state.output == {"decision": "approved"}


def test_an_answer_that_does_not_fit_the_schema_is_422_naming_the_field_and_changes_nothing(
    api: TestClient,
    bearer: Bearer,
    asking: tuple[str, str],
    store: Store,
    error_shape: ErrorShape,
) -> None:
    run_id, inquiry_id = asking
    with store.unit_of_work() as uow:
        version = uow.run_version(run_id)

    response = api.post(
        f"{URL}/{inquiry_id}/respond", headers=bearer(Role.OPERATOR), json={"approved": "yes"}
    )

    assert response.status_code == 422
    error = error_shape(response.json(), "invalid_parameters", "response['approved']")
    assert error["details"]["problems"] == ["response['approved']: 'yes' is not of type 'boolean'"]
    missing = api.post(f"{URL}/{inquiry_id}/respond", headers=bearer(Role.OPERATOR), json={})
    assert missing.status_code == 422
    error_shape(missing.json(), "invalid_parameters", "'approved' is a required property")
    with store.unit_of_work() as uow:
        assert uow.run_version(run_id) == version
        assert uow.get_inquiry(inquiry_id).status.value == "pending"
    outcomes = [entry.outcome for entry in audit(store, "inquiry.respond")]
    assert outcomes == [AuditOutcome.FAILED, AuditOutcome.FAILED]


def test_an_inquiry_is_answered_once(
    api: TestClient,
    bearer: Bearer,
    asking: tuple[str, str],
    store: Store,
    error_shape: ErrorShape,
) -> None:
    _run_id, inquiry_id = asking
    url = f"{URL}/{inquiry_id}/respond"
    assert api.post(url, headers=bearer(Role.ADMIN), json={"approved": False}).status_code == 200

    again = api.post(url, headers=bearer(Role.OPERATOR), json={"approved": True})

    assert again.status_code == 409
    error_shape(again.json(), "conflict", "is answered, not pending")
    with store.unit_of_work() as uow:
        assert uow.get_inquiry(inquiry_id).response == {"approved": False}
    outcomes = [entry.outcome for entry in audit(store, "inquiry.respond")]
    assert outcomes == [AuditOutcome.REFUSED, AuditOutcome.OK]  # newest first


def test_a_viewer_may_read_but_not_answer(
    api: TestClient, bearer: Bearer, asking: tuple[str, str], error_shape: ErrorShape
) -> None:
    _run_id, inquiry_id = asking
    url = f"{URL}/{inquiry_id}/respond"

    refused = api.post(url, headers=bearer(Role.VIEWER), json={"approved": True})
    assert refused.status_code == 403
    error_shape(refused.json(), "forbidden", "operator")
    anonymous = api.post(url, json={"approved": True})
    assert anonymous.status_code == 401
    assert api.get(URL).status_code == 401
    assert api.get(f"{URL}/{inquiry_id}").status_code == 401
    status = api.get(f"{URL}/{inquiry_id}", headers=bearer(Role.VIEWER)).json()["status"]
    assert status == "pending"


def test_unknown_inquiries_are_404(
    api: TestClient, bearer: Bearer, store: Store, error_shape: ErrorShape
) -> None:
    read = api.get(f"{URL}/iq-nope", headers=bearer(Role.VIEWER))
    assert read.status_code == 404
    error_shape(read.json(), "not_found", "iq-nope")
    answer = api.post(f"{URL}/iq-nope/respond", headers=bearer(Role.OPERATOR), json={})
    assert answer.status_code == 404
    [entry] = audit(store, "inquiry.respond")
    assert entry.outcome is AuditOutcome.FAILED


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"status": "bogus"}, "query parameter 'status'"),
        ({"limit": 0}, "query parameter 'limit'"),
        ({"limit": 1001}, "query parameter 'limit'"),
    ],
)
def test_bad_filters_are_422_naming_the_parameter(
    api: TestClient,
    bearer: Bearer,
    params: dict[str, Any],
    where: str,
    error_shape: ErrorShape,
) -> None:
    response = api.get(URL, headers=bearer(Role.VIEWER), params=params)
    assert response.status_code == 422
    error_shape(response.json(), "validation_error", where)


def test_a_cursor_no_page_returned_is_422(
    api: TestClient, bearer: Bearer, error_shape: ErrorShape
) -> None:
    response = api.get(URL, headers=bearer(Role.VIEWER), params={"cursor": "garbage"})
    assert response.status_code == 422
    error_shape(response.json(), "invalid_parameters", "cursor")


def test_an_answer_needs_a_json_body(
    api: TestClient, bearer: Bearer, asking: tuple[str, str], error_shape: ErrorShape
) -> None:
    _run_id, inquiry_id = asking
    url = f"{URL}/{inquiry_id}/respond"
    empty = api.post(url, headers=bearer(Role.OPERATOR))
    assert empty.status_code == 422
    error_shape(empty.json(), "validation_error", "the body")
    broken = api.post(
        url,
        headers={**bearer(Role.OPERATOR), "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert broken.status_code == 400
    error_shape(broken.json(), "invalid_json")
