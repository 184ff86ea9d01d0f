"""A process's tracer provider, resource and exporter, from the ``TREADLE_TRACE_*`` settings.

* ``file``: :class:`~treadle.otel.file_exporter.JsonLinesSpanExporter` behind a
  synchronous processor: each span is appended when it ends (one ``os.write``), so a
  worker's pool processes share the file and lose nothing when they exit.
* ``otlp``: the SDK's OTLP/HTTP (protobuf) exporter to ``TREADLE_TRACE_OTLP_ENDPOINT``
  behind a batching processor (the SDK restarts its thread in forked pool processes;
  ``treadle.otel.celery_hooks`` flushes a pool process before it exits, the provider
  flushes the others at exit). The SDK's ``OTEL_EXPORTER_OTLP_*`` variables (headers,
  certificates, timeout) and ``OTEL_BSP_*`` (batching) still apply.

The resource is ``service.name`` (``TREADLE_TRACE_SERVICE_NAME``, else the process's:
``treadle-scheduler``, ``treadle-worker``, ``treadle-api``, ``treadle-beat``),
``service.version``, ``process.pid`` and ``host.name``, merged over
``OTEL_RESOURCE_ATTRIBUTES``. Every span is sampled: a run's trace is whole or absent.
"""

from __future__ import annotations

import os
import socket

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

from treadle import __version__
from treadle.common.errors import ConfigurationError
from treadle.common.settings import Settings
from treadle.common.tracing import TracedProcess, TraceExporter
from treadle.otel.adapter import OtelTracing
from treadle.otel.file_exporter import JsonLinesSpanExporter

__all__ = ["build_tracing", "process_resource"]


def process_resource(settings: Settings, process: TracedProcess) -> Resource:
    """The resource every span of this process carries."""
    return Resource.create(
        {
            "service.name": settings.trace_service_name or process.value,
            "service.version": __version__,
            "process.pid": os.getpid(),
            "host.name": socket.gethostname(),
        }
    )


def span_processor(settings: Settings) -> SpanProcessor:
    """The processor exporting to where ``TREADLE_TRACE_EXPORTER`` says."""
    exporter = TraceExporter(settings.trace_exporter)
    if exporter is TraceExporter.FILE:
        if not settings.trace_file:
            raise ConfigurationError(
                "TREADLE_TRACE_FILE: required when TREADLE_TRACE_EXPORTER is file "
                "(the file the spans are appended to)"
            )
        return SimpleSpanProcessor(JsonLinesSpanExporter(settings.trace_file))
    if exporter is TraceExporter.OTLP:
        return BatchSpanProcessor(_otlp_exporter(settings.trace_otlp_endpoint))
    raise ConfigurationError(f"TREADLE_TRACE_EXPORTER: {exporter.value} exports no spans")


def _otlp_exporter(endpoint: str) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if not endpoint.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"TREADLE_TRACE_OTLP_ENDPOINT: {endpoint!r} is not an http(s) URL "
            "(e.g. http://127.0.0.1:4318/v1/traces)"
        )
    return OTLPSpanExporter(endpoint=endpoint)


def build_tracing(
    settings: Settings, process: TracedProcess, *, set_global: bool = False
) -> OtelTracing:
    """The process's tracing; ``set_global``: also OpenTelemetry's global tracer provider
    (what an action's own spans go through)."""
    resource = process_resource(settings, process)
    processor = span_processor(settings)
    provider = TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_ON))
    provider.add_span_processor(processor)
    if set_global:
        trace.set_tracer_provider(provider)
    return OtelTracing(provider, processor, resource)
