"""The UI's "Retry from this task" button without a browser: who sees it, where, and what
its form does (CSRF, roles, 4xx pages, the audit entry).

In-process: FastAPI's ``TestClient`` on ``create_app`` over a SQLite database of the
test's own; a run of two failing branches is driven to its end by the embedded runner
first. No scheduler runs in the app, so a retried task stays running with its new attempt.
"""

from __future__ import annotations

import re
import textwrap

import pytest
from fastapi.testclient import TestClient
from tests.api.conftest import FakeClock, issue_token
from tests.ui.conftest import PACKS

from treadle.client import Client
from treadle.common.access import Role
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.settings import Settings
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.store import Store

BRANCHES = """\
ref: ui.branches
tasks:
  - name: start
    action: core.noop
    next: [{do: [left, right]}]
  - name: left
    action: core.fail
    input: {message: "left is broken"}
  - name: right
    action: core.fail
    input: {message: "right is broken"}
"""

BUTTON = "Retry from this task"


@pytest.fixture
def failed_run(store: Store) -> str:
    """A run of ``ui.branches`` driven to its end: ``left`` and ``right`` failed."""
    url = str(store.engine.url)
    spec = load_workflow_text(textwrap.dedent(BRANCHES), "<branches>")
    with EmbeddedRunner.open(Settings(database_url=url), load_packs([PACKS])) as runner:
        run_id = runner.start(spec, {})
        runner.follow(run_id)
    return run_id


def _log_in(web: TestClient, store: Store, name: str, role: Role) -> None:
    form = web.get("/ui/login")
    guard = re.search(r'name="guard" value="([^"]+)"', form.text)
    assert guard is not None
    token = issue_token(store, name, role, FakeClock()())
    answer = web.post("/ui/login", data={"guard": guard.group(1), "token": token})
    assert answer.status_code == 303


def _csrf(web: TestClient, path: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', web.get(path).text)
    assert found is not None
    return found.group(1)


def _statuses(store: Store, run_id: str) -> dict[str, str]:
    with Client(str(store.engine.url)) as client:
        info = client.get(run_id)
    return {"run": info.status.value, **{t.name: t.status.value for t in info.tasks}}


def test_an_operator_retries_a_failed_task_from_its_details(
    web: TestClient, store: Store, failed_run: str
) -> None:
    run_id = failed_run
    _log_in(web, store, "ops", Role.OPERATOR)
    details = web.get(f"/ui/runs/{run_id}?task=left")
    assert details.status_code == 200
    action = f'action="/ui/runs/{run_id}/tasks/left/retry"'
    assert action in details.text
    assert BUTTON in details.text
    assert BUTTON not in web.get(f"/ui/runs/{run_id}?task=start").text  # it succeeded
    assert BUTTON not in web.get(f"/ui/runs/{run_id}").text  # no task selected

    retried = web.post(
        f"/ui/runs/{run_id}/tasks/left/retry", data={"csrf": _csrf(web, f"/ui/runs/{run_id}")}
    )
    assert retried.status_code == 303
    assert retried.headers["location"] == f"/ui/runs/{run_id}?task=left#task"
    assert _statuses(store, run_id) == {
        "run": "running",
        "start": "succeeded",
        "left": "running",
        "right": "failed",
    }
    page = web.get(f"/ui/runs/{run_id}?task=right")
    assert BUTTON not in page.text  # the run is running again: nothing to retry now

    admin = {"Authorization": f"Bearer {issue_token(store, 'boss', Role.ADMIN, FakeClock()())}"}
    audit = web.get("/api/v1/audit?action=run.retry", headers=admin).json()
    assert [(e["actor"], e["outcome"], e["details"]) for e in audit["items"]] == [
        ("token:ops", "ok", {"task": "left"})
    ]


def test_a_retry_from_a_task_that_does_not_fit_gets_a_4xx_page_and_changes_nothing(
    web: TestClient, store: Store, failed_run: str
) -> None:
    run_id = failed_run
    _log_in(web, store, "ops", Role.OPERATOR)
    csrf = _csrf(web, f"/ui/runs/{run_id}")
    unknown = web.post(f"/ui/runs/{run_id}/tasks/nowhere/retry", data={"csrf": csrf})
    assert unknown.status_code == 404
    assert f"run {run_id} has no task &#39;nowhere&#39;" in unknown.text
    succeeded = web.post(f"/ui/runs/{run_id}/tasks/start/retry", data={"csrf": csrf})
    assert succeeded.status_code == 409
    assert "did not fail: it is succeeded" in succeeded.text
    no_csrf = web.post(f"/ui/runs/{run_id}/tasks/left/retry", data={})
    assert no_csrf.status_code == 403
    assert "CSRF" in no_csrf.text
    assert _statuses(store, run_id)["run"] == "failed"


def test_a_viewer_sees_no_button_and_a_forged_post_gets_403(
    web: TestClient, store: Store, failed_run: str
) -> None:
    run_id = failed_run
    _log_in(web, store, "look", Role.VIEWER)
    page = web.get(f"/ui/runs/{run_id}?task=left")
    assert page.status_code == 200
    assert "left is broken" in page.text  # the details are there
    assert BUTTON not in page.text
    assert "<button" not in page.text.split("<main")[1]
    forged = web.post(
        f"/ui/runs/{run_id}/tasks/left/retry", data={"csrf": _csrf(web, f"/ui/runs/{run_id}")}
    )
    assert forged.status_code == 403
    assert "needs the operator role" in forged.text
    assert _statuses(store, run_id) == {
        "run": "failed",
        "start": "succeeded",
        "left": "failed",
        "right": "failed",
    }
