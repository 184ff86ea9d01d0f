"""The API on PostgreSQL: in process (snapshots, row locks, the broker in ``/readyz``), and
a real ``treadle api`` process with two uvicorn workers read over HTTP with httpx."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from treadle.api.app import create_app
from treadle.client import Client
from treadle.common.access import DEFAULT_WORKSPACE, Principal, Role
from treadle.common.loader import load_workflow_text
from treadle.common.settings import Settings
from treadle.scheduler.service.access import issue
from treadle.scheduler.store import Store
from treadle.testing import RABBITMQ_URL, throwaway_postgres_database
from treadle.testing.processes import (
    ServiceProcess,
    treadle_environment,
    wait_until_serving,
)
from treadle.testing.redis_server import free_port

pytestmark = pytest.mark.services

WORKFLOW = """\
ref: api.pg
parameters:
  who: {type: string, required: true}
tasks:
  - name: greet
    action: core.echo
    input: {message: "hello {{ parameters.who }}"}
"""


class Setup:
    """A migrated PostgreSQL database with one running run and a token of each role."""

    def __init__(self, url: str) -> None:
        self.url = url
        Store.open(url).close()
        with Client(url) as client:
            client.register(load_workflow_text(textwrap.dedent(WORKFLOW), "<pg>"))
            self.run_id = client.start("api.pg", {"who": "Grace"})
            self.document = client.get(self.run_id)
        store = Store.open(url, migrate=False)
        creator = Principal("test-setup", Role.ADMIN, DEFAULT_WORKSPACE)
        self.tokens: dict[Role, str] = {}
        try:
            for role in Role:
                with store.unit_of_work() as uow:
                    self.tokens[role] = issue(
                        uow,
                        name=role.value,
                        role=role,
                        workspace=DEFAULT_WORKSPACE,
                        expires_at=None,
                        created_by=creator,
                        now=datetime.now(UTC),
                    ).plaintext
        finally:
            store.close()

    def headers(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture
def setup() -> Iterator[Setup]:
    with throwaway_postgres_database("treadle_api") as url:
        yield Setup(url)


def test_reading_and_controlling_a_run_on_postgresql(setup: Setup) -> None:
    settings = Settings(database_url=setup.url, broker_url=RABBITMQ_URL)
    with TestClient(create_app(settings)) as api:
        ready = api.get("/readyz")
        assert ready.status_code == 200, ready.json()
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}

        listed = api.get("/api/v1/runs", headers=setup.headers(Role.VIEWER)).json()
        assert [item["id"] for item in listed["items"]] == [setup.run_id]
        read = api.get(f"/api/v1/runs/{setup.run_id}", headers=setup.headers(Role.VIEWER))
        assert read.json()["parameters"] == {"who": "Grace"}

        paused = api.post(
            f"/api/v1/workflow-executions/{setup.run_id}/pause",
            headers=setup.headers(Role.OPERATOR),
            json={"reason": "maintenance"},
        )
        assert paused.status_code == 200, paused.json()
        assert paused.json()["status"] == "pausing"
        again = api.post(f"/api/v1/runs/{setup.run_id}/pause", headers=setup.headers(Role.OPERATOR))
        assert again.status_code == 409
        assert again.json()["error"]["message"] == f"run {setup.run_id} is pausing already"


@pytest.mark.slow
def test_treadle_api_serves_a_run_over_http(setup: Setup, tmp_path: Path) -> None:
    port = free_port()
    env = treadle_environment(broker_url=RABBITMQ_URL, log_level="INFO")
    process = ServiceProcess(
        "api",
        ["api", "--port", str(port), "--workers", "2", "--database", setup.url],
        env,
        tmp_path / "api.log",
    )
    base = f"http://127.0.0.1:{port}"

    try:
        wait_until_serving(process, base)
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/readyz").json()["checks"] == {"database": "ok", "broker": "ok"}
            refused = http.get(f"/api/v1/runs/{setup.run_id}")
            assert refused.status_code == 401
            assert refused.json()["error"]["type"] == "unauthenticated"
            for _ in range(4):  # whichever worker answers
                response = http.get(
                    f"/api/v1/runs/{setup.run_id}", headers=setup.headers(Role.VIEWER)
                )
                assert response.status_code == 200, response.text
                document = response.json()
                assert document["id"] == setup.run_id
                assert document["status"] == setup.document.status.value
                assert document["tasks"][0]["name"] == "greet"
        assert process.terminate() == 0, process.tail()
    finally:
        process.close()
