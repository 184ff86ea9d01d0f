"""How long reading a big run takes: the run document with and without items, and a page.

A run whose with_items task has 3000 items (a realistic mix of results and failures) is
stored once; then, each in its own snapshot as ``Client.get`` does, the run document is
built summarised (the default: counts by status and the first failures, no unit loaded),
with every item, and one page of 100 items is read. Prints the median and p95 in
milliseconds, on SQLite and on PostgreSQL (a throwaway database on the local server).

    .venv/bin/python bench/read_run.py [--items 3000] [--reads 50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core.state import Execution, RunState, Unit, initial_state
from treadle.scheduler.service.run_document import item_page, stored_run_document
from treadle.scheduler.store import Store
from treadle.testing import throwaway_postgres_database

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def big_state(items: int) -> RunState:
    """A run: a first task, then a with_items task over ``items`` items, 1 in 50 failed."""
    units = []
    for i in range(items):
        failed = i % 50 == 7
        units.append(
            Unit(
                index=i,
                item={"host": f"web-{i}", "port": 8000 + i},
                status=TaskStatus.FAILED if failed else TaskStatus.SUCCEEDED,
                attempt=3 if failed else 1,
                result=None if failed else {"ok": True, "latency": i / 7, "tags": ["a", "b"]},
                error={"type": "Boom", "message": f"item {i} broke"} if failed else None,
                started_at=T0,
                finished_at=T0 + timedelta(seconds=1),
                result_bytes=0 if failed else 48,
            )
        )
    first = Execution(
        id=1,
        task="prepare",
        scope=0,
        status=TaskStatus.SUCCEEDED,
        started_at=T0,
        finished_at=T0,
        units=(Unit(index=None, status=TaskStatus.SUCCEEDED, attempt=1, result={"n": items}),),
    )
    fan_out = Execution(
        id=2,
        task="fan_out",
        scope=0,
        status=TaskStatus.FAILED,
        started_at=T0,
        finished_at=T0 + timedelta(minutes=1),
        units=tuple(units),
        with_items=True,
        done=items,
    )
    return replace(
        initial_state("bench-run", "bench.fan_out", T0),
        status=RunStatus.FAILED,
        executions={1: first, 2: fan_out},
    )


def timed(store: Store, read: Callable[..., object], reads: int) -> list[float]:
    took = []
    for _ in range(reads):
        started = time.perf_counter()
        with store.snapshot() as uow:
            read(uow)
        took.append((time.perf_counter() - started) * 1000)
    return took


def measure(label: str, url: str, items: int, reads: int) -> None:
    store = Store.open(url)
    try:
        with store.unit_of_work() as uow:
            uow.insert_run(big_state(items))
        cases: dict[str, Callable[..., object]] = {
            "document without items": lambda uow: stored_run_document(uow, "bench-run"),
            "document with items": lambda uow: stored_run_document(uow, "bench-run", items=True),
            "one page of 100 items": lambda uow: item_page(uow, "bench-run", "fan_out"),
        }
        for name, read in cases.items():
            timed(store, read, 3)  # warm up: statement caches, connection pool
            took = sorted(timed(store, read, reads))
            p95 = took[max(0, int(len(took) * 0.95) - 1)]
            print(
                f"{label:<11} {name:<24} {statistics.median(took):7.2f} ms median (p95 {p95:7.2f})"
            )
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--reads", type=int, default=50)
    args = parser.parse_args()
    print(f"a run with a {args.items}-item with_items task, {args.reads} reads each")
    with tempfile.TemporaryDirectory() as folder:
        measure("SQLite", f"sqlite:///{Path(folder) / 'bench.db'}", args.items, args.reads)
    with throwaway_postgres_database("treadle_bench") as url:
        measure("PostgreSQL", url, args.items, args.reads)


if __name__ == "__main__":
    main()
