"""Embedded-mode throughput: what ``treadle run`` does on one machine, measured.

Three workloads, each on a fresh SQLite database, through the real embedded runner (the
scheduler core, the store, the outbox relay and the in-process worker pool running the
core pack's ``noop`` action):

* a with_items of 5000 no-op items;
* a chain of 200 no-op tasks;
* 100 workflows of 10 sequential no-op tasks, started together.

It prints tasks per second and wall time for each (best of ``--repeat`` runs). Targets on
the 2-core development machine: at least 1500 tasks/s for with_items, the chain under 1 s.

    .venv/bin/python bench/embedded.py [--repeat 3] [--threads 8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import treadle
from treadle.common.heap import claim_process, freeze_start_up
from treadle.common.limits import Limits
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.settings import Settings
from treadle.common.spec import WorkflowSpec
from treadle.common.statuses import RunStatus
from treadle.embedded import EmbeddedRunner


def with_items(n: int) -> WorkflowSpec:
    return load_workflow_text(
        f"""
ref: bench.with_items
tasks:
  - name: fan_out
    action: core.noop
    with_items: "{{{{ range({n}) | list }}}}"
""",
        "bench/with_items.yaml",
    )


def chain(n: int, ref: str = "bench.chain") -> WorkflowSpec:
    lines = [f"ref: {ref}", "tasks:"]
    for i in range(n):
        lines.append(f"  - name: t{i}\n    action: core.noop")
        if i + 1 < n:
            lines.append(f"    on_success: t{i + 1}")
    return load_workflow_text("\n".join(lines) + "\n", f"bench/{ref}.yaml")


def measure(spec: WorkflowSpec, runs: int, tasks: int, threads: int) -> tuple[float, float]:
    """Wall seconds from the first start to the last run's end, and tasks per second."""
    catalog = load_packs([Path(treadle.__file__).parent / "packs"])
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            database_url=f"sqlite:///{folder}/bench.db",
            worker_threads=threads,
            limits=Limits(max_items=10_000),
        )
        with EmbeddedRunner.open(settings, catalog) as runner:
            freeze_start_up()  # as `treadle run` does once its runner is open
            started = time.perf_counter()
            run_ids = [runner.start(spec, {}) for _ in range(runs)]
            outcomes = runner.follow_all(run_ids)
            wall = time.perf_counter() - started
    failed = [r for r in outcomes.values() if r.state.status is not RunStatus.SUCCEEDED]
    if failed:
        raise SystemExit(f"a benchmark run did not succeed: {failed[0].state.error}")
    return wall, tasks / wall


def main() -> None:
    claim_process()  # this script's process stands in for `treadle run`'s
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per workload (best is kept)")
    parser.add_argument("--threads", type=int, default=Settings().worker_threads)
    args = parser.parse_args()

    cases: list[tuple[str, Callable[[], WorkflowSpec], int, int, str]] = [
        ("with_items of 5000 no-op items", lambda: with_items(5000), 1, 5000, ">= 1500 tasks/s"),
        ("chain of 200 no-op tasks", lambda: chain(200), 1, 200, "< 1 s"),
        ("100 workflows x 10 sequential tasks", lambda: chain(10, "bench.ten"), 100, 1000, ""),
    ]
    print(
        f"treadle {treadle.__version__} embedded, {args.threads} worker threads, "
        f"best of {args.repeat}"
    )
    for name, build, runs, tasks, target in cases:
        spec = build()
        walls = []
        for _ in range(args.repeat):
            wall, _rate = measure(spec, runs, tasks, args.threads)
            walls.append(wall)
        best = min(walls)
        print(
            f"{name:<40} {tasks / best:8.0f} tasks/s  {best:6.2f} s best  "
            f"{statistics.median(walls):6.2f} s median  {('target ' + target) if target else ''}"
        )


if __name__ == "__main__":
    main()
