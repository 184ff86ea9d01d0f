"""Distributed throughput: Treadle's services against bare Celery on the same broker.

One invocation runs, on a throwaway PostgreSQL database and RabbitMQ vhost:

* Treadle: ``treadle scheduler`` (one process) and ``treadle worker -c 2``, runs started
  through the Python client: a with_items of 2000 no-op items; a chain of 200; 100
  workflows of 10 sequential tasks started together. Walls are measured from the first
  start to the last run's ``finished_at`` in the database.
* Bare Celery (``bench/bare_celery.py``): a worker with the same broker and worker settings
  (``common.transport.celery_settings``, quorum queue, concurrency 2): a group of 2000; a
  chain of 200; 100 chains of 10.

It prints both, their ratio, and the p50/p95 time from a task's completion (its attempt's
``finished_at``, on the worker) to its successor's dispatch (the outbox row's ``sent_at``,
in the scheduler), over the chain workloads. Targets on the 2-core development machine:
with_items throughput at least 0.7 of bare Celery's; chain and 100x10 walls at most 1.5
times bare Celery's; completion-to-dispatch p95 under 20 ms.

    .venv/bin/python bench/distributed.py
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

import bare_celery
from treadle import Client
from treadle.common.loader import load_workflow_text
from treadle.common.spec import WorkflowSpec
from treadle.testing import throwaway_postgres_database, throwaway_rabbitmq_vhost

BENCH = Path(__file__).resolve().parent
TREADLE = str(Path(sys.executable).parent / "treadle")


def with_items(n: int) -> WorkflowSpec:
    return load_workflow_text(
        f"""
ref: bench.fan_out
tasks:
  - name: fan_out
    action: core.noop
    with_items: "{{{{ range({n}) | list }}}}"
""",
        "bench/fan_out.yaml",
    )


def chain(n: int, ref: str) -> WorkflowSpec:
    lines = [f"ref: {ref}", "tasks:"]
    for i in range(n):
        lines.append(f"  - name: t{i}\n    action: core.noop")
        if i + 1 < n:
            lines.append(f"    on_success: t{i + 1}")
    return load_workflow_text("\n".join(lines) + "\n", f"bench/{ref}.yaml")


@contextmanager
def processes(*commands: tuple[Sequence[str], dict[str, str]]) -> Iterator[None]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        for argv, env in commands:
            log = open(f"/tmp/treadle-bench-{Path(argv[0]).name}-{len(started)}.log", "wb")  # noqa: SIM115
            started.append(subprocess.Popen(list(argv), env=env, stdout=log, stderr=log, cwd=BENCH))
        yield
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def wait_for_runs(database_url: str, run_ids: Sequence[str], timeout: float) -> datetime:
    """Poll until every run ended; returns the latest ``finished_at``."""
    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as connection:
                rows = connection.execute(
                    text("SELECT status, finished_at FROM runs WHERE id = ANY(:ids)"),
                    {"ids": list(run_ids)},
                ).all()
            if len(rows) == len(run_ids) and all(r.finished_at for r in rows):
                bad = [r.status for r in rows if r.status != "succeeded"]
                if bad:
                    raise SystemExit(f"benchmark runs did not succeed: {bad[:3]}")
                return max(r.finished_at for r in rows)
            if time.monotonic() > deadline:
                raise SystemExit(f"benchmark runs did not end within {timeout} s")
            time.sleep(0.02)
    finally:
        engine.dispose()


def completion_to_dispatch(database_url: str, run_ids: Sequence[str]) -> list[float]:
    """Milliseconds from each task's completion to its successor's dispatch."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            attempts = connection.execute(
                text(
                    "SELECT attempt_id, run_id, execution_id, finished_at FROM attempts "
                    "WHERE run_id = ANY(:ids)"
                ),
                {"ids": list(run_ids)},
            ).all()
            sent = dict(
                connection.execute(
                    # Dispatch rows as this version writes them, or as
                    # earlier versions did (so one script measures both in one sitting).
                    text(
                        "SELECT COALESCE(payload->'dispatch'->>'attempt_id', "
                        "payload->>'attempt_id'), sent_at FROM outbox "
                        "WHERE kind IN ('dispatch_task', 'dispatch') AND run_id = ANY(:ids)"
                    ),
                    {"ids": list(run_ids)},
                ).all()
            )
    finally:
        engine.dispose()
    by_run: dict[str, list[Any]] = {}
    for row in attempts:
        by_run.setdefault(row.run_id, []).append(row)
    gaps: list[float] = []
    for rows in by_run.values():
        rows.sort(key=lambda r: r.execution_id)
        for before, after in itertools.pairwise(rows):
            dispatched = sent.get(after.attempt_id)
            if before.finished_at and dispatched:
                gaps.append((dispatched - before.finished_at).total_seconds() * 1000)
    return gaps


def treadle_side(database_url: str, broker_url: str) -> dict[str, Any]:
    env = dict(
        os.environ,
        TREADLE_DATABASE_URL=database_url,
        TREADLE_BROKER_URL=broker_url,
        TREADLE_LOG_LEVEL="WARNING",
    )
    subprocess.run([TREADLE, "db", "upgrade"], env=env, check=True, capture_output=True)
    fan_out, long_chain, ten = with_items(2000), chain(200, "bench.chain"), chain(10, "bench.ten")
    results: dict[str, Any] = {}
    with (
        processes(
            ([TREADLE, "scheduler"], env),
            ([TREADLE, "worker", "--concurrency", "2", "--loglevel", "WARNING"], env),
        ),
        Client(database_url) as client,
    ):
        for spec in (fan_out, long_chain, ten):
            client.register(spec)
        warm = client.start("bench.ten")  # waits out process start-up
        client.wait(warm, timeout=120)
        for name, ref, runs in (
            ("with_items", "bench.fan_out", 1),
            ("chain", "bench.chain", 1),
            ("many", "bench.ten", 100),
        ):
            started = datetime.now().astimezone()
            run_ids = [client.start(ref) for _ in range(runs)]
            finished = wait_for_runs(database_url, run_ids, timeout=600)
            results[name] = (finished - started).total_seconds()
            if name != "with_items":
                results[f"gaps_{name}"] = completion_to_dispatch(database_url, run_ids)
    return results


def bare_side(broker_url: str) -> dict[str, float]:
    from celery import chain as celery_chain
    from celery import group

    env = dict(os.environ, BARE_CELERY_BROKER=broker_url)
    worker = [
        sys.executable, "-m", "celery", "-A", "bare_celery", "worker",
        "-c", "2", "-Q", bare_celery.QUEUE, "--prefetch-multiplier", "1", "-l", "WARNING",
    ]  # fmt: skip
    app = bare_celery.make_app(broker_url)
    noop = app.signature("bare.noop", queue=bare_celery.QUEUE)
    results: dict[str, float] = {}
    with processes((worker, env)):
        app.send_task("bare.noop", queue=bare_celery.QUEUE).get(timeout=120)  # start-up
        started = time.perf_counter()
        group(noop.clone() for _ in range(2000)).apply_async().get(timeout=600)
        results["with_items"] = time.perf_counter() - started
        started = time.perf_counter()
        celery_chain(*(noop.clone() for _ in range(200))).apply_async().get(timeout=600)
        results["chain"] = time.perf_counter() - started
        started = time.perf_counter()
        pending = [
            celery_chain(*(noop.clone() for _ in range(10))).apply_async() for _ in range(100)
        ]
        for result in pending:
            result.get(timeout=600)
        results["many"] = time.perf_counter() - started
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--treadle-only",
        action="store_true",
        help="measure Treadle alone (comparing two versions of it in one sitting)",
    )
    args = parser.parse_args()
    with throwaway_postgres_database("treadle_bench") as database_url:
        with throwaway_rabbitmq_vhost("treadle_bench") as broker_url:
            ours = treadle_side(database_url, broker_url)
        if args.treadle_only:
            theirs = {}
        else:
            with throwaway_rabbitmq_vhost("bare_bench") as broker_url:
                theirs = bare_side(broker_url)
    rows = [
        ("with_items of 2000 vs group of 2000", "with_items", 2000, "throughput >= 0.7x"),
        ("chain of 200 vs chain of 200", "chain", 200, "wall <= 1.5x"),
        ("100 workflows x 10 vs 100 chains x 10", "many", 1000, "wall <= 1.5x"),
    ]
    print(f"{'workload':<40} {'treadle':>16} {'bare celery':>16} {'ratio':>7}  target")
    for label, key, tasks, target in rows:
        if not theirs:
            print(f"{label:<40} {ours[key]:6.2f} s {tasks / ours[key]:5.0f}/s")
            continue
        mine, bare = ours[key], theirs[key]
        ratio = (tasks / mine) / (tasks / bare) if key == "with_items" else mine / bare
        print(
            f"{label:<40} {mine:6.2f} s {tasks / mine:5.0f}/s {bare:6.2f} s {tasks / bare:5.0f}/s "
            f"{ratio:6.2f}x  {target}"
        )
    for key, label in (("gaps_chain", "the chain of 200"), ("gaps_many", "100 workflows x 10")):
        gaps = sorted(ours[key])
        p50 = statistics.median(gaps)
        p95 = gaps[max(int(len(gaps) * 0.95) - 1, 0)]
        print(
            f"completion -> successor dispatch, {label} ({len(gaps)} steps): "
            f"p50 {p50:.1f} ms, p95 {p95:.1f} ms (target p95 < 20 ms)"
        )


if __name__ == "__main__":
    main()
