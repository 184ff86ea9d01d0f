"""The OpenTelemetry adapter: the file's OTLP/JSON lines, the header round trip, errors.

Each test builds its own tracing (never OpenTelemetry's global provider) writing to a
file in ``tmp_path``, and reads the file back as a collector would.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")

from treadle.common.errors import ConfigurationError
from treadle.common.settings import Settings
from treadle.common.trace_ids import trace_id_of
from treadle.common.tracing import (
    NO_TRACING,
    FinishedSpan,
    SpanParent,
    TracedProcess,
    run_span_id,
)
from treadle.otel import start_tracing
from treadle.otel.adapter import OtelTracing, unix_nanos
from treadle.otel.celery_hooks import DispatchSpans
from treadle.otel.file_exporter import JsonLinesSpanExporter
from treadle.otel.provider import build_tracing
from treadle.worker.attempt_trace import trace_headers

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "s3cret-value"


def tracing_to(path: Path, process: TracedProcess) -> OtelTracing:
    settings = Settings(trace_exporter="file", trace_file=str(path))
    return build_tracing(settings, process)


def exported(path: Path) -> list[dict[str, Any]]:
    """Every span in the file, with its resource's attributes under ``resource``."""
    spans = []
    for line in path.read_text().splitlines():
        for resource in json.loads(line)["resourceSpans"]:
            attributes = _attributes(resource["resource"]["attributes"])
            for scope in resource["scopeSpans"]:
                for span in scope["spans"]:
                    spans.append(
                        {
                            **span,
                            "resource": attributes,
                            "attributes": _attributes(span.get("attributes", [])),
                        }
                    )
    return spans


def _attributes(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    return {pair["key"]: next(iter(pair["value"].values())) for pair in pairs}


def test_a_finished_span_is_one_otlp_json_line_with_its_own_ids(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    tracing = tracing_to(path, TracedProcess.SCHEDULER)
    run = "r-abc"
    tracing.record(
        [
            FinishedSpan(
                name="run examples.hello_world",
                trace_id=trace_id_of(run),
                span_id=run_span_id(run),
                parent_span_id=None,
                start=T0,
                end=T0 + timedelta(seconds=2),
                attributes={"treadle.run_id": run, "treadle.workflow_version": 3},
                error_type="Timeout",
            )
        ]
    )
    [line] = path.read_text().splitlines()
    [span] = exported(path)
    assert span["traceId"] == trace_id_of(run)
    assert span["spanId"] == run_span_id(run)
    assert "parentSpanId" not in span
    assert span["name"] == "run examples.hello_world"
    assert span["startTimeUnixNano"] == str(unix_nanos(T0))
    assert int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"]) == 2 * 10**9
    assert span["status"] == {"code": 2, "message": "Timeout"}  # STATUS_CODE_ERROR
    assert span["attributes"] == {
        "treadle.run_id": run,
        "treadle.workflow_version": "3",  # OTLP/JSON writes int64 as a string
        "error.type": "Timeout",
    }
    assert span["resource"]["service.name"] == "treadle-scheduler"
    assert span["resource"]["process.pid"] == str(os.getpid())
    assert line.startswith('{"resourceSpans":')


def test_dispatch_headers_make_the_workers_attempt_span_its_child(tmp_path: Path) -> None:
    scheduler_file, worker_file = tmp_path / "scheduler.jsonl", tmp_path / "worker.jsonl"
    spans = DispatchSpans(tracing_to(scheduler_file, TracedProcess.SCHEDULER))
    run, attempt = "r-abc.1.0.1", "r-abc.1.0.1/2/0/1"
    dispatch = {
        "version": 1,
        "attempt_id": attempt,
        "run_id": run,
        "task": "say_hello",
        "action_ref": "core.echo",
        "attempt": 1,
        "input": {"message": SECRET},
    }
    headers: dict[str, Any] = {"id": attempt, "treadle-attempt": attempt}
    spans.before_publish(
        sender="treadle.run.python",
        body=([dispatch], {}, {}),
        headers=headers,
        routing_key="treadle.tasks",
    )
    spans.after_publish(sender="treadle.run.python")
    [sent] = exported(scheduler_file)
    assert headers["traceparent"] == f"00-{trace_id_of(run)}-{sent['spanId']}-01"
    assert sent["name"] == "dispatch say_hello"
    assert sent["kind"] == 4  # PRODUCER
    assert sent["parentSpanId"] == run_span_id(run)
    assert sent["attributes"] == {
        "treadle.run_id": run,
        "treadle.celery_task": "treadle.run.python",
        "treadle.attempt_id": attempt,
        "treadle.task": "say_hello",
        "treadle.action": "core.echo",
        "treadle.attempt": "1",
        "messaging.destination.name": "treadle.tasks",
    }

    class Request:  # Celery keeps a message's own headers as attributes of the request
        traceparent = headers["traceparent"]

    worker = tracing_to(worker_file, TracedProcess.WORKER)
    carrier = trace_headers(Request())
    with worker.attempt("attempt say_hello", carrier, {"treadle.attempt_id": attempt}, None) as s:
        s.ended("failed", "QuotaExceeded")
    [ran] = exported(worker_file)
    assert ran["traceId"] == sent["traceId"]
    assert ran["parentSpanId"] == sent["spanId"]
    assert ran["kind"] == 5  # CONSUMER
    assert ran["attributes"]["treadle.outcome"] == "failed"
    assert ran["attributes"]["error.type"] == "QuotaExceeded"
    assert ran["status"]["code"] == 2
    assert ran["resource"]["service.name"] == "treadle-worker"
    # Never the input.
    assert SECRET not in scheduler_file.read_text() + worker_file.read_text()


def test_an_attempt_without_traceparent_hangs_under_its_runs_span(tmp_path: Path) -> None:
    path = tmp_path / "worker.jsonl"
    worker = tracing_to(path, TracedProcess.WORKER)
    with pytest.raises(RuntimeError), worker.attempt("attempt t", {}, {}, SpanParent.run("r-x")):
        raise RuntimeError(SECRET)  # e.g. the report could not be published
    [span] = exported(path)
    assert (span["traceId"], span["parentSpanId"]) == (trace_id_of("r-x"), run_span_id("r-x"))
    assert span["attributes"] == {"error.type": "RuntimeError"}
    assert span["status"] == {"code": 2, "message": "RuntimeError"}
    assert SECRET not in path.read_text()  # no exception event, no message


def test_messages_other_than_attempts_get_no_dispatch_span(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.jsonl"
    spans = DispatchSpans(tracing_to(path, TracedProcess.SCHEDULER))
    headers: dict[str, Any] = {"id": "x"}
    spans.before_publish(sender="celery.ping", body=([], {}, {}), headers=headers)
    spans.after_publish()
    assert headers == {"id": "x"}
    assert not path.exists() or path.read_text() == ""


def test_processes_appending_to_one_file_never_mix_lines(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    exporter = JsonLinesSpanExporter(str(path))  # inherited by the children, as a pool's
    tracing = tracing_to(tmp_path / "unused.jsonl", TracedProcess.WORKER)
    per_child, children = 40, 3
    pids = []
    for child in range(children):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 0
            try:
                for n in range(per_child):
                    finished = FinishedSpan(
                        name=f"attempt {child}-{n}",
                        trace_id=trace_id_of(f"r-{child}"),
                        span_id=run_span_id(f"r-{child}-{n}"),
                        parent_span_id=None,
                        start=T0,
                        end=T0,
                        attributes={"padding": "x" * 2000},
                    )
                    exporter.export([tracing._readable(finished)])
            except BaseException:
                code = 1
            os._exit(code)
        pids.append(pid)
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    exporter.shutdown()
    names = [span["name"] for span in exported(path)]  # every line parses
    assert len(names) == len(set(names)) == per_child * children


def test_a_file_that_cannot_be_opened_names_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "spans.jsonl"
    with pytest.raises(ConfigurationError, match="TREADLE_TRACE_FILE: cannot open"):
        tracing_to(missing, TracedProcess.WORKER)
    with pytest.raises(ConfigurationError, match="TREADLE_TRACE_FILE: required"):
        build_tracing(Settings(trace_exporter="file"), TracedProcess.WORKER)
    with pytest.raises(ConfigurationError, match="TREADLE_TRACE_OTLP_ENDPOINT"):
        build_tracing(
            Settings(trace_exporter="otlp", trace_otlp_endpoint="127.0.0.1:4318"),
            TracedProcess.WORKER,
        )


def test_tracing_off_installs_nothing() -> None:
    assert start_tracing(Settings(trace_exporter="none"), TracedProcess.SCHEDULER) is NO_TRACING


def test_the_otlp_exporter_posts_protobuf_to_the_endpoint() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    received: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        settings = Settings(trace_exporter="otlp", trace_otlp_endpoint=endpoint)
        tracing = build_tracing(settings, TracedProcess.BEAT)
        tracing.record(
            [FinishedSpan("run w", trace_id_of("r-o"), run_span_id("r-o"), None, T0, T0)]
        )
        tracing.shutdown()  # what a process does at exit: the batch is sent
    finally:
        server.shutdown()
        server.server_close()
        serving.join(5)
    [(path, content_type, body)] = received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    [resource] = ExportTraceServiceRequest.FromString(body).resource_spans
    [span] = resource.scope_spans[0].spans
    assert (span.trace_id.hex(), span.span_id.hex()) == (trace_id_of("r-o"), run_span_id("r-o"))
    names = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert names["service.name"] == "treadle-beat"
