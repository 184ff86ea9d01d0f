"""One round of ``bench/distributed.py``'s workloads on a running Treadle, driven by its client.

``bench/distributed.py`` starts ``treadle scheduler`` and ``treadle worker`` on a fresh
database, then runs this script with the interpreter of the same Treadle checkout (this
one, or the one given to ``--compare-with``), so each version is driven by its own
``treadle.Client``. Only stable parts of the API are used: ``Client.register``, ``start``
and ``wait``, ``load_workflow_text``, and SQL on the ``runs``, ``attempts`` and ``outbox``
tables; the runs started at once are started with ``Client.start_many`` (one transaction,
as a user starting a hundred runs would) where the checkout has it, else one by one.
It prints one JSON object on stdout: the wall of each workload (seconds from the first
start to the last run's ``finished_at``), how long starting took, and the
completion -> successor dispatch gaps (ms) of the chain workloads.

    python bench/treadle_driver.py DATABASE_URL '{"items": 2000, "chain": 200, ...}'
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, create_engine, text

from treadle import Client
from treadle.common.loader import load_workflow_text
from treadle.common.spec import WorkflowSpec

#: Every chain of runs started at once ("many", "concurrent") is this many tasks long.
SHORT_CHAIN = 10


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


def wait_for_runs(engine: Engine, run_ids: Sequence[str], timeout: float) -> datetime:
    """Poll (one light query) until every run ended; returns the latest ``finished_at``."""
    query = text(
        "SELECT count(*) AS ended, count(*) FILTER (WHERE status <> 'succeeded') AS bad, "
        "max(finished_at) AS last FROM runs WHERE id = ANY(:ids) AND finished_at IS NOT NULL"
    )
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as connection:
            row = connection.execute(query, {"ids": list(run_ids)}).one()
        if row.bad:
            raise SystemExit(f"{row.bad} benchmark runs did not succeed")
        if row.ended == len(run_ids):
            return row.last  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise SystemExit(f"benchmark runs did not end within {timeout} s")
        time.sleep(0.05)


def completion_to_dispatch(engine: Engine, run_ids: Sequence[str]) -> list[float]:
    """Milliseconds from each task's completion (its attempt's ``finished_at``, on the
    worker) to its successor's dispatch (the outbox row's ``sent_at``, in the scheduler)."""
    with engine.connect() as connection:
        attempts = connection.execute(
            text(
                "SELECT attempt_id, run_id, execution_id, finished_at FROM attempts "
                "WHERE run_id = ANY(:ids)"
            ),
            {"ids": list(run_ids)},
        ).all()
        sent: dict[str, datetime] = dict(
            connection.execute(
                # Dispatch rows as this version writes them, or as earlier versions did
                # (so one script measures both in one sitting).
                text(
                    "SELECT COALESCE(payload->'dispatch'->>'attempt_id', "
                    "payload->>'attempt_id'), sent_at FROM outbox "
                    "WHERE kind IN ('dispatch_task', 'dispatch') AND run_id = ANY(:ids)"
                ),
                {"ids": list(run_ids)},
            ).all()
        )
    by_run: dict[str, list[Any]] = {}
    for row in attempts:
        by_run.setdefault(row.run_id, []).append(row)
    gaps: list[float] = []
    for rows in by_run.values():
        rows.sort(key=lambda r: r.execution_id)
        for before, after in itertools.pairwise(rows):
            dispatched = sent.get(after.attempt_id)
            if before.finished_at and dispatched:
                gaps.append(round((dispatched - before.finished_at).total_seconds() * 1000, 3))
    return gaps


def start(client: Client, ref: str, runs: int) -> list[str]:
    """``runs`` runs of ``ref``: in one batch where the client can, else one by one."""
    many = getattr(client, "start_many", None)
    if runs > 1 and many is not None:
        return list(many(ref, [{}] * runs))
    return [client.start(ref) for _ in range(runs)]


def run_round(database_url: str, sizes: dict[str, int]) -> dict[str, Any]:
    workloads = (  # name, workflow, runs started at once
        ("with_items", with_items(sizes["items"]), 1),
        ("chain", chain(sizes["chain"], "bench.chain"), 1),
        ("many", chain(SHORT_CHAIN, "bench.ten"), sizes["many"]),
        ("concurrent", chain(SHORT_CHAIN, "bench.ten"), sizes["concurrent"]),
    )
    results: dict[str, Any] = {"gaps": {}, "start": {}}
    engine = create_engine(database_url)
    try:
        with Client(database_url) as client:
            for _, spec, _ in workloads:
                client.register(spec)
            warm = client.start("bench.ten")  # waits out the processes' start-up
            client.wait(warm, timeout=120)
            for name, spec, runs in workloads:
                started = datetime.now().astimezone()
                run_ids = start(client, spec.ref, runs)
                results["start"][name] = (datetime.now().astimezone() - started).total_seconds()
                finished = wait_for_runs(engine, run_ids, timeout=900)
                results[name] = (finished - started).total_seconds()
                if name != "with_items":
                    results["gaps"][name] = completion_to_dispatch(engine, run_ids)
    finally:
        engine.dispose()
    return results


if __name__ == "__main__":
    print(json.dumps(run_round(sys.argv[1], json.loads(sys.argv[2]))))
