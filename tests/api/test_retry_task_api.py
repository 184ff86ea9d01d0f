"""Retry from a failed task through the HTTP API and both Python clients.

``POST /api/v1/runs/{id}/retry`` with ``{"task": NAME}``, ``treadle.Client.retry(run_id,
task=NAME)`` and ``treadle.ApiClient.retry(run_id, task=NAME)``. A run of two branches that
both fail is driven to its end by the embedded runner on the test's database; the app over
the same database then applies the retries (no scheduler runs here, so a retried task
stays running with its new attempt dispatched, which is what these tests look at).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from treadle.apiclient import ApiClient
from treadle.client import Client
from treadle.common.access import Role
from treadle.common.errors import NotFound
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.settings import Settings
from treadle.common.statuses import RunStatus
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.service.controls import Control, ControlRefused, UnknownTask

PACKS = Path(__file__).resolve().parents[2] / "packs"

#: Both branches fail: the run ends failed naming both.
BRANCHES = """\
ref: api.branches
tasks:
  - name: start
    action: core.noop
    next: [{do: [left, right]}]
  - name: left
    action: core.fail
    input: {message: "left is broken"}
    next: [{when: "{{ succeeded() }}", do: [left_after]}]
  - {name: left_after, action: core.noop}
  - name: right
    action: core.fail
    input: {message: "right is broken"}
"""

Bearer = Callable[[Role], dict[str, str]]
ErrorShape = Callable[..., dict[str, object]]


@pytest.fixture
def failed_run(database_url: str, store: object) -> Callable[[], str]:
    """``failed_run()``: a run of ``api.branches`` driven to its end (failed), its id."""
    catalog = load_packs([PACKS])
    spec = load_workflow_text(BRANCHES, "<branches>")

    def make() -> str:
        with EmbeddedRunner.open(Settings(database_url=database_url), catalog) as runner:
            run_id = runner.start(spec, {})
            runner.follow(run_id)
        return run_id

    return make


@pytest.fixture
def api_client(api: TestClient, tokens: dict[Role, str]) -> Iterator[ApiClient]:
    with ApiClient("http://testserver", tokens[Role.OPERATOR], transport=api) as made:
        yield made


def tasks_of(document: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """Each task's status and attempts, as the run document shows them."""
    return {t["name"]: (t["status"], t["attempts"]) for t in document["tasks"]}


def retry(api: TestClient, bearer: Bearer, run_id: str, body: Any, status: int) -> Any:
    answer = api.post(f"/api/v1/runs/{run_id}/retry", headers=bearer(Role.OPERATOR), json=body)
    assert answer.status_code == status, answer.json()
    return answer.json()


def test_a_retry_naming_a_task_reopens_only_it_and_is_logged_and_audited(
    api: TestClient, bearer: Bearer, failed_run: Callable[[], str]
) -> None:
    run_id = failed_run()
    before = api.get(f"/api/v1/runs/{run_id}", headers=bearer(Role.VIEWER)).json()
    assert before["status"] == "failed"
    assert tasks_of(before) == {
        "start": ("succeeded", 1),
        "left": ("failed", 1),
        "right": ("failed", 1),
    }

    document = retry(api, bearer, run_id, {"task": "left", "reason": "disk cleaned"}, 200)

    assert document["status"] == "running"
    assert document["error"] is None
    assert tasks_of(document) == {
        "start": ("succeeded", 1),
        "left": ("running", 2),
        "right": ("failed", 1),  # not retried: its failure stays recorded
    }
    events = api.get(f"/api/v1/runs/{run_id}/events", headers=bearer(Role.VIEWER)).json()
    last = events["items"][-1]
    assert last["kind"] == "retry_requested"
    assert last["data"] == {"reason": "disk cleaned", "by": "token:operator-token", "task": "left"}
    audit = api.get("/api/v1/audit?action=run.retry", headers=bearer(Role.ADMIN)).json()
    entry = audit["items"][0]
    assert (entry["target"], entry["outcome"], entry["actor"]) == (
        run_id,
        "ok",
        "token:operator-token",
    )
    assert entry["details"] == {"reason": "disk cleaned", "task": "left"}


def test_a_retry_naming_a_task_that_cannot_be_retried_is_refused_and_changes_nothing(
    api: TestClient, bearer: Bearer, failed_run: Callable[[], str], error_shape: ErrorShape
) -> None:
    run_id = failed_run()
    path = f"/api/v1/runs/{run_id}"
    before = api.get(path, headers=bearer(Role.VIEWER)).json()
    log = api.get(f"{path}/events", headers=bearer(Role.VIEWER)).json()

    unknown = retry(api, bearer, run_id, {"task": "nowhere"}, 404)
    error_shape(unknown, "not_found", f"run {run_id} has no task 'nowhere'")
    hidden = retry(api, bearer, run_id, {"task": "left~compensate"}, 404)
    error_shape(hidden, "not_found", "has no task 'left~compensate'")
    succeeded = retry(api, bearer, run_id, {"task": "start"}, 409)
    error_shape(
        succeeded,
        "conflict",
        f"task 'start' of run {run_id} did not fail: it is succeeded; only a task whose "
        "latest execution failed, timed out or was canceled can be retried",
    )
    never_ran = retry(api, bearer, run_id, {"task": "left_after"}, 409)
    error_shape(never_ran, "conflict", "task 'left_after'", "did not fail: it has not run")
    empty = retry(api, bearer, run_id, {"task": ""}, 422)
    error_shape(empty, "validation_error", "task")
    not_a_retry = api.post(f"{path}/pause", headers=bearer(Role.OPERATOR), json={"task": "left"})
    assert not_a_retry.status_code == 422, not_a_retry.json()
    error_shape(not_a_retry.json(), "invalid_parameters", "only a retry names a task")

    assert api.get(path, headers=bearer(Role.VIEWER)).json() == before
    assert api.get(f"{path}/events", headers=bearer(Role.VIEWER)).json() == log
    audit = api.get("/api/v1/audit?action=run.retry", headers=bearer(Role.ADMIN)).json()
    assert [e["outcome"] for e in audit["items"]] == ["refused", "refused", "failed", "failed"]
    assert audit["items"][-1]["details"]["task"] == "nowhere"

    retry(api, bearer, run_id, {"task": "left"}, 200)
    running = retry(api, bearer, run_id, {"task": "right"}, 409)
    error_shape(
        running,
        "conflict",
        f"run {run_id} is running; only failed, timed out or canceled runs can be retried",
    )
    viewer = api.post(f"{path}/retry", headers=bearer(Role.VIEWER), json={"task": "right"})
    assert viewer.status_code == 403


def test_both_clients_retry_from_a_task_and_refuse_alike(
    client: Client, api_client: ApiClient, failed_run: Callable[[], str]
) -> None:
    by_client, by_api = failed_run(), failed_run()

    for retried in (client.retry(by_client, task="left"), api_client.retry(by_api, task="left")):
        assert retried.status is RunStatus.RUNNING
        statuses = {t.name: t.status.value for t in retried.tasks}
        assert statuses == {"start": "succeeded", "left": "running", "right": "failed"}

    unknown_c = _raised(lambda: client.retry(by_client, task="nowhere"))
    unknown_a = _raised(lambda: api_client.retry(by_api, task="nowhere"))
    assert isinstance(unknown_c, UnknownTask)
    assert isinstance(unknown_a, NotFound)
    assert str(unknown_a) == str(unknown_c).replace(by_client, by_api)

    refused_c = _raised(lambda: client.retry(by_client, task="right"))
    refused_a = _raised(lambda: api_client.retry(by_api, task="right"))
    for refused, run_id in ((refused_c, by_client), (refused_a, by_api)):
        assert isinstance(refused, ControlRefused)
        assert (refused.run_id, refused.control, refused.status) == (
            run_id,
            Control.RETRY,
            RunStatus.RUNNING,
        )
    assert str(refused_a) == str(refused_c).replace(by_client, by_api)


def test_the_client_retries_a_task_that_succeeded_never(
    client: Client, failed_run: Callable[[], str]
) -> None:
    run_id = failed_run()
    refused = _raised(lambda: client.retry(run_id, task="start"))
    assert isinstance(refused, ControlRefused)
    assert "task 'start'" in str(refused)
    assert "did not fail: it is succeeded" in str(refused)
    assert client.get(run_id).status is RunStatus.FAILED


def _raised(call: Callable[[], object]) -> Exception:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("nothing was raised")
