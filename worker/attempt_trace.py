"""A worker's span of one attempt, when the worker traces (``TREADLE_TRACE_EXPORTER``).

``run_dispatch`` runs the attempt through :func:`traced_attempt` only when the process's
tracing is on (one check; off, nothing here runs). The span (``attempt <task>``) is the
child of the scheduler's dispatch span named by the message's W3C ``traceparent`` header
(else, for a message without one, of the run's span, derived from the attempt id), is
current while the action runs, and records the Celery task name, the attempt, its run,
the queue, the worker's name, the outcome and the error type. The ids and the task name
are read as the log context reads them (:mod:`treadle.worker.log_context`), never the input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from treadle.common.tracing import TRACE_HEADERS, AttributeValue, SpanParent, Tracing
from treadle.worker.log_context import attempt_fields
from treadle.worker.metrics import Attempted, routing_key_of

if TYPE_CHECKING:
    from treadle.worker.tasks import Delivery

__all__ = ["trace_headers", "traced_attempt"]


def traced_attempt(
    tracing: Tracing,
    task: Any,
    delivery: Delivery,
    run: Callable[[Delivery], Attempted | None],
) -> Attempted | None:
    """``run(delivery)`` inside the attempt's span; returns what it returns."""
    request = task.request
    fields = attempt_fields(delivery.args, delivery.header_attempt)
    attributes: dict[str, AttributeValue] = {
        "treadle.celery_task": str(task.name),
        "treadle.worker": delivery.hostname,
    }
    for key in ("run", "attempt_id", "task", "attempt"):
        value = fields.get(key)
        if value is not None:
            attributes["treadle.run_id" if key == "run" else f"treadle.{key}"] = value
    queue = routing_key_of(getattr(request, "delivery_info", None))
    if queue:
        attributes["messaging.destination.name"] = queue
    run_id = fields.get("run")
    fallback = SpanParent.run(run_id) if isinstance(run_id, str) else None
    name = f"attempt {fields.get('task') or task.name}"
    with tracing.attempt(name, trace_headers(request), attributes, fallback) as span:
        attempted = run(delivery)
        if attempted is None:
            span.ended("dropped", None)
        else:
            result = attempted.result
            span.ended(result.outcome.value, result.error.type if result.error else None)
    return attempted


def trace_headers(request: Any) -> dict[str, str]:
    """The W3C trace context headers of a task message (Celery keeps a message's own
    headers in ``request.headers`` or as attributes of the request)."""
    headers = getattr(request, "headers", None) or {}
    found: dict[str, str] = {}
    for name in TRACE_HEADERS:
        value = headers.get(name) or getattr(request, name, None)
        if isinstance(value, str) and value:
            found[name] = value
    return found
