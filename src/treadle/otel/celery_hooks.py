"""Celery's signals, where the scheduler's dispatch spans begin and a pool process flushes.

In ``treadle scheduler``, every ``treadle.run.*`` message the publisher sends (its own
dispatches after commit and the relay's alike) passes ``before_task_publish``, which the
publisher sends as Celery's ``send_task`` would (``scheduler/service/task_messages.py``):
:class:`DispatchSpans` starts the attempt's dispatch span there, a child of its run's span,
and writes its W3C ``traceparent`` into the message headers, which the worker reads back;
the span ends at
``after_task_publish``, once the message is written to the broker (the publisher awaits
the broker's confirms for the whole batch afterwards). Only ids, the task, the action and
the queue are read from the message, never its input. A process without tracing
connects no receiver, so a publish costs what it did.

In ``treadle worker``, each prefork pool process shuts its tracing down on
``worker_process_shutdown`` (spans a batching processor still holds are sent before the
process exits).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Final

from celery.signals import after_task_publish, before_task_publish, worker_process_shutdown
from opentelemetry import trace

from treadle.common.tracing import AttributeValue, SpanParent, TracedProcess
from treadle.common.transport import WORKER_RUNNERS, task_name
from treadle.otel.adapter import OtelTracing

__all__ = ["DispatchSpans", "hook_celery"]

#: The Celery tasks that carry attempts.
ATTEMPT_TASKS: Final = frozenset(task_name(runner) for runner in WORKER_RUNNERS)


def hook_celery(tracing: OtelTracing, process: TracedProcess) -> None:
    """Connect the receivers ``process`` needs (none for the API and beat)."""
    if process is TracedProcess.SCHEDULER:
        spans = DispatchSpans(tracing)
        before_task_publish.connect(spans.before_publish, weak=False)
        after_task_publish.connect(spans.after_publish, weak=False)
    elif process is TracedProcess.WORKER:

        def shut_down(**_kwargs: Any) -> None:
            tracing.shutdown()

        worker_process_shutdown.connect(shut_down, weak=False)


class DispatchSpans:
    """Begins a dispatch span before each attempt's message is published, ends it after.

    At most one span is open per publishing thread: one whose publish raised (no
    ``after_task_publish``) is ended, as an error, when the next message begins.
    """

    def __init__(self, tracing: OtelTracing) -> None:
        self._tracing = tracing
        self._open = threading.local()

    def before_publish(
        self,
        sender: Any = None,
        body: Any = None,
        headers: Any = None,
        routing_key: Any = None,
        **_kwargs: Any,
    ) -> None:
        self._end(failed=True)
        if sender not in ATTEMPT_TASKS or not isinstance(headers, dict):
            return
        dispatch = _dispatch_of(body)
        run_id = dispatch.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            return
        attributes: dict[str, AttributeValue] = {
            "treadle.run_id": run_id,
            "treadle.celery_task": str(sender),
        }
        for key in ("attempt_id", "task", "action_ref", "attempt"):
            value = dispatch.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                attributes[f"treadle.{key.removesuffix('_ref')}"] = value
        if routing_key:
            attributes["messaging.destination.name"] = str(routing_key)
        name = f"dispatch {dispatch.get('task') or sender}"
        self._open.span = self._tracing.dispatch(name, SpanParent.run(run_id), attributes, headers)

    def after_publish(self, **_kwargs: Any) -> None:
        self._end(failed=False)

    def _end(self, *, failed: bool) -> None:
        span: trace.Span | None = getattr(self._open, "span", None)
        if span is None:
            return
        self._open.span = None
        if failed:
            span.set_status(trace.Status(trace.StatusCode.ERROR, "not published"))
        span.end()


def _dispatch_of(body: Any) -> Mapping[str, Any]:
    """The dispatch (the one argument) of a protocol-2 body ``(args, kwargs, embed)``."""
    if isinstance(body, tuple | list) and body and isinstance(body[0], list | tuple):
        args = body[0]
        if len(args) == 1 and isinstance(args[0], Mapping):
            return args[0]
    return {}
