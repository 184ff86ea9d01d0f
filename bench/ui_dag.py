"""How long a run page with a 500-task DAG takes to render in headless Chromium.

A throwaway SQLite database holds a workflow of ``--tasks`` tasks (``--width`` per layer,
each task leading to two of the next layer, a with_items task in every layer) and one run
of it; a real ``treadle api --no-embedded`` serves it (no scheduler: the run stays
where it started, which is all a page needs). Debian's chromium (``/usr/bin/chromium``,
headless, driven by Playwright) logs in once, then loads the run's page ``--rounds``
times. Each load is timed from navigation until the DAG's last node is in the document
and the ``load`` event has fired (the server's rendering, the transfer, parsing, layout
and first paint of the SVG included); prints each, then the median and the worst, the
page's size and its node count. The target (issue 15): under a second.

    .venv/bin/python bench/ui_dag.py [--tasks 500] [--width 10] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from treadle.client import Client
from treadle.common.loader import load_packs, load_workflow_text
from treadle.scheduler.store import Store
from treadle.testing.cli import TreadleCli
from treadle.testing.processes import ServiceProcess, treadle_environment, wait_until_serving
from treadle.testing.redis_server import free_port

PACKS = Path(__file__).resolve().parents[1] / "packs"
CHROMIUM = "/usr/bin/chromium"
#: Where the time of a load went, from the browser's navigation timing.
NAVIGATION_PHASES = """() => {
  const t = performance.getEntriesByType("navigation")[0];
  return `first byte ${t.responseStart.toFixed(0)} ms, last byte ${t.responseEnd.toFixed(0)}`
    + ` ms, DOM ready ${t.domContentLoadedEventEnd.toFixed(0)} ms,`
    + ` loaded ${t.loadEventEnd.toFixed(0)} ms`;
}"""


def workflow(tasks: int, width: int) -> str:
    """A layered workflow of ``tasks`` tasks, ``width`` per layer."""
    lines = ["ref: bench.wide", "tasks:"]
    for index in range(tasks):
        layer, position = divmod(index, width)
        lines.append(f"  - name: t{index}")
        lines.append("    action: core.noop")
        if position == 0:
            lines.append("    with_items: [a, b, c]")
        following = [
            n
            for n in ((layer + 1) * width + position, (layer + 1) * width + (position + 1) % width)
            if n < tasks
        ]
        if following:
            lines.append("    next:")
            targets = ", ".join(f"t{n}" for n in following)
            lines.append('      - when: "{{ succeeded() }}"')
            lines.append(f"        do: [{targets}]")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--width", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        url = f"sqlite:///{root / 'bench.db'}"
        Store.open(url).close()
        with Client(url) as client:
            spec = load_workflow_text(workflow(args.tasks, args.width), "<bench>")
            client.register(spec, catalog=load_packs([PACKS]))
            run_id = client.start("bench.wide")
        cli = TreadleCli(root, treadle_environment(database_url=url), timeout=60, in_process=True)
        token = cli(
            "tokens", "create", "--name", "bench", "--role", "viewer", code=0
        ).stdout.strip()
        port = free_port()
        api = ServiceProcess(
            "api",
            ["api", "--port", str(port), "--database", url, "--no-embedded"],
            treadle_environment(log_level="WARNING"),
            root / "api.log",
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(api, base)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox"], headless=True
                )
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(base + "/ui/login")
                page.get_by_label("API token").fill(token)
                page.get_by_role("button", name="Log in").click()
                page.wait_for_url("**/ui/runs")
                last = f'a.node[data-task="t{args.tasks - 1}"]'
                timings = []
                for round_ in range(args.rounds + 1):  # the first warms the caches
                    started = time.perf_counter()
                    page.goto(f"{base}/ui/runs/{run_id}", wait_until="load")
                    page.locator(last).wait_for(state="attached")
                    elapsed = time.perf_counter() - started
                    if round_:
                        timings.append(elapsed)
                        phases = page.evaluate(NAVIGATION_PHASES)
                        print(f"round {round_}: {elapsed * 1000:.0f} ms ({phases})")
                size = len(page.content())
                nodes = page.locator("a.node").count()
                browser.close()
        finally:
            api.close()
    print(
        f"{args.tasks} tasks ({nodes} nodes drawn, page {size / 1024:.0f} KiB): median "
        f"{statistics.median(timings) * 1000:.0f} ms, worst {max(timings) * 1000:.0f} ms "
        f"(target: under 1000 ms)"
    )


if __name__ == "__main__":
    main()
