"""Publisher confirms for a whole batch: write every message, then await the broker once.

Waiting for one confirm per message costs about 2 ms each on a quorum queue (which fsyncs);
putting the channel in confirm mode, writing the batch and then awaiting the broker's
(usually cumulative) acknowledgements costs one wait per batch. Used by the dispatch
publisher (:mod:`.celery_publisher`) and the lifecycle-event exchange, which both keep
their connection open between batches without heartbeats (an idle publisher reads
nothing): :func:`send_on_kept_connection` is how both get past a connection that died
while idle, as after a broker restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kombu.connection import Connection

from treadle.common.errors import TreadleError

log = logging.getLogger("treadle.scheduler")


class PublishNotConfirmed(TreadleError):
    """The broker refused (nacked) a message, or did not confirm it in time."""


class PublishConfirms:
    """Counts publishes on a channel in confirm mode and waits for the broker to confirm them.

    The broker numbers a channel's publishes 1, 2, 3 ... and acknowledges them singly or
    cumulatively (``multiple``); ``confirmed`` is the highest number below which every
    publish is acknowledged.
    """

    def __init__(self, channel: Any) -> None:
        channel.confirm_select()
        self._published = 0
        self.confirmed = 0
        self._singles: set[int] = set()
        self._nacked = 0
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        send = channel.basic_publish

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._published += 1
            return send(*args, **kwargs)

        # Celery's and kombu's producers publish through this attribute (py-amqp itself
        # swaps it the same way for its one-confirm-per-message mode).
        channel.basic_publish = counted

    @property
    def outstanding(self) -> int:
        return self._published - self.confirmed

    def _on_ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            if tag > self.confirmed:
                self.confirmed = tag
                self._singles = {t for t in self._singles if t > tag}
        else:
            self._singles.add(tag)
        while self.confirmed + 1 in self._singles:
            self.confirmed += 1
            self._singles.remove(self.confirmed)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._nacked += 1
        self._on_ack(tag, multiple)

    def wait(self, connection: Connection, timeout: float) -> None:
        """Return once every publish so far is acknowledged; raise if one was nacked."""
        deadline = time.monotonic() + timeout
        while self.confirmed < self._published:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PublishNotConfirmed(
                    f"the broker did not confirm {self.outstanding} message(s) within {timeout:g} s"
                )
            try:
                connection.drain_events(timeout=remaining)
            except TimeoutError:  # socket.timeout: loop to report the deadline
                continue
        if self._nacked:
            nacked, self._nacked = self._nacked, 0
            raise PublishNotConfirmed(f"the broker refused {nacked} message(s)")


def send_on_kept_connection(
    send: Callable[[], None], kept: Connection | None, *, what: str
) -> None:
    """Call ``send``, which writes a whole batch on the publisher's connection (opening it
    if need be) and drops that connection when it fails. When the connection is ``kept``
    from an earlier batch and fails with one of its transport's connection errors, it died
    while idle: ``send`` is called once more, on a new one. What reached the broker before
    the break is then sent twice, which every consumer of these messages tolerates. Any
    other failure, a second one, or one on a connection just opened, raises."""
    if kept is None:
        send()
        return
    broken = tuple(kept.connection_errors)  # read now: a failed send releases ``kept``
    try:
        send()
    except broken as exc:
        log.info("the %s connection was lost (%s); sending again", what, exc)
        send()


__all__ = ["PublishConfirms", "PublishNotConfirmed", "send_on_kept_connection"]
