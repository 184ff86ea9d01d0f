"""Retry from a failed task in a real browser: headless Debian chromium on a real
``treadle api`` (SQLite, its embedded scheduler running the runs).

Two branches each call a small HTTP server of the test's own through ``core.http``; the
server answers 503 for a branch until the test fixes it, so a branch fails, then succeeds
when retried. The user opens the failed run's failed task, clicks "Retry from this task"
and watches that task (and the task after it) turn green while the other branch stays
failed, and the run ends failed again naming it.
"""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.ui.conftest import PACKS, Deployment, Screens, log_in

from treadle.client import Client
from treadle.common.loader import load_packs, load_workflow_text
from treadle.testing.processes import wait_until

#: A browser and a real API process with its scheduler.
pytestmark = pytest.mark.slow

VENDOR = Path(__file__).parent / "vendor"

BRANCHES = """\
ref: ui.retry_branches
parameters:
  base: {type: string, required: true}
tasks:
  - name: start
    action: core.noop
    next: [{do: [left, right]}]
  - name: left
    action: core.http
    input: {url: "{{ parameters.base }}/left", timeout: 5}
    next: [{when: "{{ succeeded() }}", do: [left_after]}]
  - {name: left_after, action: core.noop}
  - name: right
    action: core.http
    input: {url: "{{ parameters.base }}/right", timeout: 5}
"""


class Flaky:
    """An HTTP server answering 503 on the paths still broken, 200 on the others."""

    def __init__(self) -> None:
        self.broken = {"/left", "/right"}
        self.calls: list[str] = []
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            """Answers every GET by whether its path is still broken."""

            def do_GET(self) -> None:
                flaky.calls.append(self.path)
                status = 503 if self.path in flaky.broken else 200
                body = json.dumps({"path": self.path}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def flaky() -> Iterator[Flaky]:
    made = Flaky()
    yield made
    made.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


def _failed_run(deployment: Deployment, flaky: Flaky) -> str:
    with Client(deployment.url) as client:
        spec = load_workflow_text(textwrap.dedent(BRANCHES), "<retry_branches>")
        client.register(spec, catalog=load_packs([PACKS]))
    started = deployment.api(
        "operator",
        "POST",
        "/api/v1/workflows/ui.retry_branches/execute",
        json={"parameters": {"base": flaky.base}},
    )
    assert started.status_code == 201, started.text
    run_id: str = started.json()["id"]
    wait_until(lambda: _status(deployment, run_id) == "failed", 15, "the run failing")
    return run_id


def _status(deployment: Deployment, run_id: str) -> str:
    status: str = deployment.api("viewer", "GET", f"/api/v1/runs/{run_id}").json()["status"]
    return status


def test_retry_from_a_failed_task_and_watch_it_turn_green(
    deployment: Deployment, page: Any, screens: Screens, flaky: Flaky
) -> None:
    run_id = _failed_run(deployment, flaky)

    log_in(page, deployment, "operator")
    page.goto(f"{deployment.base}/ui/runs/{run_id}")
    assert page.get_by_role("button", name="Retry from this task").count() == 0
    page.locator('a.node[data-task="left"][data-status="failed"]').click()
    page.locator("#live-task").get_by_role("heading", name="Task left").wait_for()
    screens.take(page, "failed-task")

    flaky.broken.discard("/left")  # the cause is fixed, for this branch only
    page.get_by_role("button", name="Retry from this task").click()

    page.locator('a.node[data-task="left"][data-status="succeeded"]').wait_for()
    page.locator('a.node[data-task="left_after"][data-status="succeeded"]').wait_for()
    page.locator('#live-status [data-status="failed"]').wait_for()
    assert page.locator('a.node[data-task="right"]').get_attribute("data-status") == "failed"
    assert "task 'right' failed" in page.locator("#live-status").inner_text()
    assert page.get_by_role("button", name="Retry from this task").count() == 0  # left is green
    screens.take(page, "retried")
    assert flaky.calls.count("/left") == 2
    assert flaky.calls.count("/right") == 1  # the other branch did not run again


def test_the_button_passes_the_accessibility_check_and_works_from_the_keyboard(
    deployment: Deployment, browser: Any, flaky: Flaky
) -> None:
    run_id = _failed_run(deployment, flaky)
    # the pages' Content-Security-Policy refuses inline scripts: axe is let in by the test
    context = browser.new_context(bypass_csp=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        log_in(page, deployment, "operator")
        page.goto(f"{deployment.base}/ui/runs/{run_id}?task=right")
        page.add_script_tag(path=str(VENDOR / "axe.min.js"))
        found = page.evaluate("async () => (await axe.run(document)).violations")
        assert [v["id"] for v in found if v["impact"] in ("serious", "critical")] == []
        flaky.broken.clear()
        for _ in range(80):
            page.keyboard.press("Tab")
            focused = page.evaluate("() => document.activeElement.textContent")
            if focused == "Retry from this task":
                break
        else:
            raise AssertionError("Tab never reached the button")
        page.keyboard.press("Enter")
        page.locator('a.node[data-task="right"][data-status="succeeded"]').wait_for()
        page.locator('#live-status [data-status="failed"]').wait_for()  # left still failed
    finally:
        context.close()
