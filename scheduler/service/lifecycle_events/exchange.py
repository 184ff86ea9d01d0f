"""Publishing lifecycle events to the broker's topic exchange, confirmed.

The exchange (``treadle.events`` unless ``TREADLE_LIFECYCLE_EXCHANGE`` says otherwise) is
a durable topic exchange the publisher declares itself; each event is one persistent
message whose routing key is its CloudEvent type (``workflows.changes.run.start`` ...),
whose body is the CloudEvent in the structured JSON form (``application/cloudevents+json``)
and whose ``message_id`` is the event's id. A consumer binds its own queue, for example
with ``workflows.changes.run.#`` for every run event or ``#`` for all.

Like the dispatches (``celery_publisher.py``), a batch is written whole and the broker's
confirms are awaited once (RabbitMQ); a refusal or a broken connection raises, the batch
stays unpublished and goes again later (consumers drop copies by id). The connection comes
from the scheduler's Celery app, with the same wire settings as its dispatches; it is its
own (the publishing thread owns it) and kept open between batches; one found broken (the
broker restarted meanwhile) is replaced and the batch sent again once
(:func:`~treadle.scheduler.service.publish_confirms.send_on_kept_connection`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery
from kombu.connection import Connection
from kombu.entity import Exchange
from kombu.messaging import Producer

from treadle.common.transport import is_rabbitmq
from treadle.scheduler.service.lifecycle_events.cloudevents import CLOUDEVENTS_JSON
from treadle.scheduler.service.publish_confirms import PublishConfirms, send_on_kept_connection
from treadle.scheduler.store.lifecycle_repo import LifecycleEventEntry

__all__ = ["EventExchange", "event_body"]

log = logging.getLogger("treadle.scheduler")


def event_body(cloudevent: Mapping[str, Any]) -> bytes:
    """A CloudEvent as the bytes a message or an HTTP request carries (compact JSON)."""
    return json.dumps(cloudevent, ensure_ascii=False, separators=(",", ":")).encode()


class EventExchange:
    """Publishes events to a durable topic exchange, each with its type as routing key."""

    def __init__(
        self, app: Celery, *, name: str, broker_url: str, confirm_timeout: float = 30.0
    ) -> None:
        self._app = app
        self.exchange = Exchange(name, type="topic", durable=True)
        self._rabbitmq = is_rabbitmq(broker_url)
        self._confirm_timeout = confirm_timeout
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._confirms: PublishConfirms | None = None

    def publish(self, events: Sequence[LifecycleEventEntry]) -> None:
        """Publish ``events`` in order and return once the broker holds every one."""
        if not events:
            return
        send_on_kept_connection(
            lambda: self._send(events), self._connection, what="lifecycle events"
        )

    def _send(self, events: Sequence[LifecycleEventEntry]) -> None:
        """Write ``events`` on the kept connection (opened if need be) and await the
        broker's confirms; a failure closes the connection and raises."""
        self._connect()
        try:
            producer = self._producer
            assert producer is not None  # connected above
            for event in events:
                producer.publish(
                    event_body(event.cloudevent),
                    routing_key=event.type,
                    content_type=CLOUDEVENTS_JSON,
                    content_encoding="utf-8",
                    delivery_mode=2,
                    message_id=event.event_id,
                    retry=False,
                )
            if self._confirms is not None and self._connection is not None:
                self._confirms.wait(self._connection, self._confirm_timeout)
        except BaseException:
            self.close()
            raise

    def _connect(self) -> None:
        if self._connection is not None:
            return
        connection: Any = self._app.connection_for_write(
            transport_options={"confirm_publish": False}, heartbeat=0
        )
        try:
            connection.ensure_connection(max_retries=0)
            channel = connection.channel()
            confirms = PublishConfirms(channel) if self._rabbitmq else None
            self.exchange.bind(channel).declare()
            producer = Producer(channel, exchange=self.exchange, auto_declare=False)
        except BaseException:
            connection.release()
            raise
        self._connection, self._producer, self._confirms = connection, producer, confirms

    def close(self) -> None:
        connection, self._connection = self._connection, None
        self._producer = self._confirms = None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # already broken: nothing more to release
                log.debug("error while closing the lifecycle events connection", exc_info=True)
