"""Take what workers report (and what the broker dead-lettered) from the broker in batches.

Workers publish :class:`~treadle.common.messages.WorkerReport` messages (a ``started``
notice before an attempt runs, its ``result`` after) to the results queue; RabbitMQ moves
task messages that exceeded the queue's delivery limit to the dead-letter queue. The
:class:`ReportConsumer` takes them in batches (up to ``result_batch_size`` at a time, the
prefetch) and knows nothing of the database: applying a batch is
:mod:`~treadle.scheduler.service.report_applier`'s job. Messages are acknowledged only
after the batch committed (:meth:`ReportBatch.ack`), so a scheduler that dies before
commit gets them redelivered: at once on RabbitMQ, and on Redis after
``redis_report_visibility_timeout`` (see :func:`report_transport_options`).
"""

from __future__ import annotations

import contextlib
import logging
import select
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from celery import Celery
from kombu.connection import Connection
from kombu.message import Message
from kombu.messaging import Consumer
from pydantic import ValidationError

from treadle.common.messages import AttemptStarted, TaskResult, WorkerReport
from treadle.common.transport import ATTEMPT_HEADER, QueueType, is_rabbitmq, plain_queue
from treadle.scheduler.service.celery_publisher import dead_letter_queue, declare, kombu_queue

log = logging.getLogger("treadle.scheduler")

#: Dead letters taken per batch at most (they are rare; results have the larger share).
DEAD_LETTER_PREFETCH = 50
#: How long to wait for the rest of a message whose first bytes arrived.
_READ_TIMEOUT = 0.1
#: Poll step on transports without a socket to wait on (Redis).
_POLL_STEP = 0.05


def report_transport_options(results_queue: str, visibility_timeout: int) -> dict[str, Any]:
    """The Redis transport options of the report connection.

    Redis hands a report a scheduler took but never acknowledged (it died, or its
    connection broke mid-batch) back to the queue after ``visibility_timeout`` seconds.
    The task messages' visibility timeout is hours (above the longest task); reports are
    applied within moments, so theirs is short (``redis_report_visibility_timeout``), and
    kept apart (keys of their own) from the task messages' so neither restores the other's.
    """
    return {
        "visibility_timeout": visibility_timeout,
        "unacked_key": f"{results_queue}.unacked",
        "unacked_index_key": f"{results_queue}.unacked_index",
        "unacked_mutex_key": f"{results_queue}.unacked_mutex",
    }


class FileLike(Protocol):
    """Anything ``select`` can wait on by its ``fileno()``: a socket, a DB-API connection."""

    def fileno(self) -> int: ...


#: What ``select`` waits on: a file descriptor, or an object with ``fileno()``.
Waitable = int | FileLike


@dataclass(frozen=True)
class DeadLetter:
    """A task message the broker gave up on: its attempt and the broker's reason."""

    attempt_id: str
    reason: str


@dataclass
class ReportBatch:
    """Reports taken together, and the broker messages to acknowledge once applied."""

    started: list[AttemptStarted] = field(default_factory=list)
    results: list[TaskResult] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    multiple_ack: bool = True
    #: Attempts with a result in this batch: a started notice after it is a late copy.
    finished: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.messages)

    def ack(self) -> None:
        """Acknowledge every message of the batch (call after its transaction committed)."""
        if not self.messages:
            return
        if self.multiple_ack:
            # Deliveries on one channel are numbered in order and the batch holds every
            # message received so far: one cumulative ack covers them all.
            self.messages[-1].ack(multiple=True)
        else:
            for message in self.messages:
                message.ack()
        self.messages = []

    def singles(self) -> list[ReportBatch]:
        """One batch per report (without the messages, which stay with this batch)."""
        singles = [ReportBatch(started=[s]) for s in self.started]
        singles += [ReportBatch(dead_letters=[d]) for d in self.dead_letters]
        singles += [ReportBatch(results=[r]) for r in self.results]
        return singles

    def describe(self) -> str:
        """What the (first) report is, for logs: the kind and the attempt, never content."""
        for started in self.started:
            return f"started notice of attempt {started.attempt_id}"
        for letter in self.dead_letters:
            return f"dead letter of attempt {letter.attempt_id}"
        for result in self.results:
            return f"{result.outcome.value} result of attempt {result.attempt_id}"
        return "no report"

    def requeue(self) -> None:
        """Hand the messages back to the broker (the batch could not be applied)."""
        for message in self.messages:
            try:
                message.requeue()
            except Exception:  # the connection is gone: the broker requeues them itself
                log.debug("could not requeue a report", exc_info=True)
                break
        self.messages = []


def dead_letter_attempt(message: Message) -> str | None:
    """The attempt a dead-lettered Celery task message was for.

    The ``treadle-attempt`` header first, then Celery's ``id`` header (the task id is the
    attempt id), the ``correlation_id`` property, and the dispatch in the body.
    """
    headers = message.headers or {}
    for value in (
        headers.get(ATTEMPT_HEADER),
        headers.get("id"),
        message.properties.get("correlation_id"),
    ):
        if isinstance(value, str) and value:
            return value
    try:
        args = message.decode()[0]
        attempt = args[0].get("attempt_id")
    except Exception:
        return None
    return attempt if isinstance(attempt, str) and attempt else None


class ReportConsumer:
    """Takes worker reports and dead letters from the broker in batches.

    It owns the report connection (heartbeats, reconnecting on the next :meth:`take` after
    a failure) so the scheduler loop only asks for a batch and acknowledges it once applied.
    """

    def __init__(
        self,
        app: Celery,
        *,
        broker_url: str,
        results_queue: str,
        prefetch: int,
        results_queue_type: QueueType = QueueType.QUORUM,
        redis_visibility_timeout: int = 60,
    ) -> None:
        self.app = app
        self._visibility_timeout = redis_visibility_timeout
        self._rabbitmq = is_rabbitmq(broker_url)
        self._results = kombu_queue(plain_queue(results_queue, broker_url, results_queue_type))
        self._dead = dead_letter_queue(broker_url) if self._rabbitmq else None
        self._prefetch = prefetch
        self._connection: Connection | None = None
        self._consumers: list[Consumer] = []
        # Messages are delivered whenever the connection is read (also while connecting):
        # they collect here until take() hands the batch out.
        self._batch = ReportBatch(multiple_ack=self._rabbitmq)

    @property
    def queues(self) -> list[str]:
        """The queues consumed: the results queue, and the dead-letter queue on RabbitMQ."""
        return [q.name for q in (self._results, self._dead) if q is not None]

    def connect(self) -> None:
        """Open the connection, declare the queues and start consuming (if not already)."""
        if self._connection is not None:
            return
        # Heartbeats (checked every step) notice a broker that vanished without closing
        # the connection; without them the scheduler would wait for reports for ever.
        options = (
            {}
            if self._rabbitmq
            else report_transport_options(self._results.name, self._visibility_timeout)
        )
        connection = self.app.connection_for_read(
            heartbeat=self.app.conf.broker_heartbeat, transport_options=options
        )
        try:
            connection.ensure_connection(max_retries=0)  # the caller decides on retries
            channel = connection.channel()
            for queue in (self._results, self._dead):
                if queue is not None:
                    declare(queue, channel, connection)
            consumers = [
                Consumer(
                    channel,
                    [self._results],
                    on_message=self._on_report,
                    prefetch_count=self._prefetch,
                    accept=["json"],
                )
            ]
            if self._dead is not None:
                consumers.append(
                    Consumer(
                        channel,
                        [self._dead],
                        on_message=self._on_dead_letter,
                        prefetch_count=min(self._prefetch, DEAD_LETTER_PREFETCH),
                        accept=["json"],
                    )
                )
            for consumer in consumers:
                consumer.consume()
        except BaseException:
            connection.release()
            raise
        self._connection = connection
        self._consumers = consumers

    @property
    def connected(self) -> bool:
        """Whether the connection is open (a broker error closes it)."""
        return self._connection is not None

    def close(self) -> None:
        """Drop the connection; the broker redelivers what was not acknowledged."""
        connection, self._connection = self._connection, None
        self._consumers = []
        # Unacknowledged messages of a closed connection are redelivered by the broker.
        self._batch = ReportBatch(multiple_ack=self._rabbitmq)
        if connection is not None:
            try:
                connection.release()
            except Exception:
                log.debug("error while closing the report connection", exc_info=True)

    def heartbeat(self) -> None:
        """Send/check AMQP heartbeats; call at least every few seconds.

        A connection whose broker stopped answering is closed and the error raised.
        """
        if self._connection is None:
            return
        try:
            self._connection.heartbeat_check()
        except Exception:
            self.close()
            raise

    def ack(self, batch: ReportBatch) -> None:
        """Acknowledge ``batch``; a broken connection is closed and the error raised."""
        try:
            batch.ack()
        except Exception:
            self.close()  # the broker redelivers what was not acknowledged
            raise

    def _socket(self) -> Any:
        transport_connection = getattr(self._connection, "connection", None)
        return getattr(transport_connection, "sock", None)

    # -- taking ------------------------------------------------------------------------------

    def take(
        self,
        max_items: int,
        timeout: float,
        wake: Sequence[Waitable] = (),
        *,
        linger: float = 0.0,
    ) -> ReportBatch:
        """Up to ``max_items`` messages: waits up to ``timeout`` s for the first one, then
        takes what is already there. While the batch holds only ``started`` notices it
        keeps waiting up to ``linger`` s (within ``timeout``) for a result to join them.
        Returns early (maybe empty) when one of ``wake`` is readable. A broken connection
        is closed and the error raised (the next call reconnects; unacknowledged messages
        are redelivered by the broker)."""
        self.connect()
        assert self._connection is not None
        batch = self._batch
        deadline = time.monotonic() + max(timeout, 0.0)
        lingering_until: float | None = None
        try:
            while len(batch) < max_items:
                now = time.monotonic()
                if not batch.messages:
                    wait = deadline - now
                elif batch.results or batch.dead_letters or not batch.started:
                    wait = 0.0
                else:
                    if lingering_until is None:
                        lingering_until = min(deadline, now + linger)
                    wait = lingering_until - now
                if not self._wait_for_message(max(wait, 0.0), wake):
                    break
        except Exception:
            self.close()
            raise
        self._batch = ReportBatch(multiple_ack=self._rabbitmq)
        return batch

    def _wait_for_message(self, wait: float, wake: Sequence[Waitable]) -> bool:
        """Receive the next message; False when none came within ``wait`` or we were woken."""
        assert self._connection is not None
        before = len(self._batch.messages)
        sock = self._socket()
        if sock is None:
            return self._poll_for_message(wait, wake)
        readable, _, _ = select.select([sock, *wake], [], [], wait)
        if sock not in readable:
            return False
        # A heartbeat, or a message still arriving, times out: then look again.
        with contextlib.suppress(TimeoutError):
            self._connection.drain_events(timeout=_READ_TIMEOUT)
        woken = any(r is not sock for r in readable)
        return len(self._batch.messages) > before or not woken

    def _poll_for_message(self, wait: float, wake: Sequence[Waitable]) -> bool:
        """Transports without a socket to select on (Redis): poll in short steps."""
        assert self._connection is not None
        before = len(self._batch.messages)
        deadline = time.monotonic() + wait
        while True:
            with contextlib.suppress(TimeoutError):
                self._connection.drain_events(timeout=max(min(_POLL_STEP, wait), 0.001))
            if len(self._batch.messages) > before:
                return True
            if wake and select.select(list(wake), [], [], 0)[0]:
                return False
            if time.monotonic() >= deadline:
                return False

    def _on_report(self, message: Message) -> None:
        batch = self._batch
        batch.messages.append(message)
        try:
            report = WorkerReport.model_validate_json(message.body)
        except ValidationError as exc:
            log.error(
                "dropping an undecodable worker report (%d bytes): %s",
                len(message.body or b""),
                exc.errors(include_input=False)[:3],
            )
            return
        if report.kind == "started" and report.started is not None:
            if report.started.attempt_id not in batch.finished:  # else a late copy
                batch.started.append(report.started)
        elif report.kind == "result" and report.result is not None:
            batch.results.append(report.result)
            batch.finished.add(report.result.attempt_id)
        else:
            log.error("dropping a %r worker report without its content", report.kind)

    def _on_dead_letter(self, message: Message) -> None:
        batch = self._batch
        batch.messages.append(message)
        attempt_id = dead_letter_attempt(message)
        headers = message.headers or {}
        if attempt_id is None:
            log.error(
                "dropping a dead-lettered message that names no attempt (task %r)",
                headers.get("task"),
            )
            return
        reason = str(headers.get("x-first-death-reason") or "delivery_limit")
        batch.dead_letters.append(DeadLetter(attempt_id, reason))
