"""The :class:`~treadle.common.tracing.Tracing` of a process with tracing on, on the SDK.

:class:`OtelTracing` turns what the services hand it into OpenTelemetry spans:

* :meth:`~OtelTracing.record`: a span whose ids and times are known (a run's span, a
  child run's parent attempt) is built as a finished ``ReadableSpan`` with exactly those
  ids and handed to the process's span processor.
* :meth:`~OtelTracing.attempt`: a worker's attempt span, a ``CONSUMER`` span current
  while the action runs (an action's own OpenTelemetry spans become its children), the
  child of the dispatch span the message's ``traceparent`` names (else of the run's span).
* :meth:`~OtelTracing.dispatch`: a scheduler's short ``PRODUCER`` span per published
  attempt, the child of the run's span, written into the message headers as W3C
  ``traceparent`` (see :mod:`treadle.otel.celery_hooks`).

Only ids, names, statuses, queues and error *types* become attributes: never an input, a
result, an error message or a secret.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Final

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from treadle import __version__
from treadle.common.tracing import AttributeValue, FinishedSpan, SpanParent

__all__ = ["OtelAttemptSpan", "OtelTracing"]

SCOPE: Final = "treadle"
#: The attempt's outcome and the error type, as attributes.
OUTCOME: Final = "treadle.outcome"
ERROR_TYPE: Final = "error.type"
SUCCEEDED: Final = "succeeded"
_PROPAGATOR: Final = TraceContextTextMapPropagator()
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SAMPLED: Final = TraceFlags(TraceFlags.SAMPLED)


def unix_nanos(moment: datetime) -> int:
    """``moment`` in nanoseconds since the epoch (a naive time is UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return ((aware - _EPOCH) // timedelta(microseconds=1)) * 1000


def remote_parent(parent: SpanParent) -> trace.Span:
    """A span standing for ``parent`` (exported by another process, or later)."""
    return trace.NonRecordingSpan(
        SpanContext(
            int(parent.trace_id, 16), int(parent.span_id, 16), is_remote=True, trace_flags=_SAMPLED
        )
    )


class OtelAttemptSpan:
    """A worker's open attempt span (:class:`~treadle.common.tracing.AttemptSpan`)."""

    def __init__(self, span: trace.Span) -> None:
        self.span = span

    def ended(self, outcome: str, error_type: str | None) -> None:
        self.span.set_attribute(OUTCOME, outcome)
        if error_type is not None:
            self.span.set_attribute(ERROR_TYPE, error_type)
        if outcome != SUCCEEDED:
            self.span.set_status(Status(StatusCode.ERROR, error_type or outcome))


class OtelTracing:
    """A process's tracing on an SDK tracer provider and the processor exporting its spans."""

    enabled: Final = True

    def __init__(
        self, provider: TracerProvider, processor: SpanProcessor, resource: Resource
    ) -> None:
        self.provider = provider
        self._processor = processor
        self._resource = resource
        self._scope = InstrumentationScope(SCOPE, __version__)
        self._tracer = provider.get_tracer(SCOPE, __version__)

    @property
    def resource(self) -> Resource:
        return self._resource

    # -- spans known in full -----------------------------------------------------------------

    def record(self, spans: Sequence[FinishedSpan]) -> None:
        for finished in spans:
            self._processor.on_end(self._readable(finished))

    def _readable(self, finished: FinishedSpan) -> ReadableSpan:
        trace_id = int(finished.trace_id, 16)
        parent = None
        if finished.parent_span_id is not None:
            parent = SpanContext(
                trace_id, int(finished.parent_span_id, 16), is_remote=True, trace_flags=_SAMPLED
            )
        error = finished.error_type
        return ReadableSpan(
            name=finished.name,
            context=SpanContext(
                trace_id, int(finished.span_id, 16), is_remote=False, trace_flags=_SAMPLED
            ),
            parent=parent,
            resource=self._resource,
            attributes={**finished.attributes, **({ERROR_TYPE: error} if error else {})},
            kind=SpanKind.INTERNAL,
            status=Status(StatusCode.ERROR, error) if error else Status(StatusCode.UNSET),
            start_time=unix_nanos(finished.start),
            end_time=unix_nanos(max(finished.end, finished.start)),
            instrumentation_scope=self._scope,
        )

    # -- a worker's attempt ------------------------------------------------------------------

    @contextmanager
    def attempt(
        self,
        name: str,
        carrier: Mapping[str, str],
        attributes: Mapping[str, AttributeValue],
        fallback: SpanParent | None,
    ) -> Iterator[OtelAttemptSpan]:
        context = _PROPAGATOR.extract(carrier) if carrier else None
        if context is not None and not trace.get_current_span(context).get_span_context().is_valid:
            context = None
        if context is None and fallback is not None:
            context = trace.set_span_in_context(remote_parent(fallback))
        with self._tracer.start_as_current_span(
            name,
            context=context,
            kind=SpanKind.CONSUMER,
            attributes=dict(attributes),
            record_exception=False,  # its message could hold what a span must not
            set_status_on_exception=False,
        ) as span:
            try:
                yield OtelAttemptSpan(span)
            except BaseException as exc:
                span.set_attribute(ERROR_TYPE, type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise

    # -- a scheduler's dispatch ----------------------------------------------------------------

    def dispatch(
        self,
        name: str,
        parent: SpanParent,
        attributes: Mapping[str, AttributeValue],
        headers: MutableMapping[str, str],
    ) -> trace.Span:
        """Start the dispatch span of one message (the caller ends it once sent) and put
        its ``traceparent`` (and ``tracestate``, if any) into ``headers``."""
        span = self._tracer.start_span(
            name,
            context=trace.set_span_in_context(remote_parent(parent)),
            kind=SpanKind.PRODUCER,
            attributes=dict(attributes),
        )
        _PROPAGATOR.inject(headers, context=trace.set_span_in_context(span))
        return span

    def shutdown(self) -> None:
        self.provider.shutdown()
