"""Scale on PostgreSQL: reading a store of 100,000 runs, and 1000 runs waiting at once.

Part 1, on a throwaway PostgreSQL database: a handful of template runs of small workflows
(ended: succeeded, failed, with_items; waiting: on an inquiry, on an event) are
run for real by the embedded runner, then their rows (run, executions, units, event log)
are copied in bulk into ``--runs`` runs with fresh ids over 30 days of creation times (9
in 10 ended). After ``VACUUM ANALYZE`` (what autovacuum does to a table that grew), it
measures through :class:`treadle.Client`:

* list: ``Client.list_runs`` filtered by status, by workflow, by both, and each paged
  through ``--pages`` pages of 50 by cursor;
* get: ``Client.get`` (the whole run document) of random runs.

Part 2, on fresh services (``treadle.testing.running_services``: a real ``treadle
scheduler`` and ``treadle worker -c 2`` on a throwaway database and RabbitMQ vhost):
``--waiting`` runs are started through the client, each runs a no-op task on the worker
and then waits, a third each on an inquiry (``core.ask``), an outside event
(``core.wait_for_event``) and a day-long ``delay`` timer. Once all of them wait, the
scheduler's resident memory (``VmRSS`` of ``/proc/<pid>/status``, and its peak ``VmHWM``)
is read. Every process started is stopped by its pid.

Targets on the 2-core development machine: with 100,000 runs, list p95 under 50 ms and
get p95 under 20 ms; with 1000 waiting runs, scheduler memory under 500 MB.

    .venv/bin/python bench/scale.py [--runs 100000] [--waiting 1000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, select, text

from treadle import Client
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.settings import Settings
from treadle.common.spec import WorkflowSpec
from treadle.common.statuses import RunStatus
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.store import Store
from treadle.scheduler.store.models import (
    event_waits,
    inquiries,
    run_events,
    runs,
    task_executions,
    task_units,
    timers,
)
from treadle.testing import throwaway_postgres_database
from treadle.testing.deployment import running_services

PACKS = Path(__file__).resolve().parents[1] / "packs"
NOW = datetime.now(UTC).replace(microsecond=0)
CHUNK = 5000

#: name -> (workflow text, parameters, share of stored runs, ended?)
TEMPLATES: dict[str, tuple[str, dict[str, Any], int, bool]] = {
    "bench.greet": (
        "tasks:\n  - {name: greet, action: core.echo, input: {message: hello}}\n",
        {},
        30,
        True,
    ),
    "bench.chain": (
        """tasks:
  - {name: one, action: core.echo, input: {message: one}, next: [{do: [two]}]}
  - {name: two, action: core.echo, input: {message: two}, next: [{do: [three]}]}
  - {name: three, action: core.echo, input: {message: three}}
""",
        {},
        25,
        True,
    ),
    "bench.items": (
        'tasks:\n  - {name: each, action: core.noop, with_items: "{{ range(5) | list }}"}\n',
        {},
        20,
        True,
    ),
    "bench.broken": (
        """tasks:
  - {name: prepare, action: core.echo, input: {message: ready}, next: [{do: [explode]}]}
  - {name: explode, action: core.fail, input: {message: the disk is full}}
""",
        {},
        15,
        True,
    ),
    "bench.approve": (
        """tasks:
  - {name: prepare, action: core.noop, next: [{do: [approve]}]}
  - name: approve
    action: core.ask
    input: {prompt: Ship it?, schema: {type: object}, timeout: 86400}
""",
        {},
        5,
        False,
    ),
    "bench.await": (
        """tasks:
  - {name: prepare, action: core.noop, next: [{do: [await]}]}
  - {name: await, action: core.wait_for_event, input: {type: order.paid, timeout: 86400}}
""",
        {},
        5,
        False,
    ),
    "bench.later": (
        """tasks:
  - {name: prepare, action: core.noop, next: [{do: [later]}]}
  - {name: later, action: core.noop, delay: 86400}
""",
        {},
        0,  # the embedded runner would sit out its day-long delay: part 2 only
        False,
    ),
}


def spec(ref: str) -> WorkflowSpec:
    return load_workflow_text(f"ref: {ref}\n{TEMPLATES[ref][0]}", f"bench/{ref}.yaml")


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


# -- part 1: a large store -------------------------------------------------------------------


def template_runs(url: str) -> dict[str, str]:
    """Run each template for real (embedded); returns workflow -> its run's id."""
    made = {}
    with EmbeddedRunner.open(Settings(database_url=url), load_packs([PACKS])) as runner:
        for ref, (_, parameters, share, ended) in TEMPLATES.items():
            if not share:
                continue
            run_id = runner.start(spec(ref), parameters)
            result = runner.follow(run_id)
            assert result.state.status.is_terminal == ended, (ref, result.state.status)
            made[ref] = run_id
    return made


def template_rows(store: Store, run_id: str) -> dict[str, list[dict[str, Any]]]:
    with store.engine.connect() as connection:
        return {
            table.name: [
                dict(row)
                for row in connection.execute(
                    select(table).where(table.c[_run_column(table)] == run_id)
                ).mappings()
            ]
            for table in (runs, task_executions, task_units, run_events)
        }


def _run_column(table: Table) -> str:
    return "id" if table is runs else "run_id"


def clone(rows: dict[str, list[dict[str, Any]]], run_id: str, at: datetime) -> Iterator[Any]:
    """The template's rows as run ``run_id`` created at ``at`` (other times keep their gaps)."""
    base = rows["runs"][0]["created_at"]

    def moved(value: Any) -> Any:
        return at + (value - base) if isinstance(value, datetime) else value

    for table in (runs, task_executions, task_units, run_events):
        for row in rows[table.name]:
            copy = {key: moved(value) for key, value in row.items()}
            copy[_run_column(table)] = run_id
            if table is runs:
                copy["idempotency_key"] = None
                copy["trigger_event_id"] = None
            yield table, copy


def bulk_insert(
    store: Store, templates: dict[str, dict[str, list[dict[str, Any]]]], n: int
) -> list[str]:
    rng = random.Random(42)
    refs = list(TEMPLATES)
    weights = [TEMPLATES[ref][2] for ref in refs]
    span = timedelta(days=30).total_seconds()
    ids: list[str] = []
    pending: dict[str, list[dict[str, Any]]] = {
        t.name: [] for t in (runs, task_executions, task_units, run_events)
    }
    tables = {t.name: t for t in (runs, task_executions, task_units, run_events)}

    def flush() -> None:
        with store.engine.begin() as connection:
            for name, rows in pending.items():
                if rows:
                    connection.execute(tables[name].insert(), rows)
                    rows.clear()

    for i in range(n):
        ref = rng.choices(refs, weights)[0]
        run_id = f"r-{rng.getrandbits(64):016x}"
        at = NOW - timedelta(seconds=span * (1 - i / n) + rng.random())
        for table, row in clone(templates[ref], run_id, at):
            pending[table.name].append(row)
        ids.append(run_id)
        if len(pending["runs"]) >= CHUNK:
            flush()
    flush()
    return ids


def measure_reads(url: str, ids: Sequence[str], pages: int, gets: int) -> dict[str, list[float]]:
    rng = random.Random(7)
    samples: dict[str, list[float]] = {"list by status": [], "list by workflow": []}
    samples.update({"list by status+workflow": [], "list next pages": [], "get": []})
    statuses = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.RUNNING]
    stored = [ref for ref, template in TEMPLATES.items() if template[2]]
    with Client(url) as client:
        client.get(ids[0])  # connect and check the schema once
        for _ in range(30):
            where: list[tuple[str, dict[str, Any]]] = [
                ("list by status", {"status": rng.choice(statuses)}),
                ("list by workflow", {"workflow": rng.choice(stored)}),
                (
                    "list by status+workflow",
                    {"status": RunStatus.SUCCEEDED, "workflow": rng.choice(list(TEMPLATES)[:3])},
                ),
            ]
            for kind, filters in where:
                elapsed, page = timed(lambda f=filters: client.list_runs(limit=50, **f))
                samples[kind].append(elapsed)
                for _ in range(pages - 1):
                    if page.next_cursor is None:
                        break
                    cursor = page.next_cursor
                    elapsed, page = timed(
                        lambda f=filters, c=cursor: client.list_runs(limit=50, cursor=c, **f)
                    )
                    samples["list next pages"].append(elapsed)
        for run_id in rng.sample(list(ids), min(gets, len(ids))):
            elapsed, _ = timed(lambda r=run_id: client.get(r))
            samples["get"].append(elapsed)
    return samples


def part_one(n: int, pages: int, gets: int) -> bool:
    print(f"== {n} stored runs (PostgreSQL) ==")
    with throwaway_postgres_database("treadle_bench_scale") as url:
        made = template_runs(url)
        store = Store.open(url, migrate=False)
        try:
            templates = {ref: template_rows(store, run_id) for ref, run_id in made.items()}
            started = time.perf_counter()
            ids = bulk_insert(store, templates, n)
            inserted = time.perf_counter() - started
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM ANALYZE"))
            with store.engine.connect() as connection:
                counts = {
                    t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in (runs, task_executions, task_units, run_events)
                }
        finally:
            store.close()
        print(f"inserted in {inserted:.1f} s: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        samples = measure_reads(url, ids, pages, gets)
    ok = True
    for kind, values in samples.items():
        p50, p95 = percentiles(values)
        target = 20.0 if kind == "get" else 50.0
        ok = ok and p95 < target
        verdict = "ok" if p95 < target else "MISSED"
        print(
            f"{kind:<24} n={len(values):<4} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms"
            f"  (target p95 < {target:.0f} ms: {verdict})"
        )
    return ok


# -- part 2: runs waiting at once --------------------------------------------------------------


def memory_kb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def waiting_counts(url: str) -> dict[str, int]:
    store = Store.open(url, migrate=False)
    try:
        with store.engine.connect() as connection:

            def count(stmt: Any) -> int:
                return int(connection.execute(stmt).scalar_one())

            return {
                "inquiries": count(
                    select(func.count())
                    .select_from(inquiries)
                    .where(inquiries.c.status == "pending")
                ),
                "event waits": count(select(func.count()).select_from(event_waits)),
                "delay timers": count(
                    select(func.count()).select_from(timers).where(timers.c.kind == "delay")
                ),
            }
    finally:
        store.close()


def part_two(n: int) -> bool:
    print(f"== {n} runs waiting at once (treadle scheduler + worker -c 2) ==")
    waiting = ["bench.approve", "bench.await", "bench.later"]
    with (
        tempfile.TemporaryDirectory() as logs,
        running_services("bench_scale", Path(logs), [PACKS]) as services,
    ):
        scheduler = services.processes[0]
        idle = memory_kb(scheduler.pid)
        with Client(services.database_url) as client:
            client.register_all([spec(ref) for ref in waiting])
            started = time.perf_counter()
            for i in range(n):
                client.start(waiting[i % 3], {})
            start_s = time.perf_counter() - started
            expected = {"inquiries": len(range(0, n, 3)), "event waits": len(range(1, n, 3))}
            expected["delay timers"] = len(range(2, n, 3))
            deadline = time.monotonic() + 300
            while (counts := waiting_counts(services.database_url)) != expected:
                if time.monotonic() > deadline:
                    raise SystemExit(f"not all waiting after 300 s: {counts}\n{services.logs()}")
                time.sleep(0.5)
            all_waiting_s = time.perf_counter() - started
        time.sleep(2)  # let the scheduler settle (a reconcile pass, its caches)
        busy = memory_kb(scheduler.pid)
    print(f"started {n} runs in {start_s:.1f} s; all waiting after {all_waiting_s:.1f} s: {counts}")
    rss_mb, peak_mb = busy["VmRSS"] / 1024, busy["VmHWM"] / 1024
    print(f"scheduler RSS idle {idle['VmRSS'] / 1024:.0f} MB; with {n} waiting {rss_mb:.0f} MB")
    verdict = "ok" if peak_mb < 500 else "MISSED"
    print(f"scheduler peak RSS (VmHWM) {peak_mb:.0f} MB  (target < 500 MB: {verdict})")
    return peak_mb < 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000, help="stored runs (part 1)")
    parser.add_argument("--pages", type=int, default=5, help="pages per listing")
    parser.add_argument("--gets", type=int, default=500, help="runs read one by one")
    parser.add_argument("--waiting", type=int, default=1000, help="runs waiting (part 2)")
    args = parser.parse_args()
    ok = True
    if args.runs:
        ok = part_one(args.runs, args.pages, args.gets) and ok
    if args.waiting:
        ok = part_two(args.waiting) and ok
    print("all targets met" if ok else "some targets missed")


if __name__ == "__main__":
    main()
