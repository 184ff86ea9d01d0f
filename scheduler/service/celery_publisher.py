"""Publish outbox dispatches as Celery tasks, confirmed by the broker before the rows are marked.

The relay calls :meth:`CeleryPublisher.publish` inside the transaction that claimed the
outbox rows and marks them sent only after it returns, so ``publish`` must not return until
the broker holds every message. On RabbitMQ that means publisher confirms; rather than wait
for one confirm per message (about 2 ms each on a quorum queue, which fsyncs), the channel
is put in confirm mode, the whole batch is written, and then the broker's (usually
cumulative) acknowledgements are awaited once (:mod:`.publish_confirms`). A nack raises, as
does a broken connection that a second try on a new one does not mend: the transaction
rolls back and the rows are published again later (duplicates are harmless).

The scheduler builds its own Celery app from the shared wire settings
(:func:`treadle.common.transport.celery_settings`); it never imports the worker. Each
message follows the wire contract: task ``treadle.run.<runner>``, the dispatch as its only
argument, ``task_id`` = attempt id, the ``treadle-attempt`` header, Celery soft/hard time
limits from the task's timeout, routed to the dispatch's pinned queue as declared by
:func:`~treadle.common.transport.task_queue`, at the command's priority
(:func:`~treadle.common.transport.priority_route`: the band's queue on RabbitMQ, kombu's
message priority on Redis); a batch goes out highest priority first. The message's
``argsrepr`` (what Flower and worker logs show as the arguments) names the action and
attempt, never the input, which may hold secrets. The messages are built by
:mod:`.task_messages` and written by the connection's kombu producer, without
``send_task``'s routing and result object (half of its cost).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from celery import Celery
from kombu.connection import Connection
from kombu.entity import Exchange, Queue

from treadle.common.errors import ConfigurationError
from treadle.common.messages import TaskDispatch
from treadle.common.settings import Settings
from treadle.common.spec import RunnerType
from treadle.common.transport import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_QUEUE,
    WORKER_RUNNERS,
    WORKER_STATE_COMMAND,
    QueueDeclaration,
    WorkerState,
    celery_settings,
    is_rabbitmq,
    plain_queue,
    priority_route,
    task_name,
    task_queue,
)
from treadle.scheduler.core.commands import CancelTask, Command, DispatchTask
from treadle.scheduler.service.broker_state import held_attempts, reserved_before, run_id
from treadle.scheduler.service.publish_confirms import PublishConfirms, send_on_kept_connection
from treadle.scheduler.service.task_messages import (
    HARD_LIMIT_GRACE_SECONDS,
    TaskMessages,
    announce,
    published,
)

log = logging.getLogger("treadle.scheduler")


class PublishCounts(Protocol):
    """Told what the publisher got to the broker (the scheduler's metrics): the
    ``(task name, logical queue)`` of each confirmed dispatch, and the attempts revoked."""

    def sent(self, tasks: Sequence[tuple[str, str]]) -> None: ...

    def revoked(self, attempt_ids: Sequence[str]) -> None: ...


def make_celery_app(settings: Settings) -> Celery:
    """The scheduler's own Celery app (never the current app), from the shared settings."""
    app = Celery("treadle-scheduler", set_as_current=False)
    app.conf.update(
        celery_settings(
            settings.broker_url,
            default_queue=settings.default_queue,
            visibility_timeout=settings.redis_visibility_timeout,
        )
    )
    # No task-sent events: each would be one more confirmed publish per dispatch (about a
    # sixth of the scheduler's time under load). Flower still sees every task from the
    # workers' events (received, started, succeeded/failed).
    app.conf.task_send_sent_event = False
    return app


def kombu_queue(declaration: QueueDeclaration, exchange: Exchange | None = None) -> Queue:
    """A durable kombu queue with the declaration's arguments, bound to ``exchange``.

    Without ``exchange`` the queue is only declared (no binding). Either way messages are
    published through the default exchange with the queue's name as routing key, which is
    how Celery sends to a direct-routed queue and how workers send their reports.
    """
    return Queue(
        declaration.name,
        exchange if exchange is not None else Exchange(""),
        routing_key=declaration.name,
        queue_arguments=dict(declaration.arguments) or None,
        durable=True,
    )


def dead_letter_queue(broker_url: str) -> Queue:
    """The dead-letter queue, bound to the durable direct dead-letter exchange."""
    return kombu_queue(
        plain_queue(DEAD_LETTER_QUEUE, broker_url),
        Exchange(DEAD_LETTER_EXCHANGE, type="direct", durable=True),
    )


def declare(queue: Queue, channel: Any, connection: Connection | None) -> None:
    """Declare ``queue`` (and its exchange and binding) on ``channel``.

    A queue that exists with other arguments (another delivery limit, or a classic queue
    where a quorum queue is expected) is a configuration problem, not an outage: it raises
    ConfigurationError naming the queue instead of being retried.
    """
    errors: tuple[type[BaseException], ...] = (
        tuple(connection.channel_errors) if connection is not None else ()
    )
    try:
        queue.bind(channel).declare()
    except errors as exc:
        arguments = dict(getattr(queue, "queue_arguments", None) or {})
        raise ConfigurationError(
            f"queue '{queue.name}' exists on the broker with other arguments than "
            f"{arguments}: {exc}. Delete it, or use the settings it was declared with "
            "(TREADLE_DELIVERY_LIMIT, TREADLE_RESULTS_QUEUE_TYPE, the broker type)"
        ) from exc


class CeleryPublisher:
    """Sends dispatches as Celery tasks and cancellations as revokes.

    One connection and producer are kept open between batches; a failure drops them, and
    the next call reconnects. A kept connection found broken by a batch (the broker
    restarted while it was idle) is replaced at once and the batch sent again, once; any
    other failure raises. Each dispatch names its runner and queue (pinned with the
    run's definition version); a dispatch without a runner (from an older scheduler) runs
    as python, one without a queue goes to the default queue.
    """

    def __init__(
        self,
        app: Celery,
        *,
        broker_url: str,
        delivery_limit: int,
        default_queue: str,
        confirm_timeout: float = 30.0,
    ) -> None:
        self.app = app
        self._broker_url = broker_url
        self._delivery_limit = delivery_limit
        self._default_queue = default_queue
        self._confirm_timeout = confirm_timeout
        self._rabbitmq = is_rabbitmq(broker_url)
        self._queues: dict[str, Queue] = {}
        self._connection: Connection | None = None
        self._channel: Any = None
        self._producer: Any = None
        self._confirms: PublishConfirms | None = None
        self._declared: set[str] = set()
        self._messages = TaskMessages(app)
        self.published = 0
        #: Told each confirmed batch and each revoke (None: nobody counts).
        self.counts: PublishCounts | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> CeleryPublisher:
        return cls(
            make_celery_app(settings),
            broker_url=settings.broker_url,
            delivery_limit=settings.delivery_limit,
            default_queue=settings.default_queue,
        )

    # -- connection --------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the publishing connection (if not open) and declare the dead-letter route."""
        if self._connection is not None:
            return
        # Confirms are managed here per batch, so py-amqp's per-message mode is turned off;
        # heartbeats are off too: an idle publisher reads nothing, and a dead connection
        # shows at the next publish, which then reconnects and sends its batch again.
        connection = self.app.connection_for_write(
            transport_options={"confirm_publish": False}, heartbeat=0
        )
        try:
            connection.ensure_connection(max_retries=0)  # the caller decides on retries
            channel = connection.channel()
            confirms = PublishConfirms(channel) if self._rabbitmq else None
            if self._rabbitmq:
                declare(dead_letter_queue(self._broker_url), channel, connection)
        except BaseException:
            connection.release()
            raise
        self._connection = connection
        self._channel = channel
        self._confirms = confirms
        self._producer = self.app.amqp.Producer(channel, auto_declare=False)
        self._declared = set()

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        self._channel = self._producer = self._confirms = None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # already broken: nothing more to release
                log.debug("error while closing the publishing connection", exc_info=True)

    def close(self) -> None:
        self._disconnect()
        self.app.close()

    def queue(self, name: str) -> Queue:
        """The kombu queue ``name`` (a work queue or one of its priority bands) as workers
        declare it (built once, declared per connection)."""
        queue = self._queues.get(name)
        if queue is None:
            # As the workers declare it: bound to a durable direct exchange of its own
            # name (what Celery's router creates for a queue), routing key = its name.
            queue = kombu_queue(
                task_queue(name, self._broker_url, self._delivery_limit),
                Exchange(name, type="direct", durable=True),
            )
            self._queues[name] = queue
        if name not in self._declared and self._channel is not None:
            declare(queue, self._channel, self._connection)
            self._declared.add(name)
        return queue

    # -- publishing --------------------------------------------------------------------------

    def publish(self, commands: Sequence[Command]) -> None:
        """Publish dispatches (confirmed) and revoke cancelled attempts; raises on failure."""
        # Highest priority first (stable: arrival order within a priority), so a batch
        # reaches the broker, and a band or priority list, in the order it should run.
        dispatches = sorted(
            (c for c in commands if isinstance(c, DispatchTask)), key=lambda c: -c.priority
        )
        cancels = [c.attempt_id for c in commands if isinstance(c, CancelTask)]
        for command in commands:
            if not isinstance(command, DispatchTask | CancelTask):
                log.warning("the publisher ignores a %s command", type(command).__name__)
        if dispatches:
            send_on_kept_connection(
                lambda: self._send_confirmed(dispatches), self._connection, what="publishing"
            )
            self.published += len(dispatches)
            if self.counts is not None:  # the logical queue, as workers count it
                self.counts.sent([self._labels(d.dispatch) for d in dispatches])
        if cancels:
            self.revoke(cancels)

    def _send_confirmed(self, dispatches: Sequence[DispatchTask]) -> None:
        """Send ``dispatches`` on the kept connection (opened if need be) and wait for the
        broker's confirms; a failure drops the connection and raises."""
        self.connect()
        try:
            for dispatch in dispatches:
                self._send(dispatch.dispatch, dispatch.priority)
            if self._confirms is not None and self._connection is not None:
                self._confirms.wait(self._connection, self._confirm_timeout)
        except BaseException:
            self._disconnect()
            raise

    def _labels(self, dispatch: TaskDispatch) -> tuple[str, str]:
        runner = dispatch.runner if dispatch.runner in WORKER_RUNNERS else RunnerType.PYTHON
        return task_name(runner), dispatch.queue or self._default_queue

    def _send(self, dispatch: TaskDispatch, priority: int) -> None:
        """One dispatch as the Celery task of its pinned runner, to its pinned queue at
        ``priority`` (its band's queue on RabbitMQ, kombu's priority on Redis), through the
        producer itself rather than ``send_task`` (:mod:`.task_messages` says why)."""
        name, queue = self._labels(dispatch)
        route = priority_route(queue, priority, self._broker_url)
        message = self._messages.build(name, dispatch, route.message_priority)
        routing_key = self.queue(route.queue).name  # declared once per connection
        announce(message, routing_key)
        # As Celery sends to a direct-routed queue: the default exchange, keyed by its name.
        self._producer.publish(
            message.body,
            exchange="",
            routing_key=routing_key,
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,
            headers=message.headers,
            retry=False,  # a failure fails the batch; the relay publishes it again
            **message.properties,
        )
        published(message, routing_key)

    def revoke(self, attempt_ids: Iterable[str]) -> None:
        """Tell every worker to discard (or, if running, terminate) these attempts.

        Best effort: workers that are down miss it, and a late result of a revoked attempt
        is ignored by the core anyway.
        """
        ids = sorted(set(attempt_ids))
        if not ids:
            return
        try:
            self.app.control.revoke(ids, terminate=True)
        except Exception as exc:
            log.warning("could not revoke %d attempt(s): %s", len(ids), exc)
            return
        if self.counts is not None:
            self.counts.revoked(ids)

    def ping(self, workers: Sequence[str], timeout: float) -> dict[str, WorkerState]:
        """The workers among ``workers`` that answer within ``timeout`` s, each with its
        main process id (which incarnation of the node answers) and the attempts it holds.

        Broadcasts Treadle's ``treadle_worker_state`` control command to those workers
        only. A worker that does not know it (another version, a bare Celery worker) still
        answers, with an error: it counts as alive, its process and attempts not told.
        Raises the broker's error when the question cannot be sent: a scheduler that
        cannot reach the broker must not conclude that the workers are gone.
        """
        if not workers:
            return {}
        replies = self.app.control.broadcast(
            WORKER_STATE_COMMAND,
            destination=list(workers),
            reply=True,
            timeout=timeout,
            limit=len(workers),
        )
        answered: dict[str, WorkerState] = {}
        for reply in replies or []:
            for worker, state in reply.items():
                answered[str(worker)] = WorkerState.of_reply(state)
        return answered

    def reservations(self, older_than: float) -> dict[str, float]:
        """On Redis: attempts a worker took off the queue (reserved, not yet acknowledged)
        more than ``older_than`` seconds ago, with how long ago. Empty on RabbitMQ, which
        gives a lost worker's messages back at once by itself.

        Kombu's Redis transport keeps each delivered, unacknowledged message in a hash and
        its delivery time in a sorted set until the worker acknowledges it (Treadle's
        workers acknowledge late, after the result). Raises the broker's error when Redis
        cannot be read.
        """
        if self._rabbitmq:
            return {}
        with self.app.connection_for_read() as connection:
            return reserved_before(connection.default_channel, time.time() - older_than)

    def broker_incarnation(self) -> str | None:
        """Which incarnation of the broker answers: Redis's ``run_id``, new at every start
        of the server (a restart without persistence loses every message). None on
        RabbitMQ, whose quorum queues keep their messages. Raises the broker's error."""
        if self._rabbitmq:
            return None
        with self.app.connection_for_read() as connection:
            return run_id(connection.default_channel.client)

    def held_attempts(self, queues: Sequence[str]) -> set[str]:
        """On Redis: the attempts whose messages are still on the broker, waiting in one of
        ``queues`` or reserved by a worker (see :mod:`.broker_state`). Raises the broker's
        error; RabbitMQ is not asked (it never needs to be)."""
        if self._rabbitmq:
            raise NotImplementedError("RabbitMQ is not inspected for held messages")
        with self.app.connection_for_read() as connection:
            return held_attempts(connection.default_channel, queues)


__all__ = [
    "HARD_LIMIT_GRACE_SECONDS",
    "CeleryPublisher",
    "PublishCounts",
    "dead_letter_queue",
    "kombu_queue",
    "make_celery_app",
]
