"""The web UI in a real browser: headless Debian chromium on a real ``treadle api``.

One API process (SQLite, its embedded scheduler running the runs) and one browser serve
the whole module; each test has its own browser context (its own cookies).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from tests.ui.conftest import Deployment, Screens, log_in

from treadle.testing.processes import wait_until

#: A browser and a real API process with its scheduler: about 30 s for the module.
pytestmark = pytest.mark.slow

VENDOR = Path(__file__).parent / "vendor"
#: Fails the accessibility check: axe-core's two worst impacts.
SERIOUS = ("serious", "critical")


@pytest.fixture
def page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


def _start(deployment: Deployment, ref: str, parameters: dict[str, Any] | None = None) -> str:
    answer = deployment.api(
        "operator",
        "POST",
        f"/api/v1/workflows/{ref}/execute",
        json={"parameters": parameters or {}},
    )
    assert answer.status_code == 201, answer.text
    run_id: str = answer.json()["id"]
    return run_id


def _run_status(deployment: Deployment, run_id: str) -> str:
    status: str = deployment.api("viewer", "GET", f"/api/v1/runs/{run_id}").json()["status"]
    return status


def _waiting(deployment: Deployment, run_id: str) -> None:
    def asked() -> bool:
        document = deployment.api("viewer", "GET", f"/api/v1/runs/{run_id}").json()
        return any(i["status"] == "pending" for i in document["inquiries"])

    wait_until(asked, 15, f"run {run_id} waiting on its inquiry")


def test_log_in_start_a_run_and_watch_its_dag_turn_green(
    deployment: Deployment, page: Any, screens: Screens
) -> None:
    page.goto(deployment.base + "/")
    assert "/ui/login" in page.url  # no session: the login page first
    log_in(page, deployment, "operator")
    assert page.get_by_text("operator-1 (operator, workspace default)").is_visible()
    page.goto(deployment.base + "/ui/workflows/ui.flow")
    page.get_by_label("name").fill("Grace")
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r".*/ui/runs/r-[0-9a-f]+$"))
    for task in ("greet", "fan", "side", "done"):
        page.locator(f'a.node[data-task="{task}"][data-status="succeeded"]').wait_for()
    assert page.locator("#live-status .badge").inner_text().endswith("succeeded")
    assert "3/3 items" in (page.locator('a.node[data-task="fan"]').text_content() or "")
    assert '"name": "Grace"' in page.locator("#live-vars pre").inner_text()
    screens.take(page, "run")
    page.locator('a.node[data-task="fan"]').click()
    assert page.locator("#live-task").get_by_text("3 — 3 succeeded").is_visible()


def test_a_run_page_follows_changes_made_elsewhere_without_a_reload(
    deployment: Deployment, page: Any
) -> None:
    run_id = _start(deployment, "ui.ask")
    _waiting(deployment, run_id)
    log_in(page, deployment, "viewer")
    page.goto(f"{deployment.base}/ui/runs/{run_id}")
    assert page.locator('a.node[data-task="ship"]').get_attribute("data-status") == "not-started"
    page.evaluate("() => { window.stillThisPage = true; }")
    [inquiry] = deployment.api("viewer", "GET", f"/api/v1/inquiries?run={run_id}").json()["items"]
    answered = deployment.api(
        "operator",
        "POST",
        f"/api/v1/inquiries/{inquiry['id']}/respond",
        json={"approved": True, "replicas": 1},
    )
    assert answered.status_code == 200, answered.text
    page.locator('a.node[data-task="ship"][data-status="succeeded"]').wait_for()
    assert page.locator("#live-announce").inner_text() == "Run status: succeeded"
    assert page.evaluate("() => window.stillThisPage === true")  # swapped in, not reloaded


def test_answer_an_inquiry_through_its_form(
    deployment: Deployment, page: Any, screens: Screens
) -> None:
    run_id = _start(deployment, "ui.ask")
    _waiting(deployment, run_id)
    log_in(page, deployment, "operator")
    page.goto(f"{deployment.base}/ui/runs/{run_id}")
    form = page.locator("form.inquiry")
    assert form.get_by_text("Ship it?").is_visible()
    form.get_by_label("approved (required)").check()
    form.get_by_label("replicas (required)").fill("3")
    form.get_by_label("region").select_option(label='"us"')
    screens.take(page, "form")
    form.get_by_role("button", name="Answer").click()
    page.locator('a.node[data-task="ship"][data-status="succeeded"]').wait_for()
    [inquiry] = deployment.api("viewer", "GET", f"/api/v1/inquiries?run={run_id}").json()["items"]
    assert inquiry["response"] == {"approved": True, "replicas": 3, "region": "us"}
    assert inquiry["responder"] == "token:operator-1"


def test_cancel_a_run(deployment: Deployment, page: Any, screens: Screens) -> None:
    run_id = _start(deployment, "ui.ask")
    _waiting(deployment, run_id)
    log_in(page, deployment, "operator")
    page.goto(f"{deployment.base}/ui/runs/{run_id}")
    page.get_by_label("Reason").fill("not today")
    page.get_by_role("button", name="Cancel run").click()
    page.locator('#live-status [data-status="canceled"]').wait_for()
    assert page.get_by_role("button", name="Cancel run").count() == 0
    assert page.get_by_role("button", name="Retry").is_visible()
    screens.take(page, "canceled")
    document = deployment.api("viewer", "GET", f"/api/v1/runs/{run_id}").json()
    assert document["status"] == "canceled"
    assert "not today" in json.dumps(document["error"])


def test_a_failed_task_shows_its_error(deployment: Deployment, page: Any) -> None:
    run_id = _start(deployment, "ui.fail")
    wait_until(lambda: _run_status(deployment, run_id) == "failed", 15, "the run failing")
    log_in(page, deployment, "operator")
    page.goto(f"{deployment.base}/ui/runs/{run_id}?task=boom")
    assert page.locator("#live-task").get_by_text("the disk is full").first.is_visible()
    assert page.locator('a.node[data-task="boom"]').get_attribute("data-status") == "failed"
    assert page.get_by_role("button", name="Retry", exact=True).is_visible()


def test_a_schedule_and_its_fires(deployment: Deployment, page: Any, screens: Screens) -> None:
    made = deployment.api(
        "admin",
        "POST",
        "/api/v1/schedules",
        json={"name": "hourly-flow", "workflow": "ui.flow", "interval_seconds": 3600},
    )
    assert made.status_code == 201, made.text
    log_in(page, deployment, "admin")
    page.get_by_role("link", name="Schedules").click()
    row = page.get_by_role("row").filter(has_text="hourly-flow")
    assert "every 3600 s" in row.inner_text()
    assert "active" in row.inner_text()
    row.get_by_role("link", name="hourly-flow").click()
    page.get_by_role("button", name="Trigger now").click()
    fire = page.locator("table.fires tbody tr").first
    assert "manual" in fire.inner_text()
    assert "started" in fire.inner_text()
    run_link = fire.get_by_role("link")
    assert run_link.inner_text().startswith("r-")
    page.get_by_label("Reason").fill("maintenance")
    page.get_by_role("button", name="Pause").click()
    assert page.get_by_text("paused: maintenance").is_visible()
    screens.take(page, "schedule")


def test_a_viewer_sees_no_controls_and_cannot_post_them(deployment: Deployment, page: Any) -> None:
    run_id = _start(deployment, "ui.ask")
    _waiting(deployment, run_id)
    log_in(page, deployment, "viewer")
    page.goto(f"{deployment.base}/ui/runs/{run_id}")
    page.locator("#live-inquiries").get_by_text("Ship it?").wait_for()
    assert page.locator("main button").count() == 0
    assert page.locator("main input:not([type=hidden]), main select, main textarea").count() == 0
    assert page.get_by_role("link", name="Send an event").count() == 0
    assert page.get_by_role("link", name="Schedules").count() == 0
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    forged = page.request.post(
        f"{deployment.base}/ui/runs/{run_id}/control/cancel", form={"csrf": csrf}
    )
    assert forged.status == 403
    assert "needs the operator role" in forged.text()
    assert _run_status(deployment, run_id) == "running"


def _tab_to(page: Any, predicate: str, limit: int = 80) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => {{ const e = document.activeElement; return {predicate}; }}"):
            return
    raise AssertionError(f"Tab never reached an element where {predicate}")


def test_one_whole_flow_with_the_keyboard_only(deployment: Deployment, page: Any) -> None:
    page.goto(deployment.base + "/ui/login")
    page.keyboard.type(deployment.tokens["operator"])  # the token field has the focus
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/runs")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    _tab_to(page, "e.textContent === 'Workflows'")
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/workflows")
    _tab_to(page, "e.textContent === 'ui.ask'")
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/workflows/ui.ask")
    _tab_to(page, "e.textContent === 'Start run'")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/ui/runs/r-[0-9a-f]+$"))
    page.locator("form.inquiry").wait_for()
    _tab_to(page, "e.name === 'f.approved'")
    page.keyboard.press("Space")
    _tab_to(page, "e.name === 'f.replicas'")
    page.keyboard.type("2")
    _tab_to(page, "e.textContent === 'Answer'")
    page.keyboard.press("Enter")
    page.locator('#live-status [data-status="succeeded"]').wait_for()


def _serious_violations(page: Any) -> list[str]:
    page.add_script_tag(path=str(VENDOR / "axe.min.js"))
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in SERIOUS
    ]


def test_the_pages_pass_an_accessibility_check(deployment: Deployment, browser: Any) -> None:
    run_id = _start(deployment, "ui.ask")
    _waiting(deployment, run_id)
    # the pages' Content-Security-Policy refuses inline scripts: axe is let in by the test
    page = browser.new_context(bypass_csp=True).new_page()
    page.goto(deployment.base + "/ui/login")
    problems = {"login": _serious_violations(page)}
    log_in(page, deployment, "admin")
    for name, path in (
        ("runs", "/ui/runs"),
        ("run", f"/ui/runs/{run_id}?task=approve"),
        ("workflow", "/ui/workflows/ui.flow"),
        ("schedules", "/ui/schedules"),
        ("events", "/ui/events"),
    ):
        page.goto(deployment.base + path)
        problems[name] = _serious_violations(page)
    page.context.close()
    assert problems == {name: [] for name in problems}
