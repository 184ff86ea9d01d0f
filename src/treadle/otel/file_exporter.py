"""Spans appended to a file as OTLP/JSON lines, safe with several processes writing.

Each export is one line: an OTLP ``ExportTraceServiceRequest`` in the OTLP/JSON encoding
(what the OpenTelemetry Collector's ``file`` exporter writes and its ``otlpjsonfile``
receiver reads: lowerCamelCase keys, trace and span ids as hex, enums as numbers, times
as decimal strings of nanoseconds). The file is opened ``O_APPEND`` once and each line
goes out in one ``os.write``, so the processes sharing it (a worker's prefork pool
processes, which inherit the descriptor, or a scheduler and a worker given one path)
never interleave within a line. It is used with a synchronous span processor: a span is
on disk when it ends, and a pool process that exits loses nothing.
"""

from __future__ import annotations

import json
import os
from base64 import b64decode
from collections.abc import Sequence
from typing import Any, Final

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from treadle.common.errors import ConfigurationError

__all__ = ["JsonLinesSpanExporter", "otlp_json"]

#: The id fields OTLP/JSON writes as hex (protobuf's JSON mapping would write base64).
_ID_FIELDS: Final = ("traceId", "spanId", "parentSpanId")
_MODE: Final = 0o640


def otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """``spans`` as one OTLP/JSON ``ExportTraceServiceRequest``."""
    request: dict[str, Any] = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource in request.get("resourceSpans", ()):
        for scope in resource.get("scopeSpans", ()):
            for span in scope.get("spans", ()):
                _hex_ids(span)
                for link in span.get("links", ()):
                    _hex_ids(link)
    return request


def _hex_ids(item: dict[str, Any]) -> None:
    for key in _ID_FIELDS:
        value = item.get(key)
        if isinstance(value, str):
            item[key] = b64decode(value).hex()


class JsonLinesSpanExporter(SpanExporter):
    """Appends each batch of spans to ``path`` as one OTLP/JSON line."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, _MODE)
        except OSError as exc:
            raise ConfigurationError(
                f"TREADLE_TRACE_FILE: cannot open {path!r} for appending: {exc.strerror}"
            ) from None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        fd = self._fd
        if fd is None:  # shut down
            return SpanExportResult.FAILURE
        if not spans:
            return SpanExportResult.SUCCESS
        line = json.dumps(otlp_json(spans), separators=(",", ":")) + "\n"
        try:
            os.write(fd, line.encode())  # one write: whole lines even with other writers
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # every export is written at once
