"""``treadle api`` on SQLite also runs the runs: the embedded scheduler and worker pool in
the API process, so one command serves a whole machine (``docs/api.md``, "On one machine").

In process: an app built with a :class:`BackgroundScheduler`, as ``treadle api`` builds it
on SQLite, served by FastAPI's test client: a run started over HTTP ends, an event sent over
HTTP releases a waiting run, a run :class:`treadle.Client` starts on the database is
found within the poll interval, an inquiry answered over HTTP lets its run go on, a delay's
timer fires; shutting down leaves no thread behind, and an attempt no worker thread had
started yet runs again when the API starts again. Then the real command: ``treadle api``
with no settings at all in a fresh folder, a token from ``treadle tokens create``, driven
over HTTP with httpx; and ``--workers 2`` refused on SQLite.
"""

from __future__ import annotations

import signal
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from treadle.api.app import create_app
from treadle.client import Client
from treadle.common.access import Role
from treadle.common.catalog import Catalog
from treadle.common.settings import Settings
from treadle.embedded.background import BackgroundScheduler
from treadle.scheduler.store import Store
from treadle.testing.cli import TreadleCli
from treadle.testing.processes import (
    ServiceProcess,
    treadle_environment,
    wait_until,
    wait_until_serving,
)
from treadle.testing.redis_server import free_port

from .conftest import issue_token

#: Waits for a payment, then ships: released by ``POST /api/v1/events``.
AWAIT_PAYMENT = """\
ref: shop.await_payment
parameters:
  order: {type: string, required: true}
tasks:
  - name: await_payment
    action: core.wait_for_event
    input:
      type: payment.received
      subject: "orders/{{ parameters.order }}"
    next:
      - when: "{{ succeeded() }}"
        do: [ship]
  - name: ship
    action: core.echo
    input:
      message: "shipping {{ parameters.order }}, paid {{ task.await_payment.result.data.amount }}"
output_map:
  shipped: "{{ task.ship.result.message }}"
"""

#: Two tasks at once: with one worker thread, one runs while the other waits for it.
TWO_NAPS = """\
ref: shop.two_naps
tasks:
  - name: first
    action: core.sleep
    input: {seconds: 1}
  - name: second
    action: core.sleep
    input: {seconds: 1}
"""

Document = dict[str, Any]


def wait_for_run(
    http: httpx.Client | TestClient,
    headers: dict[str, str],
    run_id: str,
    until: Callable[[Document], bool],
    what: str,
    timeout: float = 30,
) -> Document:
    """Poll the run's document until ``until`` holds; the document."""
    seen: list[Document] = []

    def look() -> Document | None:
        response = http.get(f"/api/v1/runs/{run_id}", headers=headers)
        assert response.status_code == 200, response.text
        seen[:] = [response.json()]
        return seen[0] if until(seen[0]) else None

    found = wait_until(look, timeout, f"run {run_id} {what}", describe=lambda: str(seen))
    assert found is not None
    return found


def ended(document: Document) -> bool:
    return document["status"] in ("succeeded", "failed", "timed_out", "canceled")


def task_status(document: Document, name: str) -> str | None:
    return next((t["status"] for t in document["tasks"] if t["name"] == name), None)


def execute(
    http: httpx.Client | TestClient, headers: dict[str, str], ref: str, **parameters: Any
) -> str:
    response = http.post(
        f"/api/v1/workflows/{ref}/execute", headers=headers, json={"parameters": parameters}
    )
    assert response.status_code == 201, response.text
    run_id: str = response.json()["id"]
    return run_id


def publish(http: httpx.Client | TestClient, headers: dict[str, str], text: str) -> None:
    response = http.post(
        "/api/v1/workflows",
        headers={**headers, "Content-Type": "application/yaml"},
        content=textwrap.dedent(text).encode(),
    )
    assert response.status_code == 201, response.text


def treadle_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("treadle-")]


# -- in process ---------------------------------------------------------------------------------


class Served:
    """Serving the API with its embedded scheduler on one database, as ``treadle api`` does."""

    def __init__(self, database_url: str, catalog: Catalog, headers: dict[str, str]) -> None:
        self.database_url = database_url
        self.catalog = catalog
        self.headers = headers

    @contextmanager
    def serving(self, **settings: Any) -> Iterator[TestClient]:
        chosen = Settings(database_url=self.database_url, **settings)
        embedded = BackgroundScheduler(chosen, self.catalog)
        embedded.publish_packs(author="test")
        with TestClient(create_app(chosen, embedded=embedded)) as http:
            yield http


@pytest.fixture
def served(database_url: str, store: Store, shipped_catalog: Catalog) -> Served:
    token = issue_token(store, "ops", Role.ADMIN, datetime.now(UTC))
    return Served(database_url, shipped_catalog, {"Authorization": f"Bearer {token}"})


def test_a_run_started_over_http_runs_to_its_end_in_the_api_process(served: Served) -> None:
    with served.serving() as http:
        run_id = execute(http, served.headers, "examples.hello_world", name="Ada")
        document = wait_for_run(http, served.headers, run_id, ended, "ending")
    assert document["status"] == "succeeded", document
    assert document["output"] == {"greeting": "Hello, Ada!"}
    assert treadle_threads() == []


def test_a_run_a_client_starts_on_the_database_is_run_by_the_api_process(
    served: Served,
) -> None:
    with served.serving() as http, Client(served.database_url) as client:
        run_id = client.start("examples.hello_world", {"name": "Lin"})  # found by polling
        document = wait_for_run(http, served.headers, run_id, ended, "ending")
    assert document["status"] == "succeeded", document
    assert document["output"] == {"greeting": "Hello, Lin!"}


def test_an_event_sent_over_http_releases_a_waiting_run(served: Served) -> None:
    with served.serving() as http:
        publish(http, served.headers, AWAIT_PAYMENT)
        run_id = execute(http, served.headers, "shop.await_payment", order="o-7")
        waiting = wait_for_run(
            http,
            served.headers,
            run_id,
            lambda d: task_status(d, "await_payment") == "waiting",
            "waiting for the payment",
        )
        assert waiting["status"] == "running"
        event = {"type": "payment.received", "subject": "orders/o-7", "data": {"amount": 12}}
        sent = http.post("/api/v1/events", headers=served.headers, json=event)
        assert sent.json()["updated_runs"] == [run_id], sent.text
        document = wait_for_run(http, served.headers, run_id, ended, "ending")
    assert document["status"] == "succeeded", document
    assert document["output"] == {"shipped": "shipping o-7, paid 12"}


def test_an_inquiry_answered_over_http_lets_its_run_go_on(served: Served) -> None:
    with served.serving() as http:
        run_id = execute(http, served.headers, "examples.inquiry", version="2.0.0")

        def pending() -> list[Document]:
            page = http.get(
                "/api/v1/inquiries",
                headers=served.headers,
                params={"run": run_id, "status": "pending"},
            )
            items: list[Document] = page.json()["items"]
            return items

        [inquiry] = wait_until(pending, 30, f"run {run_id} asking for approval")
        assert inquiry["prompt"] == "Deploy version 2.0.0 to production?"
        answered = http.post(
            f"/api/v1/inquiries/{inquiry['id']}/respond",
            headers=served.headers,
            json={"approved": True},
        )
        assert answered.status_code == 200, answered.text
        document = wait_for_run(http, served.headers, run_id, ended, "ending")
    assert document["status"] == "succeeded", document
    assert document["output"] == {"decision": "approved"}
    assert [t["name"] for t in document["tasks"]] == ["ask_approval", "deploy"]


def test_a_delay_timer_fires_in_the_api_process(served: Served) -> None:
    with served.serving() as http:
        run_id = execute(http, served.headers, "examples.delay")
        document = wait_for_run(http, served.headers, run_id, ended, "ending")
    assert document["status"] == "succeeded", document
    assert document["output"] == {"first": "first", "second": "second, half a second later"}


def test_an_attempt_not_started_at_shutdown_runs_when_the_api_starts_again(
    served: Served, store: Store
) -> None:
    with served.serving(worker_threads=1) as http:
        publish(http, served.headers, TWO_NAPS)
        run_id = execute(http, served.headers, "shop.two_naps")

        def both_handed_to_the_pool() -> bool:
            with store.snapshot() as uow:
                return uow.pending_outbox_count() == 0

        wait_until(both_handed_to_the_pool, 10, "both naps dispatched")
    # shut down while one nap ran and the other waited for the only worker thread
    assert treadle_threads() == []
    stopped = http_document(served, run_id)
    assert stopped["status"] == "running"
    assert sorted(t["status"] for t in stopped["tasks"]) == ["running", "succeeded"]

    with served.serving(worker_threads=1) as http:
        document = wait_for_run(http, served.headers, run_id, ended, "ending after the restart")
        log = http.get(f"/api/v1/runs/{run_id}/events", headers=served.headers).json()
    assert document["status"] == "succeeded", document
    assert sorted(t["attempts"] for t in document["tasks"]) == [1, 2]
    [lost] = [entry for entry in log["items"] if entry["kind"] == "attempt_lost"]
    assert lost["data"]["error"]["type"] == "SchedulerStopped"


def http_document(served: Served, run_id: str) -> Document:
    """The run's document from an app without a scheduler (nothing moves while reading)."""
    settings = Settings(database_url=served.database_url)
    with TestClient(create_app(settings)) as http:
        response = http.get(f"/api/v1/runs/{run_id}", headers=served.headers)
    assert response.status_code == 200, response.text
    document: Document = response.json()
    return document


# -- the real command -----------------------------------------------------------------------------


@pytest.mark.slow
def test_treadle_api_with_no_settings_runs_what_it_is_sent(tmp_path: Path) -> None:
    folder = tmp_path / "one-machine"
    folder.mkdir()
    env = treadle_environment()  # no TREADLE_* variable: SQLite under ./.treadle
    cli = TreadleCli(folder, env, timeout=60)
    token = cli("tokens", "create", "--name", "me", "--role", "admin", code=0).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    port = free_port()
    process = ServiceProcess(
        "api", ["api", "--port", str(port)], env, tmp_path / "api.log", cwd=folder
    )
    base = f"http://127.0.0.1:{port}"

    try:
        wait_until_serving(process, base)
        with httpx.Client(base_url=base, timeout=10) as http:
            hello = execute(http, headers, "examples.hello_world", name="Grace")
            publish(http, headers, AWAIT_PAYMENT)
            waiting = execute(http, headers, "shop.await_payment", order="o-9")

            document = wait_for_run(http, headers, hello, ended, "ending", timeout=60)
            assert document["status"] == "succeeded", document
            assert document["output"] == {"greeting": "Hello, Grace!"}

            wait_for_run(
                http,
                headers,
                waiting,
                lambda d: task_status(d, "await_payment") == "waiting",
                "waiting for the payment",
                timeout=60,
            )
            event = {"type": "payment.received", "subject": "orders/o-9", "data": {"amount": 3}}
            sent = http.post("/api/v1/events", headers=headers, json=event)
            assert sent.json()["updated_runs"] == [waiting], sent.text
            document = wait_for_run(http, headers, waiting, ended, "ending", timeout=60)
            assert document["status"] == "succeeded", document
            assert document["output"] == {"shipped": "shipping o-9, paid 3"}
        # uvicorn ends the process by the signal it stopped for, once shut down
        assert process.terminate() == -signal.SIGTERM, process.tail()
        assert process.logged("embedded scheduler stopped"), process.tail()
    finally:
        process.close()
    assert (folder / ".treadle" / "treadle.db").is_file()


@pytest.mark.slow
def test_several_workers_on_sqlite_need_no_embedded(tmp_path: Path) -> None:
    cli = TreadleCli(tmp_path, treadle_environment(), timeout=60)
    refused = cli("api", "--workers", "2", "--port", str(free_port()), code=2)
    assert refused.stderr.startswith("error: --workers 2: on SQLite this process also runs")
    assert "use --workers 1, or --no-embedded" in refused.stderr
    assert not (tmp_path / ".treadle").exists()  # refused before opening anything
