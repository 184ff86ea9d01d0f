"""The wire between scheduler and workers: task names, queues, and reliable delivery settings.

Both sides build their Celery app from this data (the scheduler to publish, the worker to
consume), so they agree without importing each other. Everything here is plain data; the
Celery and kombu objects are made at the edges.

What each reliability setting protects against (also in ``docs/deployment.md``):

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a worker that dies mid-task does not
  lose the message; the broker hands it to another worker.
* ``worker_prefetch_multiplier = 1``: a busy worker does not hoard messages another could run
  (the worker's consumer adds one spare message, ``TREADLE_WORKER_PREFETCH_SPARE``).
* ``confirm_publish`` (RabbitMQ): a publish returns only once the broker has the message.
* quorum queues with ``x-delivery-limit`` and a dead-letter exchange (RabbitMQ): replicated
  queues, and a message that keeps killing workers is dead-lettered instead of looping.
  The results queue is a quorum queue too, unless ``TREADLE_RESULTS_QUEUE_TYPE=classic``
  (:class:`QueueType`) trades its replication for a faster delivery to the scheduler.
* ``visibility_timeout`` (Redis): above the longest task, so a running task is not handed
  to a second worker while the first still works on it.
* no ETA or countdown anywhere: delays are scheduler timers in the database.

Priorities (0-9, 9 first; ``docs/flow-control.md``) mean the same on both brokers, each
done its own way, both decided here:

* RabbitMQ 3.10's quorum queues have no priorities, and classic priority queues would give
  up the delivery limit and replication. So each work queue has three *bands*, each a quorum
  queue of its own with the same arguments: ``<queue>.high`` (7-9), ``<queue>`` itself
  (4-6, where the default 5 goes, so existing queues and workers keep working) and
  ``<queue>.low`` (0-3). A dispatch goes to its band's queue; a worker consumes every band
  of each queue it serves (:func:`consumed_queues`).
* Redis: kombu's transport keeps one list per priority step and pops the lowest step
  first; with ``priority_steps`` 0-9 every level is its own list, and Treadle's 9-first
  maps to kombu's 0-first (:func:`kombu_priority`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from treadle.common.flow import MAX_PRIORITY, MIN_PRIORITY
from treadle.common.spec import RunnerType

#: Runner kinds a worker executes; ``inquiry`` and ``workflow`` never leave the scheduler.
WORKER_RUNNERS = (RunnerType.PYTHON, RunnerType.SHELL, RunnerType.HTTP)

DEAD_LETTER_EXCHANGE = "treadle.dead-letter"
DEAD_LETTER_QUEUE = "treadle.dead"

#: A message header naming the attempt, so dead-lettered messages can be traced back.
ATTEMPT_HEADER = "treadle-attempt"

#: The control command a worker answers with its main process id and the attempts it
#: holds (``{"pid": int, "attempts": [attempt id, ...]}``); the scheduler's liveness check.
WORKER_STATE_COMMAND = "treadle_worker_state"


@dataclass(frozen=True)
class WorkerState:
    """A worker's answer to :data:`WORKER_STATE_COMMAND`: it lives, which main process
    answers (None: not told) and the attempts it holds (None: not told, e.g. a worker
    that does not know the command answered with an error)."""

    pid: int | None = None
    attempts: frozenset[str] | None = None

    @classmethod
    def of_reply(cls, reply: Any) -> WorkerState:
        """Read a reply leniently: whatever is missing or malformed is 'not told'."""
        if not isinstance(reply, Mapping):
            return cls()
        pid = reply.get("pid")
        attempts = reply.get("attempts")
        held = (
            frozenset(a for a in attempts if isinstance(a, str))
            if isinstance(attempts, list)
            else None
        )
        return cls(pid if isinstance(pid, int) else None, held)


def task_name(runner: RunnerType) -> str:
    """The Celery task that runs actions of ``runner`` (what Flower shows)."""
    if runner not in WORKER_RUNNERS:
        raise ValueError(f"{runner.value} actions are handled by the scheduler, not a worker")
    return f"treadle.run.{runner.value}"


@dataclass(frozen=True)
class QueueDeclaration:
    """A queue as both sides declare it: its name and broker arguments."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    dead_letter: bool = False


def is_rabbitmq(broker_url: str) -> bool:
    return broker_url.startswith(("amqp://", "amqps://", "pyamqp://"))


def task_queue(name: str, broker_url: str, delivery_limit: int) -> QueueDeclaration:
    """A work queue: quorum, bounded redeliveries, dead-lettering (RabbitMQ; plain on Redis)."""
    if not is_rabbitmq(broker_url):
        return QueueDeclaration(name)
    return QueueDeclaration(
        name,
        {
            "x-queue-type": "quorum",
            "x-delivery-limit": delivery_limit,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": DEAD_LETTER_QUEUE,
        },
        dead_letter=True,
    )


class QueueType(StrEnum):
    """The RabbitMQ queue type of a queue without a delivery limit (results, dead letters).

    Quorum queues are replicated over a cluster's nodes and hand a message to a consumer
    once a majority has written it. A classic queue lives on one node and hands it over
    without waiting for its disk write (a confirmed message is still on disk): on a
    single-node broker it loses nothing and delivers sooner, see ``docs/scaling.md``.
    """

    QUORUM = "quorum"
    CLASSIC = "classic"


def plain_queue(
    name: str, broker_url: str, queue_type: QueueType = QueueType.QUORUM
) -> QueueDeclaration:
    """A durable queue without a delivery limit (results, dead letters), of ``queue_type``
    on RabbitMQ (plain on Redis)."""
    if not is_rabbitmq(broker_url):
        return QueueDeclaration(name)
    return QueueDeclaration(name, {"x-queue-type": str(queue_type)})


# -- priorities ------------------------------------------------------------------------------


class PriorityBand(StrEnum):
    """Where a priority goes on RabbitMQ: one quorum queue per band, each consumed by every
    worker of its work queue (high bands first)."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def lowest(self) -> int:
        """The lowest priority in the band (each band runs up to the next one's lowest)."""
        return _BAND_LOWEST[self]

    def queue(self, name: str) -> str:
        """The band's queue of the work queue ``name``: ``name.high``, ``name``, ``name.low``."""
        return name if self is PriorityBand.NORMAL else f"{name}.{self.value}"


#: Bands from first to last, with the lowest priority each holds.
_BAND_LOWEST = {PriorityBand.HIGH: 7, PriorityBand.NORMAL: 4, PriorityBand.LOW: 0}

#: Kombu's Redis priority steps: each of the ten levels its own list (kombu's default has
#: four, which would put 7, 8 and 9 in one list and serve them in arrival order).
REDIS_PRIORITY_STEPS = tuple(range(MIN_PRIORITY, MAX_PRIORITY + 1))


def checked_priority(priority: int) -> int:
    """``priority`` if it is 0-9; ValueError otherwise (the core never sends another)."""
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY or isinstance(priority, bool):
        raise ValueError(f"a priority runs from {MIN_PRIORITY} to {MAX_PRIORITY}, not {priority!r}")
    return priority


def band_of(priority: int) -> PriorityBand:
    """The band a priority falls in: 7-9 high, 4-6 normal, 0-3 low."""
    checked = checked_priority(priority)
    return next(band for band in PriorityBand if checked >= band.lowest)


def kombu_priority(priority: int) -> int:
    """Treadle's priority (9 first) as kombu's Redis transport counts (0 first)."""
    return MAX_PRIORITY - checked_priority(priority)


def band_queues(name: str) -> tuple[str, ...]:
    """Every band's queue of the work queue ``name``, high first."""
    return tuple(band.queue(name) for band in PriorityBand)


def consumed_queues(names: Iterable[str], broker_url: str) -> list[str]:
    """The queues a worker serving the work queues ``names`` consumes, in the order that
    favours high priorities: on RabbitMQ every band of each (all high bands, then the
    queues themselves, then the low bands); on Redis the queues themselves (kombu's
    priority lists come with each)."""
    unique = list(dict.fromkeys(names))
    if not is_rabbitmq(broker_url):
        return unique
    return [band.queue(name) for band in PriorityBand for name in unique]


@dataclass(frozen=True)
class PriorityRoute:
    """Where a dispatch of some priority is published: the queue's name on the broker, and
    the message priority to set (kombu's, on Redis; None on RabbitMQ, where the band's
    queue is the order)."""

    queue: str
    message_priority: int | None


def priority_route(queue: str, priority: int, broker_url: str) -> PriorityRoute:
    """The route of a dispatch to the work queue ``queue`` at ``priority`` (0-9, 9 first)."""
    if is_rabbitmq(broker_url):
        return PriorityRoute(band_of(priority).queue(queue), None)
    return PriorityRoute(queue, kombu_priority(priority))


def celery_settings(
    broker_url: str, *, default_queue: str, visibility_timeout: int, task_events: bool = False
) -> dict[str, Any]:
    """Celery configuration shared by the scheduler's publisher and the workers.

    ``task_events``: workers send Celery's task events from the start (as ``celery worker
    -E``). Off by default, as in Celery: three event messages per task cost a short
    task's worker a sixth of its time, and Flower turns events on in the workers it
    watches by itself (its ``--enable_events``, on by default).
    """
    transport: dict[str, Any] = {}
    if is_rabbitmq(broker_url):
        transport["confirm_publish"] = True
    else:
        transport["visibility_timeout"] = visibility_timeout
        # Publisher, workers and the reconciler's look at the queues must share the steps.
        transport["priority_steps"] = list(REDIS_PRIORITY_STEPS)
    return {
        "broker_url": broker_url,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "task_default_queue": default_queue,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_ignore_result": True,
        "result_backend": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_track_started": True,
        "worker_send_task_events": task_events,
        "task_send_sent_event": True,
        "worker_hijack_root_logger": False,
        "broker_native_delayed_delivery_queue_type": "quorum",
    }
