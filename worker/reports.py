"""Publishing :class:`WorkerReport` messages to the scheduler's results queue, reliably.

A report that is lost leaves an attempt "running" until the reconciler notices, so every
report is published persistent, with publisher confirms on RabbitMQ and a bounded retry
when the connection drops. A report that still cannot be published raises
:class:`ReportNotPublished`; the task then rejects its message (it is redelivered and
runs again later; a repeated report is harmless to the scheduler).

Reports travel on the default exchange (``""``) with the results queue's name as the
routing key, as JSON (``WorkerReport.model_dump_json()``), with the attempt id in the
``treadle-attempt`` header.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from treadle.common.errors import TreadleError
from treadle.common.messages import WorkerReport
from treadle.common.transport import ATTEMPT_HEADER

logger = logging.getLogger("treadle.worker")

#: Retries of one publish when the connection is lost (kombu ``Connection.ensure``
#: keywords): about 6 s in all, then the task gives up and its message is redelivered.
REPORT_RETRY_POLICY: Mapping[str, float | int] = {
    "max_retries": 5,
    "interval_start": 0.2,
    "interval_step": 0.5,
    "interval_max": 2.0,
}
#: Seconds to wait for the broker's confirm of one report.
CONFIRM_TIMEOUT_SECONDS = 10.0


class ReportNotPublished(TreadleError):
    """A worker report could not be handed to the broker (after the bounded retries)."""


def attempt_of(report: WorkerReport) -> str:
    """The attempt a report is about."""
    if report.started is not None:
        return report.started.attempt_id
    if report.result is not None:
        return report.result.attempt_id
    raise ValueError("a WorkerReport carries neither a started notice nor a result")


class ReportPublisher:
    """Publishes reports on a broker connection of its own, one per process.

    ``connect`` opens a kombu connection for writing (``app.connection_for_write``: it
    carries the app's transport options, so confirms are on for RabbitMQ). The connection
    is opened on first use in each process (a forked pool child never shares its parent's
    socket), shared by the process's threads under a lock, and dropped after any error so
    the next report starts on a fresh one. ``results_queue`` (a kombu queue) is declared
    when each connection opens; its name is the routing key.
    """

    def __init__(self, connect: Callable[[], Any], results_queue: Any) -> None:
        self._connect = connect
        self._queue = results_queue
        self._lock = threading.Lock()
        self._connection: Any = None
        self._producer: Any = None
        os.register_at_fork(after_in_child=self._forget_parent_connection)

    @property
    def routing_key(self) -> str:
        return str(self._queue.name)

    def publish(self, report: WorkerReport) -> None:
        """Hand ``report`` to the broker; raise :class:`ReportNotPublished` if it fails."""
        attempt = attempt_of(report)
        with self._lock:
            try:
                self._producer_now().publish(
                    report.model_dump_json(),
                    exchange="",
                    routing_key=self.routing_key,
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    headers={ATTEMPT_HEADER: attempt},
                    retry=True,
                    retry_policy=dict(REPORT_RETRY_POLICY),
                    confirm_timeout=CONFIRM_TIMEOUT_SECONDS,
                )
            except Exception as exc:
                self._close()
                raise ReportNotPublished(
                    f"cannot publish the {report.kind} report of attempt {attempt} to "
                    f"queue '{self.routing_key}': {type(exc).__name__}: {exc}"
                ) from exc
        logger.debug("attempt %s: %s report published", attempt, report.kind)

    def close(self) -> None:
        with self._lock:
            self._close()

    def _producer_now(self) -> Any:
        if self._producer is None:
            from kombu.messaging import Producer

            connection = self._connect()
            try:
                # Declared once per connection here, not on every publish: kombu binds a
                # copy of the queue per declare, a sixth of a report's own CPU.
                self._queue.bind(connection.default_channel).declare()
            except BaseException:
                connection.close()
                raise
            self._connection = connection
            self._producer = Producer(connection)
        return self._producer

    def _close(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            try:
                connection.close()
            except Exception as exc:  # already broken: nothing more to release
                logger.debug("closing a broken report connection failed: %s", exc)

    def _forget_parent_connection(self) -> None:
        # In a forked child: the parent's socket is not ours to use or to close.
        self._lock = threading.Lock()
        self._connection = None
        self._producer = None


class SplitReports:
    """Results are published with confirms; ``started`` notices without.

    A lost result would leave an attempt running until the reconciler steps in, so it is
    confirmed. A lost started notice only misses one count of the attempt's deliveries, and
    waiting for its confirm cost as much as the action itself for short tasks. The two go on
    separate connections, so a notice may arrive after its result; the scheduler ignores a
    notice for an attempt that has ended.
    """

    def __init__(self, confirmed: ReportPublisher, unconfirmed: ReportPublisher) -> None:
        self._confirmed = confirmed
        self._unconfirmed = unconfirmed

    def publish(self, report: WorkerReport) -> None:
        publisher = self._unconfirmed if report.kind == "started" else self._confirmed
        publisher.publish(report)
