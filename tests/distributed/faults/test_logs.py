"""Structured logs of real ``treadle scheduler`` and ``treadle worker`` processes.

Their stderr is not a terminal, so ``TREADLE_LOG_FORMAT=auto`` writes JSON lines. A run of
``examples.nested_workflow`` (a task that starts ``examples.hello_world`` as a child run)
is started by a client in this process: the client saves the start, so its
``workflow.start`` is logged here; the scheduler logs the rest (the child run's start
too: the scheduler starts child runs) and the worker's lines about the attempts carry
the same trace id, the root run's.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from treadle.common.log_format import SCHEMA
from treadle.common.trace_ids import trace_id_of
from treadle.scheduler.service.run_log import RUN_LOGGER
from treadle.testing.processes import wait_until

from .conftest import Deployment

pytestmark = [pytest.mark.services, pytest.mark.slow]


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_scheduler_and_worker_write_json_lines_with_the_runs_trace_id(
    shared_deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    services = shared_deployment
    scheduler, worker = services.processes[:2]
    with caplog.at_level(logging.INFO, logger=RUN_LOGGER), services.client() as client:
        parent = client.start("examples.nested_workflow")
    started_here = [r for r in caplog.records if getattr(r, "run", None) == parent]
    assert [getattr(r, "event", None) for r in started_here][:1] == ["workflow.start"]
    services.wait_for_runs([parent], timeout=60)
    trace = trace_id_of(parent)

    def scheduler_lines() -> list[dict[str, Any]]:
        return _json_lines(scheduler.output())

    def ended(lines: list[dict[str, Any]]) -> bool:
        return any(
            line.get("event") == "workflow.complete" and line.get("run") == parent for line in lines
        )

    wait_until(lambda: ended(scheduler_lines()), 10, "the scheduler's workflow.complete line")
    # Every line the scheduler wrote is one JSON object in the schema's key order.
    written = [line for line in scheduler.output().splitlines() if line.strip()]
    assert written
    assert all(line.startswith("{") for line in written), written[:5]
    order = {key: index for index, key in enumerate(SCHEMA)}
    for line in scheduler_lines():
        assert {"time", "level", "logger", "message"} <= line.keys()
        assert list(line) == sorted(line, key=order.__getitem__)

    ours = [line for line in scheduler_lines() if line.get("trace_id") == trace]
    [child_start] = [
        line
        for line in ours
        if line.get("event") == "workflow.start" and line.get("parent_run") == parent
    ]
    child = child_start["run"]
    assert child.startswith(f"{parent}.")
    events = {(line["run"], line.get("event")) for line in ours}
    assert {
        (parent, "workflow.task.schedule"),
        (child, "workflow.task.schedule"),
        (child, "workflow.task.complete"),
        (child, "workflow.complete"),
        (parent, "workflow.task.complete"),
        (parent, "workflow.complete"),
    } <= events
    [end] = [
        line for line in ours if line.get("event") == "workflow.complete" and line["run"] == parent
    ]
    assert end["status"] == "succeeded"
    assert end["duration_s"] >= 0
    assert end["workflow"] == "examples.nested_workflow"

    def worker_lines() -> list[dict[str, Any]]:
        return [line for line in _json_lines(worker.output()) if line.get("trace_id") == trace]

    wait_until(lambda: len(worker_lines()) >= 2, 10, "the worker's lines about the attempts")
    runs = {line["run"] for line in worker_lines()}
    assert runs == {parent, child}
    for line in worker_lines():
        assert line["attempt"] >= 1
        assert line["attempt_id"].startswith(line["run"])
        assert line["task"] in ("say_hello", "report")  # the child's task, the parent's
