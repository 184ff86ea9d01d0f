"""Now and then, a scheduler reads its work queues' lengths and consumers from the broker and
records them, with when it last heard from each worker, for "why is it stuck".

Every ``TREADLE_OBSERVE_SECONDS`` (default 10) the scheduler asks the broker about the queues
that hold queued attempts (and the default queue): on RabbitMQ a passive declare of each
priority band gives its messages and consumers; on Redis the lengths of kombu's lists give
the messages, and consumers are not known (Redis does not track them). It writes them with
the workers' last signs of life (``WorkerLiveness``) to ``queue_observations`` and
``worker_observations`` (``store/observation_repo.py``). A broker that cannot be read
leaves the last observations, each with its time, as they were.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from amqp.exceptions import NotFound
from celery import Celery
from sqlalchemy import select

from treadle.common.statuses import AttemptStatus
from treadle.common.transport import band_queues, is_rabbitmq
from treadle.scheduler.service.broker_state import queue_keys
from treadle.scheduler.store import Store
from treadle.scheduler.store.models import attempts
from treadle.scheduler.store.observation_repo import QueueObservation

log = logging.getLogger("treadle.scheduler")


def read_queues(
    app: Celery, broker_url: str, queues: Sequence[str]
) -> dict[str, tuple[int, int | None]]:
    """``{queue: (messages, consumers)}`` of each work queue, its priority bands summed
    (consumers: of the queue itself; None on Redis). Raises the broker's error."""
    found: dict[str, tuple[int, int | None]] = {}
    with app.connection_for_read() as connection:
        if not is_rabbitmq(broker_url):
            channel: Any = connection.default_channel
            for queue in queues:
                messages = sum(int(channel.client.llen(key)) for key in queue_keys(channel, queue))
                found[queue] = (messages, None)
            return found
        for queue in queues:
            messages, consumers = 0, 0
            for name in band_queues(queue):
                counted = _declared(connection, name)
                if counted is not None:
                    messages += counted[0]
                    if name == queue:  # every worker of the queue consumes all its bands
                        consumers = counted[1]
            found[queue] = (messages, consumers)
    return found


def _declared(connection: Any, name: str) -> tuple[int, int] | None:
    """(messages, consumers) of an existing queue; None when it does not exist (a passive
    declare of a missing queue closes its channel, so each declare gets its own)."""
    channel = connection.channel()
    try:
        _, messages, consumers = channel.queue_declare(queue=name, passive=True)
        return int(messages), int(consumers)
    except NotFound:
        return None
    finally:
        with contextlib.suppress(Exception):  # a channel the broker closed already
            channel.close()


class BrokerObserver:
    """Reads the queues and records what it saw, every ``interval`` seconds."""

    def __init__(
        self,
        store: Store,
        app: Celery,
        *,
        broker_url: str,
        default_queue: str,
        workers_seen: Callable[[], Mapping[str, datetime]],
        clock: Callable[[], datetime],
        interval: float,
    ) -> None:
        self._store = store
        self._app = app
        self._broker_url = broker_url
        self._default_queue = default_queue
        self._workers_seen = workers_seen
        self._clock = clock
        self._interval = timedelta(seconds=interval)
        self._next = clock()
        #: The last observation of each queue (for the metrics of the same process).
        self.latest: dict[str, QueueObservation] = {}

    def step(self) -> bool:
        """Observe if it is time; True when it did."""
        now = self._clock()
        if now < self._next:
            return False
        self._next = now + self._interval
        with self._store.unit_of_work() as uow:
            queued = uow.connection.execute(
                select(attempts.c.queue)
                .where(
                    attempts.c.status == AttemptStatus.QUEUED.value, attempts.c.queue.is_not(None)
                )
                .distinct()
            ).scalars()
            queues = sorted({self._default_queue, *queued})
        try:
            counts = read_queues(self._app, self._broker_url, queues)
        except Exception as exc:  # the broker is down: keep the last observations
            log.warning("could not read the queues from the broker: %s", exc)
            counts = {}
        observed = [
            QueueObservation(queue, messages, consumers, now)
            for queue, (messages, consumers) in counts.items()
        ]
        with self._store.unit_of_work() as uow:
            uow.record_queue_observations(observed)
            uow.record_workers_seen(self._workers_seen())
        self.latest.update((o.queue, o) for o in observed)
        return True
