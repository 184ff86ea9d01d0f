"""The YAML editor in a real browser: headless Debian chromium on a real ``treadle api``.

Edit a definition, validate it, see a problem at its line, follow the problem's link to
put the cursor there, fix it, publish it and see the new version and its diff; and the
editor page passes the accessibility check. The server and browser are
``tests/ui/conftest.py``'s (one per module).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.ui.conftest import Deployment, Screens, log_in

#: A browser and a real API process: about 15 s for the module.
pytestmark = pytest.mark.slow

VENDOR = Path(__file__).parent / "vendor"
#: Fails the accessibility check: axe-core's two worst impacts.
SERIOUS = ("serious", "critical")

#: Published through the JSON API first, so that the workspace owns it.
EDIT_ME = """\
ref: ui.edit_me
parameters:
  name: {type: string, default: world}
tasks:
  - name: greet
    action: core.echo
    input: {message: "hello {{ parameters.name }}"}
"""
#: The edit, with a typo on line 7 (column 5): the action's input is missing.
TYPO = EDIT_ME.replace('    input: {message: "hello', '    inptu: {message: "good morning')


@pytest.fixture(scope="module")
def edit_me(deployment: Deployment) -> str:
    answer = httpx.put(
        deployment.base + "/api/v1/workflows/ui.edit_me",
        content=EDIT_ME,
        headers={
            "Authorization": f"Bearer {deployment.tokens['admin']}",
            "Content-Type": "application/yaml",
        },
        timeout=10,
    )
    assert answer.status_code in (200, 201), answer.text
    return "ui.edit_me"


@pytest.fixture
def page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


def _cursor(page: Any) -> tuple[int, int]:
    """The text area's cursor as (line, column), both from 1."""
    found: list[int] = page.evaluate(
        """() => {
          const area = document.getElementById("definition-yaml");
          const before = area.value.slice(0, area.selectionStart).split("\\n");
          return [before.length, before[before.length - 1].length + 1];
        }"""
    )
    return found[0], found[1]


def test_edit_validate_follow_a_problem_to_its_line_fix_it_and_publish(
    deployment: Deployment, edit_me: str, page: Any, screens: Screens
) -> None:
    log_in(page, deployment, "admin")
    page.goto(f"{deployment.base}/ui/workflows/{edit_me}")
    area = page.get_by_label("Definition (YAML)")
    assert "ref: ui.edit_me" in area.input_value()
    area.fill(TYPO)
    page.get_by_role("button", name="Validate").click()
    page.wait_for_url("**/ui/workflows/ui.edit_me/definition#editor-outcome")
    outcome = page.locator("#editor-outcome")
    assert "2 problems: nothing was stored" in outcome.inner_text()
    # the form posts to #editor-outcome: the browser focuses what it found, no script needed
    assert page.evaluate("document.activeElement.id") == "editor-outcome"
    problem = page.get_by_role("link", name="Error at line 7, column 5, tasks[0].inptu")
    assert "unknown field 'inptu'" in (problem.locator("xpath=..").inner_text())
    marked = page.locator(".gutter .mark-error")
    assert [text.split() for text in marked.all_inner_texts()] == [["✗", "6"], ["✗", "7"]]
    assert area.input_value() == TYPO  # the text as it was sent
    screens.take(page, "problems")

    problem.click()
    assert page.evaluate("document.activeElement.id") == "definition-yaml"
    assert _cursor(page) == (7, 5)
    for _ in "inptu":
        page.keyboard.press("Delete")
    page.keyboard.type("input")
    fixed = TYPO.replace("inptu", "input")
    assert area.input_value() == fixed

    page.keyboard.press("Tab")  # the text area keeps no focus: Tab moves on
    assert page.evaluate("document.activeElement.textContent") == "Validate"
    # The form posts to the page's own address: wait for that navigation, not for a URL.
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Valid: ui.edit_me can be published" in page.locator("#editor-outcome").inner_text()
    page.get_by_role("button", name="Publish").click()
    page.wait_for_url(re.compile(r".*/ui/workflows/ui\.edit_me\?published=2#notice$"))
    assert page.evaluate("document.activeElement.id") == "notice"
    assert page.get_by_role("status").inner_text().strip() == (
        "✓ Published version 2. What changed since version 1."
    )
    assert page.get_by_role("row").filter(has_text="2 (shown)").is_visible()
    page.get_by_role("link", name="What changed since version 1").click()
    page.wait_for_url("**/ui/workflows/ui.edit_me/diff?to=2")
    diff = page.locator("pre").inner_text()
    assert "+    message: good morning {{ parameters.name }}" in diff
    versions = deployment.api("viewer", "GET", "/api/v1/workflows/ui.edit_me/versions").json()
    assert [(v["version"], v["author"]) for v in versions["versions"]] == [
        (1, "token:admin-1"),
        (2, "token:admin-1"),
    ]


def _serious_violations(page: Any) -> list[str]:
    page.add_script_tag(path=str(VENDOR / "axe.min.js"))
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in SERIOUS
    ]


def test_the_editor_passes_an_accessibility_check(
    deployment: Deployment, edit_me: str, browser: Any
) -> None:
    # the pages' Content-Security-Policy refuses inline scripts: axe is let in by the test
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, deployment, "admin")
    page.goto(f"{deployment.base}/ui/workflows/new")
    problems = {"new": _serious_violations(page)}
    page.goto(f"{deployment.base}/ui/workflows/{edit_me}")
    page.get_by_label("Definition (YAML)").fill(TYPO.replace("default: world", "default: [oops"))
    page.get_by_role("button", name="Validate").click()
    page.locator(".problems").wait_for()
    problems["with problems"] = _serious_violations(page)
    context.close()
    assert problems == {name: [] for name in problems}
