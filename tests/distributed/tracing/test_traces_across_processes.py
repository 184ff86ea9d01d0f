"""One trace across a real ``treadle scheduler`` and a real ``treadle worker``.

A fresh PostgreSQL database and RabbitMQ vhost; the scheduler and the worker (prefork
pool) each export their spans to a file of their own (``TREADLE_TRACE_EXPORTER=file``).
A client starts ``examples.nested_workflow``: its task ``greet`` starts the child run
``examples.hello_world`` (whose ``say_hello`` runs on the worker), then ``report`` runs
on the worker. Once the run ended, the two files are joined as a collector would and the
spans must form one tree: the trace id is the run's (the one its log lines carry), the
run's span is the only root, every dispatch span hangs under its run's span, every
attempt span of the worker under the scheduler's dispatch span of the same attempt, the
child run's span under the parent's attempt that started it; the spans came from two
processes.
"""

from __future__ import annotations

import json
import socket
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")

from treadle.client import Client
from treadle.common.trace_ids import trace_id_of
from treadle.common.tracing import attempt_span_id, run_span_id
from treadle.testing import throwaway_postgres_database, throwaway_rabbitmq_vhost
from treadle.testing.processes import (
    SCHEDULER_READY,
    WORKER_READY,
    ServiceProcess,
    stop_all,
    treadle_environment,
    wait_until,
)

# Real processes on PostgreSQL and RabbitMQ: starting them takes most of the ~10 s.
pytestmark = [pytest.mark.services, pytest.mark.slow]

QUEUE = "traces_test"


def spans_in(path: Path) -> list[dict[str, Any]]:
    """Every span of an OTLP/JSON lines file, with its resource's attributes."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        for resource in json.loads(line)["resourceSpans"]:
            service = _attributes(resource["resource"]["attributes"])
            for scope in resource["scopeSpans"]:
                for span in scope["spans"]:
                    attributes = _attributes(span.get("attributes", []))
                    found.append({**span, "attributes": attributes, "resource": service})
    return found


def _attributes(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    return {pair["key"]: next(iter(pair["value"].values())) for pair in pairs}


def test_the_scheduler_and_the_worker_export_one_tree_per_run(tmp_path: Path) -> None:
    files = {"scheduler": tmp_path / "scheduler.jsonl", "worker": tmp_path / "worker.jsonl"}
    processes: list[ServiceProcess] = []
    with ExitStack() as stack:
        database_url = stack.enter_context(throwaway_postgres_database("treadle_traces"))
        broker_url = stack.enter_context(throwaway_rabbitmq_vhost("treadle_traces"))
        stack.callback(stop_all, processes)

        def start(name: str, *args: str) -> ServiceProcess:
            env = treadle_environment(
                database_url=database_url,
                broker_url=broker_url,
                default_queue=QUEUE,
                log_level="INFO",
                log_format="json",
                trace_exporter="file",
                trace_file=str(files[name]),
            )
            process = ServiceProcess(name, args, env, tmp_path / f"{name}.log")
            processes.append(process)
            return process

        worker_name = f"traces-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        scheduler = start("scheduler", "scheduler")
        worker = start("worker", "worker", "--hostname", worker_name, "--concurrency", "2")
        scheduler.wait_for_log(SCHEDULER_READY, 60)
        worker.wait_for_log(WORKER_READY, 60)

        with Client(database_url) as client:
            run = client.start("examples.nested_workflow")
            assert client.wait(run, timeout=60).succeeded
        trace = trace_id_of(run)

        def joined() -> list[dict[str, Any]] | None:
            spans = spans_in(files["scheduler"]) + spans_in(files["worker"])
            root_ended = any(span["spanId"] == run_span_id(run) for span in spans)
            attempts = [s for s in spans if s["name"].startswith("attempt ")]
            return spans if root_ended and len(attempts) == 2 else None

        spans = wait_until(joined, 10, "the run's span and the worker's two attempt spans")
        stop_all(processes)  # every span is written when it ends: nothing more comes

    spans = spans_in(files["scheduler"]) + spans_in(files["worker"])
    by_id = {span["spanId"]: span for span in spans}
    assert len(by_id) == len(spans), "a span id used twice"
    assert {span["traceId"] for span in spans} == {trace}

    # One root: the run's span, exported by the scheduler when the run ended.
    [root] = [span for span in spans if "parentSpanId" not in span]
    assert root["spanId"] == run_span_id(run)
    assert root["name"] == "run examples.nested_workflow"
    assert root["attributes"]["treadle.status"] == "succeeded"
    assert root["resource"]["service.name"] == "treadle-scheduler"
    # ... and every other span's parent is in the trace: one tree.
    orphans = [s["name"] for s in spans if s is not root and s["parentSpanId"] not in by_id]
    assert orphans == []

    # The child run hangs under the parent's attempt of the task that started it.
    [child_run] = [span for span in spans if span["name"] == "run examples.hello_world"]
    child = child_run["attributes"]["treadle.run_id"]
    parent_attempt = by_id[child_run["parentSpanId"]]
    assert parent_attempt["spanId"] == attempt_span_id(
        parent_attempt["attributes"]["treadle.attempt_id"]
    )
    assert parent_attempt["parentSpanId"] == root["spanId"]
    assert child.startswith(f"{run}.")

    # Each dispatch under its run's span; each worker attempt under its dispatch.
    dispatches = {
        span["attributes"]["treadle.attempt_id"]: span
        for span in spans
        if span["name"].startswith("dispatch ")
    }
    for dispatch in dispatches.values():
        assert dispatch["parentSpanId"] == run_span_id(dispatch["attributes"]["treadle.run_id"])
        assert dispatch["resource"]["service.name"] == "treadle-scheduler"
    attempts = [span for span in spans if span["name"].startswith("attempt ")]
    assert {span["name"] for span in attempts} == {"attempt say_hello", "attempt report"}
    for attempt in attempts:
        attempt_id = attempt["attributes"]["treadle.attempt_id"]
        assert attempt["parentSpanId"] == dispatches[attempt_id]["spanId"]
        assert attempt["resource"]["service.name"] == "treadle-worker"
        assert attempt["attributes"]["treadle.outcome"] == "succeeded"
        assert attempt["attributes"]["treadle.worker"] == worker_name
        assert attempt["attributes"]["messaging.destination.name"] == QUEUE
        assert attempt["kind"] == 5  # CONSUMER
    assert {a["attributes"]["treadle.run_id"] for a in attempts} == {run, child}

    # Two processes: the scheduler's and the worker's.
    pids = {span["resource"]["service.name"]: span["resource"]["process.pid"] for span in spans}
    assert set(pids) == {"treadle-scheduler", "treadle-worker"}
    assert pids["treadle-scheduler"] != pids["treadle-worker"]

    # The log lines about the run carry the same trace id as its spans.
    lines = [json.loads(line) for line in scheduler.output().splitlines() if line[:1] == "{"]
    [completed] = [
        line
        for line in lines
        if line.get("event") == "workflow.complete" and line.get("run") == run
    ]
    assert completed["trace_id"] == root["traceId"]
