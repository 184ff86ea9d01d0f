"""What the services ask of tracing, and the span ids every process derives alone.

OpenTelemetry is an optional extra (``treadle[otel]``); only :mod:`treadle.otel` imports
it. The scheduler and the worker talk to the :class:`Tracing` of their process, which
is :data:`NO_TRACING` (``enabled`` False, nothing done, nothing imported) until the
command that starts the process installs another (:func:`install_tracing`, called by
``treadle.otel.start_tracing`` when ``TREADLE_TRACE_EXPORTER`` is ``file`` or ``otlp``).
Code on the hot path checks ``enabled`` once and does nothing more when it is off.

A run tree is one trace: its id is :func:`~treadle.common.trace_ids.trace_id_of` the run
id, the one the log lines carry. Spans another process must parent to without being told
have ids derived from what they stand for (:func:`run_span_id`, :func:`attempt_span_id`):
a run's span, exported by the scheduler when the run ends, is the parent of its dispatch
spans; a child run's span is the child of its parent's attempt that started it. The
dispatch span's id travels to the worker in the W3C ``traceparent`` message header.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final, Protocol

from treadle.common.trace_ids import CHILD_SEPARATOR, trace_id_of

#: The W3C Trace Context headers (and Celery message headers) carrying a span's context.
TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
TRACE_HEADERS: Final = (TRACEPARENT, TRACESTATE)

#: A span attribute's value (OpenTelemetry's primitive types).
AttributeValue = str | bool | int | float


class TracedProcess(StrEnum):
    """The processes that export spans, each as its ``service.name``."""

    SCHEDULER = "treadle-scheduler"
    WORKER = "treadle-worker"
    API = "treadle-api"
    BEAT = "treadle-beat"


class TraceExporter(StrEnum):
    """``TREADLE_TRACE_EXPORTER``: where a process sends its spans."""

    NONE = "none"
    FILE = "file"
    OTLP = "otlp"


# -- ids -----------------------------------------------------------------------------------


def _span_id(kind: str, key: str) -> str:
    digest = hashlib.sha256(f"treadle.{kind}:{key}".encode()).hexdigest()[:16]
    return digest if digest.strip("0") else "0" * 15 + "1"  # all zeros is invalid in W3C


def run_span_id(run_id: str) -> str:
    """The 16-hex span id of run ``run_id``'s span (the first 8 bytes of a SHA-256)."""
    return _span_id("run", run_id)


def attempt_span_id(attempt_id: str) -> str:
    """The span id of the attempt that started a child run (its child run's parent)."""
    return _span_id("attempt", attempt_id)


def parent_attempt_of(run_id: str) -> str | None:
    """The attempt that started child run ``run_id`` (``<parent>.<e>.<u>.<a>`` ->
    ``<parent>/<e>/<u>/<a>``, see ``scheduler/core/ids.py``); None for a top-level run."""
    parts = run_id.rsplit(CHILD_SEPARATOR, 3)
    if len(parts) != 4 or not all(part.isdigit() for part in parts[1:]):
        return None
    return "/".join(parts)


def run_of_attempt(attempt_id: str) -> str | None:
    """The run an attempt id (``<run>/<execution>/<unit>/<attempt>``) belongs to."""
    parts = attempt_id.rsplit("/", 3)
    if len(parts) != 4 or not all(part.isdigit() for part in parts[1:]):
        return None
    return parts[0]


@dataclass(frozen=True, slots=True)
class SpanParent:
    """Where a span hangs in its trace: the trace id and the parent span's id (32 and 16
    hex digits)."""

    trace_id: str
    span_id: str

    @classmethod
    def run(cls, run_id: str) -> SpanParent:
        """Run ``run_id``'s span, as any process derives it."""
        return cls(trace_id_of(run_id), run_span_id(run_id))


# -- what the services hand to tracing -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FinishedSpan:
    """A span whose ids and times are known: exported as it is (a run's span, a child
    run's parent attempt). ``error_type`` set: the span's status is an error."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    start: datetime
    end: datetime
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    error_type: str | None = None


class AttemptSpan(Protocol):
    """The span of one attempt on a worker, open while the action runs."""

    def ended(self, outcome: str, error_type: str | None) -> None:
        """Record how the attempt ended (``succeeded``, ``failed``, ...; an error type)."""


class Tracing(Protocol):
    """What a process's services ask of tracing (see the module docstring)."""

    @property
    def enabled(self) -> bool: ...

    def record(self, spans: Sequence[FinishedSpan]) -> None:
        """Export spans whose ids and times are known."""

    def attempt(
        self,
        name: str,
        carrier: Mapping[str, str],
        attributes: Mapping[str, AttributeValue],
        fallback: SpanParent | None,
    ) -> AbstractContextManager[AttemptSpan]:
        """A context manager: the attempt's span, current inside, the child of the span
        ``carrier`` (a task message's ``traceparent``) names, else of ``fallback``."""

    def shutdown(self) -> None:
        """Export what is pending and stop (a process that exits)."""


class _NoAttemptSpan:
    def ended(self, outcome: str, error_type: str | None) -> None:
        return None


class NoTracing:
    """Tracing off: nothing recorded, nothing imported."""

    enabled: Final = False

    def record(self, spans: Sequence[FinishedSpan]) -> None:
        return None

    @contextmanager
    def attempt(
        self,
        name: str,
        carrier: Mapping[str, str],
        attributes: Mapping[str, AttributeValue],
        fallback: SpanParent | None,
    ) -> Iterator[AttemptSpan]:
        yield _NoAttemptSpan()

    def shutdown(self) -> None:
        return None


NO_TRACING: Final = NoTracing()
_active: Tracing = NO_TRACING


def active_tracing() -> Tracing:
    """This process's tracing (:data:`NO_TRACING` unless a command installed one)."""
    return _active


def install_tracing(tracing: Tracing) -> Tracing:
    """Make ``tracing`` this process's; returns the one it replaces."""
    global _active
    previous, _active = _active, tracing
    return previous
