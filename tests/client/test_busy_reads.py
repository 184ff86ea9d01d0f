"""Reading a big run that a scheduler keeps changing, on PostgreSQL: no read fails or tears.

A writer thread commits a new version of a 3000-item run again and again (as schedulers
applying results do): each commit finishes 20 more items and records its step in the
run's output, in one transaction. Meanwhile ``Client.get``, ``Client.items`` and
``Client.wait`` read it. Every read must succeed and show one version: the succeeded
count always matches the step in the output.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from tests.store.conftest import change_units, realistic_state, save_one

from treadle.client import Client, RunInfo
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.store import Store

ITEMS = 3000
PER_STEP = 20
STEPS = 60


def _succeeded(info: RunInfo) -> int:
    summary = info.task("fan_out").items_summary
    assert summary is not None
    assert summary.total == ITEMS
    return summary.by_status.get(TaskStatus.SUCCEEDED, 0)


def test_a_busy_big_run_reads_cleanly_every_time(database_url: str, client: Client) -> None:
    state = realistic_state(items=ITEMS)
    unfinished = [
        i for i, unit in enumerate(state.executions[2].units) if unit.status.value != "succeeded"
    ]
    with Store.open(database_url) as store:
        with store.unit_of_work() as uow:
            uow.insert_run(state)
        first = _succeeded(client.get("run-1"))
        errors: list[BaseException] = []
        waited: list[RunInfo] = []

        def write() -> None:
            current = state
            try:
                for step in range(1, STEPS + 1):
                    done = unfinished[(step - 1) * PER_STEP : step * PER_STEP]
                    new = replace(change_units(current, 2, done), output={"step": step})
                    if step == STEPS:
                        new = replace(new, status=RunStatus.SUCCEEDED)
                    with store.unit_of_work() as uow:
                        save_one(uow, current, new, [], [])
                    current = new
            except BaseException as exc:  # reported below
                errors.append(exc)

        def wait() -> None:
            try:
                waited.append(client.wait("run-1", timeout=60, poll_interval=0.01))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=write), threading.Thread(target=wait)]
        for thread in threads:
            thread.start()
        reads: list[tuple[Any, int]] = []
        while threads[0].is_alive() or not reads:
            info = client.get("run-1")
            reads.append((info.output, _succeeded(info)))
            page = client.items("run-1", "fan_out", limit=50)
            assert len(page.items) == 50
            assert page.next_cursor is not None
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    assert len(reads) > 10, reads
    for output, succeeded in reads:
        step = output["step"] if output else 0
        assert succeeded == first + PER_STEP * step, (output, succeeded)
    [ended] = waited
    assert ended.status is RunStatus.SUCCEEDED
    assert ended.output == {"step": STEPS}
    assert _succeeded(ended) == first + PER_STEP * STEPS
