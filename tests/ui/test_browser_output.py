"""A task's page shows each attempt's input and what its action printed, in a real browser.

The module's ``treadle api`` (SQLite, its embedded scheduler and worker pool) runs
``uitest.say`` (tests/ui/packs), which prints a line on stdout and one on stderr; its
text holds a secret run parameter, shown as ``***`` in the input and in the output.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from tests.ui.conftest import PACKS, UI_PACKS, Deployment, Screens, log_in

from treadle.client import Client
from treadle.common.loader import load_packs, load_workflow_text
from treadle.testing.processes import wait_until

pytestmark = pytest.mark.slow

VENDOR = Path(__file__).parent / "vendor"
TOKEN = "tok-Ui4Kd8Mz2Rf6"

SAY = """\
ref: ui.say
parameters:
  token: {type: string, secret: true, required: true}
tasks:
  - name: speak
    action: uitest.say
    input: {text: "hello with {{ parameters.token }}"}
"""


@pytest.fixture(scope="module")
def said(deployment: Deployment) -> str:
    """A finished run of ``ui.say``: its id."""
    with Client(deployment.url) as client:
        spec = load_workflow_text(textwrap.dedent(SAY), "<say>")
        client.register(spec, catalog=load_packs([PACKS, UI_PACKS]))
    answer = deployment.api(
        "operator",
        "POST",
        "/api/v1/workflows/ui.say/execute",
        json={"parameters": {"token": TOKEN}},
    )
    assert answer.status_code == 201, answer.text
    run_id: str = answer.json()["id"]

    def ended() -> bool:
        status = deployment.api("viewer", "GET", f"/api/v1/runs/{run_id}").json()["status"]
        assert status in ("pending", "running", "succeeded"), status
        return bool(status == "succeeded")

    wait_until(ended, 30, f"run {run_id} succeeded")
    return run_id


@pytest.fixture
def page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


def test_a_task_page_shows_the_attempt_s_input_and_printed_lines(
    deployment: Deployment, said: str, page: Any, screens: Screens
) -> None:
    log_in(page, deployment, "viewer")
    page.goto(f"{deployment.base}/ui/runs/{said}")
    page.locator('a.node[data-task="speak"]').click()
    page.wait_for_url(f"**/ui/runs/{said}?task=speak*")

    task = page.locator("#live-task")
    attempt = task.get_by_role("article", name="Attempt 1 (execution #1)")
    assert attempt.get_by_role("heading", level=4).inner_text().endswith("succeeded")
    shown_input = attempt.get_by_label("Input of attempt 1 (execution #1)")
    assert '"text": "hello with ***"' in shown_input.inner_text()
    stdout = attempt.get_by_label("Standard output of attempt 1 (execution #1)")
    stderr = attempt.get_by_label("Standard error of attempt 1 (execution #1)")
    assert stdout.inner_text().strip() == "saying: hello with ***"
    assert stderr.inner_text().strip() == "a warning on stderr"
    assert TOKEN not in page.content()
    screens.take(page, "task-output")


def test_the_task_page_with_its_output_passes_the_accessibility_check(
    deployment: Deployment, said: str, browser: Any
) -> None:
    # the pages' Content-Security-Policy refuses inline scripts: axe is let in by the test
    page = browser.new_context(bypass_csp=True).new_page()
    try:
        log_in(page, deployment, "viewer")
        page.goto(f"{deployment.base}/ui/runs/{said}?task=speak")
        page.add_script_tag(path=str(VENDOR / "axe.min.js"))
        found = page.evaluate("async () => (await axe.run(document)).violations")
    finally:
        page.context.close()
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []
