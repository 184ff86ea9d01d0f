"""The worker's Celery app, built by a factory from :class:`Settings` (no import-time app).

:func:`create_celery_app` configures an app from the shared wire contract
(:mod:`treadle.common.transport`): reliable delivery settings, the work queues with their
broker arguments (quorum, delivery limit, dead-lettering on RabbitMQ; plain on Redis) and
their priority bands (on RabbitMQ each work queue is three queues, ``.high``, itself and
``.low``, all consumed, high first; :func:`worker_queues`),
and the declarations a worker makes when it connects: the results queue it reports to,
and the dead-letter exchange and queue its work queues point at.
:func:`create_worker_app` adds the ``treadle.run.*`` tasks and the packs they serve.

Celery 5.5+ sets up "native delayed delivery" (28 extra exchanges and queues per vhost,
quorum by default, with every work queue bound to them) as soon as it sees a quorum
queue. That machinery exists only for ETA/countdown tasks, which Treadle never sends
(delays are scheduler timers in the database), so the worker's consumer leaves that
step out (:class:`WorkerConsumer`): the broker holds only Treadle's own queues.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from celery import Celery, bootsteps
from celery.worker.consumer import Consumer
from kombu.entity import Exchange, Queue

from treadle.common.errors import ConfigurationError
from treadle.common.metrics import Metrics
from treadle.common.settings import Settings
from treadle.common.transport import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_QUEUE,
    QueueDeclaration,
    celery_settings,
    consumed_queues,
    is_rabbitmq,
    plain_queue,
    task_queue,
)
from treadle.worker import state_command
from treadle.worker.catalog_loader import PackCatalog, pack_folders
from treadle.worker.execute import RunnerSettings
from treadle.worker.metrics import CeleryCounting, WorkerCounters, work_queue_map
from treadle.worker.reports import ReportPublisher, SplitReports
from treadle.worker.tasks import WorkerIdentity, WorkerRuntime, register_tasks

__all__ = [
    "WorkerConsumer",
    "create_celery_app",
    "create_worker_app",
    "dead_letter_queue",
    "results_queue",
    "work_queue",
    "worker_queues",
]

_DELAYED_DELIVERY_STEP = "celery.worker.consumer.delayed_delivery:DelayedDelivery"


# -- queues as kombu declares them ------------------------------------------------------


def _kombu_queue(declaration: QueueDeclaration, exchange: Exchange, routing_key: str) -> Queue:
    return Queue(
        declaration.name,
        exchange,
        routing_key=routing_key,
        durable=True,
        queue_arguments=dict(declaration.arguments) or None,
    )


def work_queue(name: str, settings: Settings) -> Queue:
    """A work queue: bound to a durable direct exchange of its own name (what Celery's
    router creates for ``send_task(queue=name)``), routing key = its name."""
    declaration = task_queue(name, settings.broker_url, settings.delivery_limit)
    exchange = Exchange(name, type="direct", durable=True)
    return _kombu_queue(declaration, exchange, name)


def worker_queues(settings: Settings, queues: Iterable[str] = ()) -> list[str]:
    """The queues a worker serving ``queues`` (default: ``settings.default_queue``)
    consumes: every priority band of each on RabbitMQ, high bands first; the queues
    themselves on Redis (:func:`~treadle.common.transport.consumed_queues`)."""
    names = list(queues) or [settings.default_queue]
    return consumed_queues(names, settings.broker_url)


def results_queue(settings: Settings) -> Queue:
    """The queue workers report to: reports are published to the default exchange with
    the queue's name as routing key, so it needs no exchange binding of its own."""
    declaration = plain_queue(
        settings.results_queue, settings.broker_url, settings.results_queue_type
    )
    default_exchange = Exchange("")
    return _kombu_queue(declaration, default_exchange, settings.results_queue)


def dead_letter_queue(settings: Settings) -> Queue | None:
    """The dead-letter queue, bound to the durable direct dead-letter exchange with
    routing key ``DEAD_LETTER_QUEUE``; ``None`` on brokers without dead-lettering."""
    if not is_rabbitmq(settings.broker_url):
        return None
    declaration = plain_queue(DEAD_LETTER_QUEUE, settings.broker_url)
    exchange = Exchange(DEAD_LETTER_EXCHANGE, type="direct", durable=True)
    return _kombu_queue(declaration, exchange, DEAD_LETTER_QUEUE)


def broker_declarations(settings: Settings) -> tuple[Queue, ...]:
    """What a worker declares on connecting, besides its work queues."""
    dead = dead_letter_queue(settings)
    return (results_queue(settings),) if dead is None else (results_queue(settings), dead)


# -- the consumer -----------------------------------------------------------------------


class _WorkerBlueprint(Consumer.Blueprint):  # type: ignore[misc]  # Celery is untyped
    default_steps = [s for s in Consumer.Blueprint.default_steps if s != _DELAYED_DELIVERY_STEP]


#: Transport options for connections whose messages need no broker confirm.
_NO_CONFIRMS: Mapping[str, Any] = {"confirm_publish": False}


#: The Celery setting (ours) of how many messages a worker holds beyond its processes'.
_PREFETCH_SPARE = "treadle_worker_prefetch_spare"


class WorkerConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer without native delayed delivery (Treadle never sends ETAs), with
    its events (task states for Flower) published without confirms, and holding
    ``TREADLE_WORKER_PREFETCH_SPARE`` messages beyond Celery's prefetch count.

    The spare message is why short tasks in bulk do not wait between each other: a task
    is acknowledged only once its result is confirmed, so with Celery's count alone (one
    per process) the broker sends the next message only after that acknowledgement, and
    the process waits out the round trip (about half of a no-op task's cycle here,
    docs/scaling.md).

    Confirmed events cost a broker round trip each, three per task, and were the worker's
    main cost for short tasks; an event lost in a broker failure is only monitoring data.
    The consumer writes nothing else on this connection.
    """

    Blueprint = _WorkerBlueprint

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._spare = int(self.app.conf.get(_PREFETCH_SPARE, 0))
        self._add_spare()

    def _add_spare(self) -> None:
        """Hold ``TREADLE_WORKER_PREFETCH_SPARE`` messages beyond Celery's prefetch count
        (concurrency x multiplier), unless prefetching is off (0)."""
        if self.initial_prefetch_count:
            self.initial_prefetch_count += self._spare

    def _update_prefetch_count(self, index: int = 0) -> Any:
        # A resized pool: Celery recomputes the count from the processes alone.
        done = super()._update_prefetch_count(index)
        self._add_spare()
        return done

    @property
    def max_prefetch_count(self) -> int:
        return int(super().max_prefetch_count) + self._spare

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        # counted as rejected like Celery's unknown and invalid messages (metrics)
        from celery import signals

        signals.task_rejected.send(sender=self, message=message, exc=exc)
        super().on_decode_error(message, exc)

    def connection_for_write(self, url: Any = None, heartbeat: Any = None) -> Any:
        return self.ensure_connected(
            self.app.connection_for_write(
                url=url, heartbeat=heartbeat, transport_options=_NO_CONFIRMS
            )
        )


class DeclareBrokerEntities(bootsteps.StartStopStep):  # type: ignore[misc]
    """Declares the results queue and the dead-letter exchange and queue each time the
    consumer connects (idempotent; the work queues are declared by Celery itself).

    An existing queue declared with other arguments fails the worker's start with a
    :class:`ConfigurationError` naming the queue, instead of a bare broker error.
    """

    requires = ("celery.worker.consumer.connection:Connection",)
    declarations: tuple[Queue, ...] = ()

    def start(self, c: Any) -> None:
        channel = c.connection.channel()
        try:
            for queue in self.declarations:
                try:
                    queue.bind(channel).declare()
                except c.connection.channel_errors as exc:
                    arguments = dict(getattr(queue, "queue_arguments", None) or {})
                    raise ConfigurationError(
                        f"cannot declare queue '{queue.name}' with arguments {arguments}: "
                        f"{exc}. A queue or exchange of that name exists with other "
                        "arguments: delete it, or align the settings (broker URL, "
                        "TREADLE_DELIVERY_LIMIT, TREADLE_RESULTS_QUEUE_TYPE) with the "
                        "other Treadle processes"
                    ) from exc
        finally:
            channel.close()


class RecordWorkerName(bootsteps.Step):  # type: ignore[misc]
    """Records the worker's node name and main process id in the tasks'
    :class:`WorkerIdentity` when the worker is built (before a prefork pool forks, so its
    children inherit them)."""

    identity: WorkerIdentity | None = None

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        if self.identity is not None:
            self.identity.name = str(parent.hostname)
            self.identity.pid = os.getpid()
        super().__init__(parent, **kwargs)


def _declaring_step(declarations: Sequence[Queue]) -> type[DeclareBrokerEntities]:
    return type(
        "DeclareTreadleQueues",
        (DeclareBrokerEntities,),
        {"declarations": tuple(declarations), "__module__": __name__},
    )


# -- the apps ---------------------------------------------------------------------------


def create_celery_app(
    settings: Settings, *, name: str = "treadle", queues: Iterable[str] = ()
) -> Celery:
    """A Celery app configured for Treadle's workers, not yet holding any task.

    ``queues`` are work queues besides ``settings.default_queue`` (all declared with the
    same arguments, each with its priority bands on RabbitMQ); a worker consumes whichever
    of them it is told to (:func:`worker_queues` names them).
    """
    app = Celery(name, set_as_current=False)
    app.conf.update(
        celery_settings(
            settings.broker_url,
            default_queue=settings.default_queue,
            visibility_timeout=settings.redis_visibility_timeout,
            task_events=settings.worker_send_task_events,
        )
    )
    if is_rabbitmq(settings.broker_url):  # Redis: 1 and no spare, see Settings
        app.conf.worker_prefetch_multiplier = settings.worker_prefetch_multiplier
        app.conf[_PREFETCH_SPARE] = settings.worker_prefetch_spare
    names = worker_queues(settings, [settings.default_queue, *queues])
    app.conf.update(
        task_queues=[work_queue(queue, settings) for queue in names],
        # Keep retrying an unreachable broker for as long as it takes, logging each try.
        broker_connection_max_retries=None,
        worker_consumer=f"{WorkerConsumer.__module__}:{WorkerConsumer.__qualname__}",
    )
    app.steps["consumer"].add(_declaring_step(broker_declarations(settings)))
    state_command.register()  # the reconciler asks workers what they hold
    return app


def create_worker_app(
    settings: Settings,
    *,
    name: str = "treadle",
    queues: Iterable[str] = (),
    catalog: PackCatalog | None = None,
    metrics: Metrics | None = None,
) -> Celery:
    """:func:`create_celery_app` with the ``treadle.run.*`` tasks registered.

    The tasks serve ``catalog`` (default: the shipped packs and ``settings.pack_paths``),
    loaded lazily in each worker process. With ``metrics`` (of the WORKER source) the
    worker counts its tasks there (:mod:`treadle.worker.metrics`).
    """
    queues = list(queues)
    app = create_celery_app(settings, name=name, queues=queues)
    counters = (
        None
        if metrics is None
        else WorkerCounters(
            metrics,
            work_queue_map([settings.default_queue, *queues], settings.broker_url),
            settings.default_queue,
        )
    )
    packs = catalog if catalog is not None else PackCatalog(pack_folders(settings))

    @cache
    def runner_settings_for(hostname: str) -> RunnerSettings:
        return RunnerSettings.from_settings(settings, worker_name=hostname)

    runtime = WorkerRuntime(
        # On Redis the scheduler counts deliveries from started notices: always at once.
        started_notice_after=(
            settings.worker_started_notice_after if is_rabbitmq(settings.broker_url) else 0.0
        ),
        load_actions=packs.catalog,
        counters=counters,
        runner_settings_for=runner_settings_for,
        # No heartbeats on the report connection: it is idle between tasks and nothing
        # would answer them; a connection the broker dropped fails the next publish,
        # which reconnects (kombu's bounded retry).
        reports=SplitReports(
            confirmed=ReportPublisher(
                lambda: app.connection_for_write(heartbeat=0), results_queue(settings)
            ),
            unconfirmed=ReportPublisher(
                lambda: app.connection_for_write(heartbeat=0, transport_options=_NO_CONFIRMS),
                results_queue(settings),
            ),
        ),
    )
    register_tasks(app, runtime)
    if counters is not None:
        CeleryCounting(app, counters, lambda: runtime.identity.name).connect()
    app.steps["worker"].add(
        type(
            "RecordTreadleWorkerName",
            (RecordWorkerName,),
            {"identity": runtime.identity, "__module__": __name__},
        )
    )
    return app
