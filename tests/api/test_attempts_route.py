"""``GET /api/v1/runs/{id}/tasks/{task}/attempts``: each attempt's input and captured output.

An embedded runner on the test's database (standing in for the scheduler and workers)
runs a workflow whose ``with_items`` task calls a printing action with a secret run
parameter in its input; the API shows every attempt to a viewer, a page at a time, with
the secret as ``***`` in the input and in what was printed. Another workspace's token
gets 404, as for an unknown run; a bad cursor or limit is 422.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from treadle.api.models.run_views import AttemptPage
from treadle.common.access import Principal, Role
from treadle.common.catalog import Catalog
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.settings import Settings
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.service.access import issue
from treadle.scheduler.store import Store

from .conftest import FakeClock

ErrorShape = Callable[..., dict[str, Any]]
Bearer = Callable[[Role], dict[str, str]]
TOKEN = "tok-Gh5Rw1Yz7Lp3"

PACK = {
    "pack.yaml": "ref: apiout\nversion: '1.0.0'\n",
    "actions/say.yaml": """
        name: say
        runner_type: python
        entry_point: actions.py:say
        parameters:
          text: {type: string, required: true}
    """,
    "actions/actions.py": """
        def say(text):
            print(f"saying {text}")
            return {"said": text}
    """,
}
FLOW = """\
ref: apiout.flow
parameters:
  token: {type: string, secret: true, required: true}
tasks:
  - name: each
    action: apiout.say
    with_items: [a, b, c]
    input: {text: "{{ item }} with {{ parameters.token }}"}
"""


@pytest.fixture
def printed_run(
    database_url: str, store: Store, clock: FakeClock, shipped_catalog: Catalog, tmp_path: Path
) -> Iterator[str]:
    for name, text in PACK.items():
        path = tmp_path / "packs" / "apiout" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    loaded = load_packs([tmp_path / "packs"])
    catalog = Catalog(
        packs={**shipped_catalog.packs, **loaded.packs},
        actions={**shipped_catalog.actions, **loaded.actions},
        workflows=dict(shipped_catalog.workflows),
    )
    runner = EmbeddedRunner(Settings(database_url=database_url), catalog, clock=clock)
    try:
        run_id = runner.start(load_workflow_text(FLOW, "<apiout>"), {"token": TOKEN})
        assert runner.follow(run_id).state.status == "succeeded"
        yield run_id
    finally:
        runner.close()


def test_a_viewer_reads_each_attempt_s_input_and_output_a_page_at_a_time(
    api: TestClient, bearer: Bearer, printed_run: str
) -> None:
    url = f"/api/v1/runs/{printed_run}/tasks/each/attempts"

    first = api.get(url, headers=bearer(Role.VIEWER), params={"limit": 2})
    assert first.status_code == 200, first.json()
    page = first.json()
    AttemptPage.model_validate(page)
    rest = api.get(
        url, headers=bearer(Role.VIEWER), params={"limit": 2, "cursor": page["next_cursor"]}
    ).json()

    assert (page["run"], page["task"], rest["next_cursor"]) == (printed_run, "each", None)
    attempts = page["attempts"] + rest["attempts"]
    assert [(a["item"], a["attempt"], a["status"]) for a in attempts] == [
        (0, 1, "succeeded"),
        (1, 1, "succeeded"),
        (2, 1, "succeeded"),
    ]
    assert [a["input"] for a in attempts] == [{"text": f"{x} with ***"} for x in "abc"]
    assert [a["output"]["stdout"] for a in attempts] == [f"saying {x} with ***\n" for x in "abc"]
    assert TOKEN not in repr(attempts)
    alias = f"/api/v1/workflow-executions/{printed_run}/tasks/each/attempts"
    assert api.get(alias, headers=bearer(Role.VIEWER)).json()["attempts"] == attempts


def test_bad_requests_are_4xx_in_the_api_s_error_shape(
    api: TestClient, bearer: Bearer, printed_run: str, error_shape: ErrorShape
) -> None:
    base = f"/api/v1/runs/{printed_run}/tasks"
    viewer = bearer(Role.VIEWER)

    unknown_task = api.get(f"{base}/nope/attempts", headers=viewer)
    unknown_run = api.get("/api/v1/runs/r-nope/tasks/each/attempts", headers=viewer)
    bad_cursor = api.get(f"{base}/each/attempts", headers=viewer, params={"cursor": "xyz"})
    too_many = api.get(f"{base}/each/attempts", headers=viewer, params={"limit": 101})
    no_execution = api.get(f"{base}/each/attempts", headers=viewer, params={"execution": 7})
    anonymous = api.get(f"{base}/each/attempts")

    assert unknown_task.status_code == 404
    error_shape(unknown_task.json(), "not_found", "has no execution of task 'nope'")
    assert unknown_run.status_code == 404
    assert bad_cursor.status_code == 422
    error_shape(bad_cursor.json(), "invalid_parameters", "is not a next cursor")
    assert too_many.status_code == 422
    assert no_execution.status_code == 404
    assert anonymous.status_code == 401


def test_another_workspace_s_token_gets_404(
    api: TestClient, store: Store, clock: FakeClock, printed_run: str, error_shape: ErrorShape
) -> None:
    with store.unit_of_work() as uow:
        issued = issue(
            uow,
            name="team-b-viewer",
            role=Role.VIEWER,
            workspace="team-b",
            expires_at=None,
            created_by=Principal("test-setup", Role.ADMIN, "team-b"),
            now=clock(),
        )
    other = {"Authorization": f"Bearer {issued.plaintext}"}

    response = api.get(f"/api/v1/runs/{printed_run}/tasks/each/attempts", headers=other)

    assert response.status_code == 404
    error_shape(response.json(), "not_found", f"run {printed_run} not found")
