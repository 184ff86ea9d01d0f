"""A real ``treadle api`` on SQLite (its embedded scheduler runs the runs) and a headless
Debian chromium driven by Playwright, shared by the browser tests of one module.

Skips (with the reason) only when the ``playwright`` package or ``/usr/bin/chromium`` is
missing; CI installs both (``.ci/run``, the ``dev`` extra). Playwright's own browser
download is never used. Screenshots go under the test's temporary folder and, when
``UI_TEST_ARTIFACTS`` names a folder, are copied there too.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.api.conftest import FakeClock

from treadle.api.app import create_app
from treadle.client import Client
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.settings import Settings
from treadle.scheduler.store import Store
from treadle.testing.cli import TreadleCli
from treadle.testing.processes import ServiceProcess, treadle_environment, wait_until_serving
from treadle.testing.redis_server import free_port

CHROMIUM = Path("/usr/bin/chromium")
PACKS = Path(__file__).resolve().parents[2] / "packs"
#: Packs of the browser tests' own (``uitest.say`` prints), served besides the shipped ones.
UI_PACKS = Path(__file__).resolve().parent / "packs"
ARTIFACTS_VARIABLE = "UI_TEST_ARTIFACTS"

#: Runs to the end at once: a fork, a with_items task, a join.
FLOW = """\
ref: ui.flow
description: Greets, fans out and joins.
parameters:
  name: {type: string, default: "Ada"}
  loud: {type: boolean, default: false}
tasks:
  - name: greet
    action: core.echo
    input: {message: "hello {{ parameters.name }}"}
    next:
      - when: "{{ succeeded() }}"
        do: [fan, side]
  - name: fan
    action: core.noop
    with_items: [a, b, c]
    next:
      - do: [done]
  - name: side
    action: core.echo
    input: {message: "side"}
    next:
      - do: [done]
  - name: done
    action: core.noop
    join: all
"""

#: Waits on a person: an inquiry with a schema the UI makes a form of.
ASK = """\
ref: ui.ask
tasks:
  - name: approve
    action: core.ask
    input:
      prompt: "Ship it?"
      schema:
        type: object
        properties:
          approved: {type: boolean}
          comment: {type: string}
          replicas: {type: integer}
          region: {enum: [eu, us]}
        required: [approved, replicas]
    next:
      - when: "{{ succeeded() }}"
        do: [ship]
  - name: ship
    action: core.noop
"""

#: Fails at once: its error and the retry control.
FAIL = """\
ref: ui.fail
tasks:
  - name: boom
    action: core.fail
    input: {message: "the disk is full"}
"""


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return "/usr/bin/chromium is missing (apt-get install chromium; .ci/run installs it)"
    return None


@dataclass
class Deployment:
    """The API's address and a token per role."""

    base: str
    url: str
    tokens: dict[str, str]
    process: ServiceProcess

    def api(self, role: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        return httpx.request(method, self.base + path, headers=headers, timeout=10, **kwargs)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    reason = _missing()
    if reason is not None:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("ui")
    url = f"sqlite:///{root / 'treadle.db'}"
    Store.open(url).close()
    catalog = load_packs([PACKS, UI_PACKS])
    with Client(url) as client:
        for text, name in ((FLOW, "flow"), (ASK, "ask"), (FAIL, "fail")):
            client.register(load_workflow_text(textwrap.dedent(text), f"<{name}>"), catalog=catalog)
    cli = TreadleCli(root, treadle_environment(database_url=url), timeout=60, in_process=True)
    tokens = {}
    for role in ("viewer", "operator", "admin"):
        made = cli("tokens", "create", "--name", f"{role}-1", "--role", role, code=0)
        tokens[role] = made.stdout.strip()
    port = free_port()
    process = ServiceProcess(
        "api",
        ["api", "--port", str(port), "--database", url],
        treadle_environment(log_level="WARNING", pack_paths=[str(PACKS), str(UI_PACKS)]),
        root / "api.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, base)
        yield Deployment(base, url, tokens, process)
    finally:
        process.close()


@pytest.fixture(scope="module")
def browser(deployment: Deployment) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


class Screens:
    """Saves screenshots under the test's folder (and ``$UI_TEST_ARTIFACTS``)."""

    def __init__(self, folder: Path, test: str) -> None:
        self.folder = folder
        self.test = test

    def take(self, page: Any, name: str) -> Path:
        path = self.folder / f"{self.test}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        artifacts = os.environ.get(ARTIFACTS_VARIABLE)
        if artifacts:
            Path(artifacts).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(artifacts) / path.name)
        return path


@pytest.fixture
def screens(tmp_path: Path, request: pytest.FixtureRequest) -> Screens:
    return Screens(tmp_path, request.node.name)


def log_in(page: Any, deployment: Deployment, role: str) -> None:
    """Log ``page`` in with the token of ``role`` through the login form."""
    page.goto(deployment.base + "/ui/login")
    page.get_by_label("API token").fill(deployment.tokens[role])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/ui/runs")


# -- the app in-process on SQLite (the HTTP-level tests: test_ui_*.py) -------------------------


@pytest.fixture
def store(migrated_database_url: Callable[[str], str]) -> Iterator[Store]:
    opened = Store.open(migrated_database_url("sqlite"))
    yield opened
    opened.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def web(store: Store, clock: FakeClock) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=str(store.engine.url)), store=store, clock=clock)
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client
