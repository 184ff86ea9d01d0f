"""What a worker counts for Prometheus: the ``celery_*`` series of the catalogue's WORKER
source, with celery-exporter's labels.

* ``name``: the Celery task (``treadle.run.python``...);
* ``hostname``: the worker's node name (``celery@host``), as reports name it;
* ``queue_name``: the *work queue*, as the scheduler counts ``celery_task_sent_total``: a
  message taken from a priority band (``q.high``, ``q.low`` on RabbitMQ) counts under
  ``q`` (:func:`work_queue_map`).

Received and rejected messages are counted where Celery sees them (its ``task_received``
and ``task_rejected`` signals, in the worker's main process; undecodable messages by
:class:`~treadle.worker.app.WorkerConsumer`); started, succeeded, failed, runtime and the
active gauge by the task itself (:mod:`treadle.worker.tasks`), from the result Treadle
reports: an attempt that failed or timed out counts in ``celery_task_failed_total`` with
its error type as ``exception``, although the Celery task itself returns normally.

The hot path is a dictionary lookup and a few ``inc``/``observe`` calls on label children
bound once per (task, host, queue); in prometheus-client's multiprocess mode (the prefork
pool, :mod:`treadle.worker.metrics_endpoint`) each is a write to a memory-mapped file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from treadle.common.messages import TaskResult
from treadle.common.metrics import Metrics
from treadle.common.statuses import AttemptStatus
from treadle.common.transport import PriorityBand, is_rabbitmq

#: ``queue_name`` when a message names no queue at all.
UNKNOWN_QUEUE = "unknown"
#: ``name`` of a message that names no task (an undecodable one).
UNKNOWN_TASK = "unknown"
_BAND_SUFFIXES = tuple(f".{band.value}" for band in PriorityBand if band is not PriorityBand.NORMAL)


def work_queue_map(work_queues: Iterable[str], broker_url: str) -> dict[str, str]:
    """``{queue a message arrives on: its work queue}`` for a worker serving
    ``work_queues``: on RabbitMQ each band's queue (``q.high``, ``q``, ``q.low``) maps to
    ``q``; on Redis each queue to itself (its priorities are lists of the same queue).

    A work queue's own name always maps to itself, even when it looks like another's band
    (a queue named ``x.high`` served beside ``x``)."""
    names = list(dict.fromkeys(work_queues))
    mapping = {name: name for name in names}
    if is_rabbitmq(broker_url):
        for name in names:
            for band in PriorityBand:
                mapping.setdefault(band.queue(name), name)
    return mapping


def work_queue_of(delivered: str | None, mapping: Mapping[str, str]) -> str:
    """The work queue of a message that arrived on ``delivered`` (its routing key: each
    queue has an exchange of its own name and is bound with its name). A queue the worker
    was not told about (Celery's own ``celery worker -Q`` listing bands) loses its band
    suffix."""
    if not delivered:
        return UNKNOWN_QUEUE
    known = mapping.get(delivered)
    if known is not None:
        return known
    for suffix in _BAND_SUFFIXES:
        if delivered.endswith(suffix) and len(delivered) > len(suffix):
            return delivered[: -len(suffix)]
    return delivered


def routing_key_of(delivery_info: Any) -> str | None:
    """The routing key in Celery's or kombu's ``delivery_info`` (None if it has none)."""
    if isinstance(delivery_info, Mapping):
        key = delivery_info.get("routing_key")
        return str(key) if key else None
    return None


@dataclass
class TaskSeries:
    """The label children of one (task name, hostname, work queue), bound once."""

    labels: tuple[str, str, str]
    received: Any
    started: Any
    succeeded: Any
    rejected: Any
    runtime: Any
    active: Any
    _failed_family: Counter
    _failed: dict[str, Any] = field(default_factory=dict)

    def failed(self, exception: str) -> Any:
        child = self._failed.get(exception)
        if child is None:
            child = self._failed[exception] = self._failed_family.labels(*self.labels, exception)
        return child

    def ended(self, result: TaskResult, seconds: float | None) -> None:
        """Count how the attempt ended, as Treadle reports it, and how long it ran."""
        if result.outcome is AttemptStatus.SUCCEEDED:
            self.succeeded.inc()
        else:
            self.failed(error_type(result)).inc()
        if seconds is not None:
            self.runtime.observe(max(seconds, 0.0))


def error_type(result: TaskResult) -> str:
    """The ``exception`` label of a result that did not succeed: its error type."""
    if result.error is not None and result.error.type:
        return result.error.type
    return result.outcome.value


class WorkerCounters:
    """The WORKER source's collectors of one :class:`Metrics`, bound per label set.

    ``queues`` maps each queue a message can arrive on to its work queue
    (:func:`work_queue_map`); ``default_queue`` is the work queue of a dispatch that
    names none (for a count made without the message, a hard time limit's)."""

    def __init__(self, metrics: Metrics, queues: Mapping[str, str], default_queue: str) -> None:
        self.metrics = metrics
        self.queues = dict(queues)
        self.default_queue = default_queue
        self._received = metrics.counter("celery_task_received")
        self._started = metrics.counter("celery_task_started")
        self._succeeded = metrics.counter("celery_task_succeeded")
        self._failed = metrics.counter("celery_task_failed")
        self._rejected = metrics.counter("celery_task_rejected")
        self._runtime: Histogram = metrics.histogram("celery_task_runtime")
        self._active: Gauge = metrics.gauge("celery_worker_tasks_active")
        self._series: dict[tuple[str, str, str | None], TaskSeries] = {}

    def series(self, name: str, hostname: str, delivered: str | None) -> TaskSeries:
        """The children for a task ``name`` on worker ``hostname`` whose message arrived on
        queue ``delivered`` (the band's queue; mapped to its work queue)."""
        key = (name, hostname, delivered)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = self._bind(
                name, hostname, work_queue_of(delivered, self.queues)
            )
        return found

    def series_of_work_queue(self, name: str, hostname: str, queue: str | None) -> TaskSeries:
        """The same, when the work queue is known already (from the dispatch)."""
        return self.series(name, hostname, queue or self.default_queue)

    def _bind(self, name: str, hostname: str, queue: str) -> TaskSeries:
        labels = (name, hostname, queue)
        return TaskSeries(
            labels=labels,
            received=self._received.labels(*labels),
            started=self._started.labels(*labels),
            succeeded=self._succeeded.labels(*labels),
            rejected=self._rejected.labels(*labels),
            runtime=self._runtime.labels(*labels),
            active=self._active.labels(hostname),
            _failed_family=self._failed,
        )


@dataclass(frozen=True)
class Attempted:
    """What the task body tells the counters: the result it reported, and the seconds the
    action ran (None: no action ran, e.g. an invalid dispatch)."""

    result: TaskResult
    seconds: float | None


class CeleryCounting:
    """Counts what Celery's consumer sees in the worker's main process, for one app:
    messages received (``task_received``) and rejected (``task_rejected``: unknown or
    invalid messages, and undecodable ones, which :class:`WorkerConsumer` signals too)."""

    def __init__(self, app: Any, counters: WorkerCounters, hostname: Any) -> None:
        self.app = app
        self.counters = counters
        #: () -> the worker's node name (known once the worker is built)
        self.hostname = hostname

    def connect(self) -> None:
        from celery import signals

        uid = f"treadle-metrics-{id(self)}"
        signals.task_received.connect(self.on_received, weak=False, dispatch_uid=uid)
        signals.task_rejected.connect(self.on_rejected, weak=False, dispatch_uid=uid)

    def disconnect(self) -> None:
        from celery import signals

        uid = f"treadle-metrics-{id(self)}"
        signals.task_received.disconnect(self.on_received, dispatch_uid=uid)
        signals.task_rejected.disconnect(self.on_rejected, dispatch_uid=uid)

    def _ours(self, sender: Any) -> bool:
        return getattr(sender, "app", None) is self.app

    def _host(self, fallback: Any) -> str:
        return str(self.hostname() or fallback or "unknown-worker")

    def on_received(self, sender: Any = None, request: Any = None, **_: Any) -> None:
        if request is None or not self._ours(sender):
            return
        key = routing_key_of(request.delivery_info)
        self.counters.series(str(request.name), self._host(request.hostname), key).received.inc()

    def on_rejected(self, sender: Any = None, message: Any = None, **_: Any) -> None:
        if message is None or not self._ours(sender):
            return
        headers = getattr(message, "headers", None) or {}
        name = headers.get("task") if isinstance(headers, Mapping) else None
        key = routing_key_of(getattr(message, "delivery_info", None))
        host = self._host(getattr(sender, "hostname", None))
        self.counters.series(str(name or UNKNOWN_TASK), host, key).rejected.inc()
