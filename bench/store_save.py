"""How long the store takes to save a run whose 5000-item execution had 50 items change.

Prints milliseconds per save (``lock_runs`` and ``save_runs``, and per commit) on SQLite
and on PostgreSQL, plus the cost of the first insert and of a full load for reference.
PostgreSQL uses a throwaway database on ``TREADLE_TEST_POSTGRES_URL`` (default: the local
server, user postgres).

    .venv/bin/python bench/store_save.py [--items 5000] [--changed 50] [--saves 50]
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
from treadle.scheduler.service.commands import CommandHandlers
from treadle.scheduler.store import RunChange, Store
from treadle.testing import throwaway_postgres_database

T0 = datetime(2024, 5, 1, tzinfo=UTC)


WRITE_COMMANDS = CommandHandlers("treadle.tasks").write


def big_state(items: int) -> RunState:
    units = tuple(Unit(index=i, item={"n": i}) for i in range(items))
    execution = Execution(
        id=1,
        task="fan_out",
        scope=0,
        status=TaskStatus.RUNNING,
        started_at=T0,
        units=units,
        with_items=True,
    )
    return replace(
        initial_state("bench-run", "bench.fan_out", T0),
        status=RunStatus.RUNNING,
        executions={1: execution},
    )


def step(state: RunState, round_no: int, changed: int) -> RunState:
    """The next state, as the core makes it: ``changed`` units are new objects."""
    execution = state.executions[1]
    units = list(execution.units)
    stride = max(1, len(units) // changed)
    for k in range(changed):
        position = (k * stride + round_no) % len(units)
        units[position] = replace(
            units[position],
            status=TaskStatus.SUCCEEDED,
            attempt=units[position].attempt + 1,
            result={"ok": True, "round": round_no},
            finished_at=T0 + timedelta(seconds=round_no),
        )
    new_execution = replace(execution, units=tuple(units), done=execution.done + changed)
    return replace(state, executions={1: new_execution}, uuid_counter=state.uuid_counter + 1)


def measure(label: str, url: str, items: int, changed: int, saves: int) -> None:
    store = Store.open(url)
    try:
        state = big_state(items)
        started = time.perf_counter()
        with store.unit_of_work() as uow:
            uow.insert_run(state)
        insert_ms = (time.perf_counter() - started) * 1000
        save_ms: list[float] = []
        commit_ms: list[float] = []
        for round_no in range(saves):
            new = step(state, round_no, changed)
            with store.unit_of_work() as uow:
                started = time.perf_counter()
                versions = uow.lock_runs([new.run_id])
                change = RunChange(state, new, [], [])
                uow.save_runs([change], versions, write_commands=WRITE_COMMANDS)
                saved = time.perf_counter()
            committed = time.perf_counter()
            save_ms.append((saved - started) * 1000)
            commit_ms.append((committed - started) * 1000)
            state = new
        started = time.perf_counter()
        with store.unit_of_work() as uow:
            loaded = uow.load_run("bench-run")
        load_ms = (time.perf_counter() - started) * 1000
        assert loaded == state
    finally:
        store.close()
    print(
        f"{label:<11} save {statistics.median(save_ms):6.2f} ms median "
        f"(p95 {sorted(save_ms)[int(len(save_ms) * 0.95) - 1]:6.2f}), "
        f"with commit {statistics.median(commit_ms):6.2f} ms | "
        f"insert {items} units {insert_ms:7.1f} ms | load {load_ms:7.1f} ms"
    )


def with_postgres(run: Callable[[str], None]) -> None:
    with throwaway_postgres_database("treadle_bench") as url:
        run(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--changed", type=int, default=50)
    parser.add_argument("--saves", type=int, default=50)
    args = parser.parse_args()
    print(f"{args.items}-unit execution, {args.changed} units changed per save, {args.saves} saves")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        measure("SQLite", url, args.items, args.changed, args.saves)
    with_postgres(lambda url: measure("PostgreSQL", url, args.items, args.changed, args.saves))


if __name__ == "__main__":
    main()
