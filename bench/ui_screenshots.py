"""The screenshots of docs/ui.md, taken from a real run of the complete deployment example.

The example is the Attune plan's ``complete-workflow.yaml`` (``../shared/conformance/
attune/``, outside the repository; the script stops, saying so, without it), run with the
stub actions of ``tests/conformance/stubs``. As ``tests/conformance`` does, the file's one
defect (``deploy_canary`` sends failures to a task it never defines) is mended in memory by
adding that task; its ref moves to the pack ``deploy``, which this script writes in a
scratch folder only for the ``pack.config.docker_registry`` value the example reads.

A real ``treadle api`` on a scratch SQLite database runs it (its embedded scheduler and
worker pool); Debian's chromium (``/usr/bin/chromium``, headless, driven by Playwright)
logs in as an operator and takes:

* ``ui-run-page.png``: the production path waiting for its approval (controls, the form
  built from the inquiry's schema, why it waits);
* ``ui-dag.png``: the same run's DAG once approved through that form and finished;
* ``ui-timeline.png``: its timeline of attempts;
* ``ui-editor.png``: the file as published, defect included, in the YAML editor of an
  admin after Validate, the cursor moved to the problem's line by its link.

    .venv/bin/python bench/ui_screenshots.py [--out docs/images]

Each PNG is checked to be under 200 KB (the docs' budget); the sizes are printed.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path
from typing import Any

import httpx

from treadle.client import Client
from treadle.common.loader import load_packs, load_workflow_text
from treadle.scheduler.store import Store
from treadle.testing.cli import TreadleCli
from treadle.testing.processes import ServiceProcess, treadle_environment, wait_until_serving
from treadle.testing.redis_server import free_port

REPO = Path(__file__).resolve().parents[1]
PACKS = REPO / "packs"
STUBS = REPO / "tests" / "conformance" / "stubs"
EXAMPLE = REPO.parent / "shared" / "conformance" / "attune" / "complete-workflow.yaml"
CHROMIUM = "/usr/bin/chromium"
MAX_BYTES = 200_000
#: The task the file forgot, added before its output map (as tests/conformance does).
MISSING_TASK = """
  - name: handle_canary_failure
    action: core.noop
    input: {}
"""
OUTPUT_MAP_HEADER = "\n# Workflow output mapping\noutput_map:"
DEPLOY_PACK = """\
ref: deploy
version: "1.0.0"
description: Holds the configuration the complete deployment example reads.
config:
  docker_registry: {type: string}
"""
#: Scrolls the DAG's box to show the pre-deployment checks on its left.
SCROLL_TO_CHECKS = """() => {
  const node = document.querySelector('a.node[data-task="parallel_pre_deployment_checks"]');
  const box = document.querySelector(".dag-scroll");
  box.scrollLeft = node.getBBox().x - 30;
}"""
#: Where the timeline is on the page (its first 720 px): the screenshot's clip.
TIMELINE_BOX = """() => {
  const box = document.getElementById("live-timeline").getBoundingClientRect();
  return {x: box.left + window.scrollX, y: box.top + window.scrollY, width: box.width,
          height: Math.min(box.height, 720)};
}"""
PARAMETERS = {
    "app_name": "shop",
    "version": "2.0.0",
    "regions": ["us-east-1", "eu-west-1"],
    "environment": "production",
}


def mended(text: str) -> str:
    """The example with its missing task added and its ref in the ``deploy`` pack."""
    assert text.count(OUTPUT_MAP_HEADER) == 1, "the example changed: see tests/conformance"
    text = text.replace(OUTPUT_MAP_HEADER, MISSING_TASK + OUTPUT_MAP_HEADER)
    return text.replace("ref: examples.complete_deployment_workflow", "ref: deploy.complete", 1)


def write_deploy_pack(root: Path) -> Path:
    folder = root / "packs" / "deploy"
    folder.mkdir(parents=True)
    (folder / "pack.yaml").write_text(DEPLOY_PACK, encoding="utf-8")
    (folder / "config.yaml").write_text("docker_registry: registry.example.test\n")
    return folder.parent


def log_in(page: Any, base: str, token: str) -> None:
    page.goto(base + "/ui/login")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/ui/runs")


def shoot(target: Any, path: Path, **options: Any) -> None:
    target.screenshot(path=str(path), **options)
    size = path.stat().st_size
    print(f"{path}: {size / 1000:.0f} KB")
    if size > MAX_BYTES:
        raise SystemExit(f"{path} is over {MAX_BYTES // 1000} KB: take a smaller area")


def take(base: str, tokens: dict[str, str], run_id: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"], headless=True
        )
        context = browser.new_context(viewport={"width": 1280, "height": 980})
        context.set_default_timeout(30_000)
        page = context.new_page()
        log_in(page, base, tokens["operator"])
        page.goto(f"{base}/ui/runs/{run_id}")
        form = page.locator("form.inquiry")
        form.wait_for()
        page.locator("#live-why li").first.wait_for()
        shoot(page, out / "ui-run-page.png")

        form.get_by_label("approved").check()
        form.get_by_label("approver_notes").fill("Go ahead: change CHG-1042")
        form.get_by_role("button", name="Answer").click()
        page.locator('#live-status [data-status="succeeded"]').wait_for()
        page.reload()  # the run has ended: nothing swaps the page's parts while shooting
        page.locator('#live-status [data-status="succeeded"]').wait_for()
        # the drawing is some 5000 px wide: its box is scrolled to the checks run in
        # parallel, the with_items deploys and the health checks, as a person would
        page.evaluate(SCROLL_TO_CHECKS)
        shoot(page.locator(".dag-scroll"), out / "ui-dag.png")
        box = page.evaluate(TIMELINE_BOX)
        shoot(page, out / "ui-timeline.png", full_page=True, clip=box)
        context.close()

        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(30_000)
        page = context.new_page()
        log_in(page, base, tokens["admin"])
        page.goto(f"{base}/ui/workflows/new")
        page.get_by_label("Definition (YAML)").fill(EXAMPLE.read_text(encoding="utf-8"))
        page.get_by_role("button", name="Validate").click()
        problem = page.locator(".problems a").first
        problem.wait_for()
        page.evaluate("window.scrollTo(0, document.getElementById('editor').offsetTop - 10)")
        problem.click()  # the cursor to line 236, scrolled into the text area's view
        shoot(page, out / "ui-editor.png")
        context.close()
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    args = parser.parse_args()
    if not EXAMPLE.exists():
        raise SystemExit(f"the complete deployment example is not at {EXAMPLE}")
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        url = f"sqlite:///{root / 'screens.db'}"
        Store.open(url).close()
        pack_paths = [str(STUBS), str(write_deploy_pack(root))]
        catalog = load_packs([PACKS, *map(Path, pack_paths)])
        spec = load_workflow_text(mended(EXAMPLE.read_text(encoding="utf-8")), str(EXAMPLE))
        with Client(url) as client:
            client.register(spec, catalog=catalog)
        cli = TreadleCli(root, treadle_environment(database_url=url), timeout=60, in_process=True)
        tokens = {
            role: cli("tokens", "create", "--name", role, "--role", role, code=0).stdout.strip()
            for role in ("operator", "admin")
        }
        port = free_port()
        api = ServiceProcess(
            "api",
            ["api", "--port", str(port), "--database", url],
            treadle_environment(log_level="WARNING", pack_paths=pack_paths),
            root / "api.log",
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(api, base)
            started = httpx.post(
                f"{base}/api/v1/workflows/deploy.complete/execute",
                json={"parameters": PARAMETERS},
                headers={"Authorization": f"Bearer {tokens['operator']}"},
                timeout=30,
            )
            started.raise_for_status()
            run_id = started.json()["id"]
            assert re.fullmatch(r"r-[0-9a-f]+", run_id), run_id
            take(base, tokens, run_id, args.out)
        finally:
            api.close()
    print("done: see docs/ui.md")


if __name__ == "__main__":
    main()
