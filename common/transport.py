"""The wire between scheduler and workers: task names, queues, and reliable delivery settings.

Both sides build their Celery app from this data (the scheduler to publish, the worker to
consume), so they agree without importing each other. Everything here is plain data; the
Celery and kombu objects are made at the edges.

What each reliability setting protects against (also in ``docs/deployment.md``):

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a worker that dies mid-task does not
  lose the message; the broker hands it to another worker.
* ``worker_prefetch_multiplier = 1``: a busy worker does not hoard messages another could run.
* ``confirm_publish`` (RabbitMQ): a publish returns only once the broker has the message.
* quorum queues with ``x-delivery-limit`` and a dead-letter exchange (RabbitMQ): replicated
  queues, and a message that keeps killing workers is dead-lettered instead of looping.
* ``visibility_timeout`` (Redis): above the longest task, so a running task is not handed
  to a second worker while the first still works on it.
* no ETA or countdown anywhere: delays are scheduler timers in the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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


def plain_queue(name: str, broker_url: str) -> QueueDeclaration:
    """A durable queue without a delivery limit (results, dead letters)."""
    if not is_rabbitmq(broker_url):
        return QueueDeclaration(name)
    return QueueDeclaration(name, {"x-queue-type": "quorum"})


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
