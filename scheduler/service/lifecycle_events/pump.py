"""Moving stored lifecycle events on: to the topic exchange, and to the webhook sinks.

:meth:`LifecycleEventPump.publish_pending` claims unpublished events in the order they
were written (``lifecycle_repo.py`` keeps each run's order across schedulers), publishes
them to the exchange with confirms, then marks them published and adds a pending delivery
for every sink whose types match, all in the claiming transaction: a crash before the
commit publishes them again (at least once), never loses one.

:meth:`LifecycleEventPump.deliver_due` claims the deliveries that are due (leased, so no
other scheduler posts them meanwhile), posts them with no transaction open (a slow sink
holds no lock), and records the outcomes: delivered; due again after the backoff; or,
when the attempts are used up, kept as ``failed`` with the last error for ``treadle
events deliveries --failed`` and ``treadle events redeliver``.

Both read the time from the pump's clock only, so tests drive retries with a fake one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import httpx

from treadle.common.event_sinks import EventSink, sink_named
from treadle.scheduler.service.lifecycle_events.exchange import event_body
from treadle.scheduler.service.lifecycle_events.webhook_posts import (
    PostResult,
    post_event,
    retry_after,
)
from treadle.scheduler.store import Store
from treadle.scheduler.store.lifecycle_repo import (
    DeliveryOutcome,
    DueDelivery,
    LifecycleEventEntry,
)

__all__ = ["DeliveryPolicy", "EventPublisher", "LifecycleEventPump"]

log = logging.getLogger("treadle.scheduler")

#: Seconds a claimed delivery is leased beyond its sink's timeout.
LEASE_MARGIN_SECONDS = 30.0


class EventPublisher(Protocol):
    """Publishes events to the broker (the topic exchange), returning once it holds them."""

    def publish(self, events: Sequence[LifecycleEventEntry]) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class DeliveryPolicy:
    """Where events go besides the broker and how hard each delivery is tried."""

    sinks: Sequence[EventSink] = ()
    attempts: int = 8
    retry_seconds: float = 10.0


class LifecycleEventPump:
    """One pass at a time over the stored events and the due deliveries; see the module
    docstring."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime],
        exchange: EventPublisher | None,
        policy: DeliveryPolicy,
        batch_size: int = 200,
    ) -> None:
        self._store = store
        self._clock = clock
        self.exchange = exchange
        self._policy = policy
        self._batch_size = batch_size
        timeouts = [sink.timeout_seconds for sink in policy.sinks] or [0.0]
        self._lease = timedelta(seconds=max(timeouts) + LEASE_MARGIN_SECONDS)
        self._http: httpx.Client | None = None  # made at the first delivery, then kept

    def close(self) -> None:
        """Close the broker connection and the HTTP client (the next pass opens them)."""
        if self.exchange is not None:
            self.exchange.close()
        http, self._http = self._http, None
        if http is not None:
            http.close()

    def step(self, stop: threading.Event | None = None) -> int:
        """Publish what is pending, then deliver what is due; how many moved."""
        return self.publish_pending() + self.deliver_due(stop)

    def publish_pending(self) -> int:
        """Publish every unpublished event; how many were published."""
        total = 0
        while True:
            with self._store.unit_of_work() as uow:
                events = uow.claim_lifecycle_events(self._batch_size)
                if not events:
                    return total
                if self.exchange is not None:
                    self.exchange.publish(events)
                now = self._clock()
                uow.mark_lifecycle_published([e.id for e in events], now)
                wanted = [
                    (event, sink.name)
                    for event in events
                    for sink in self._policy.sinks
                    if sink.wants(event.type)
                ]
                uow.add_deliveries(wanted, now)
            total += len(events)
            if len(events) < self._batch_size:
                return total

    def deliver_due(self, stop: threading.Event | None = None) -> int:
        """Post the deliveries due now; how many were tried.

        A sink that could not be reached (no answer at all) is not tried again in the same
        pass: its other deliveries wait, their attempts not counted, until its failed one
        is retried, so a sink that is down costs one timeout a pass, not one a delivery.
        Once ``stop`` is set no more are posted; those claimed stay leased until their
        lease ends, then come due again.
        """
        now = self._clock()
        with self._store.unit_of_work() as uow:
            due = uow.claim_due_deliveries(now, self._batch_size, lease_until=now + self._lease)
        if not due:
            return 0
        if self._http is None:
            self._http = httpx.Client(follow_redirects=False)
        unreachable: dict[str, datetime] = {}  # sink -> when its failed delivery goes again
        outcomes: list[DeliveryOutcome] = []
        for delivery in due:
            if stop is not None and stop.is_set():
                break
            later = unreachable.get(delivery.sink)
            if later is not None:
                outcomes.append(
                    DeliveryOutcome(delivery.id, False, now, retry_at=later, counted=False)
                )
                continue
            outcome = self._deliver(self._http, delivery)
            if outcome.status_code is None and outcome.retry_at is not None:
                unreachable[delivery.sink] = outcome.retry_at
            outcomes.append(outcome)
        with self._store.unit_of_work() as uow:
            uow.record_delivery_outcomes(outcomes)
        return len(outcomes)

    def _deliver(self, client: httpx.Client, delivery: DueDelivery) -> DeliveryOutcome:
        sink = sink_named(self._policy.sinks, delivery.sink)
        retryable = False  # what no retry can mend fails at once
        if sink is None:
            result = PostResult(False, error=f"no sink named {delivery.sink!r} is configured")
        elif not delivery.cloudevent:
            result = PostResult(False, error=f"event {delivery.event_id} is no longer stored")
        else:
            body = event_body(delivery.cloudevent)
            result = post_event(client, sink, body, int(self._clock().timestamp()))
            retryable = True
        at = self._clock()
        if result.delivered:
            return DeliveryOutcome(delivery.id, True, at, result.status_code)
        attempts = delivery.attempts + 1
        retry_at = None
        if retryable and attempts < self._policy.attempts:
            retry_at = at + retry_after(attempts, self._policy.retry_seconds)
        log.warning(
            "lifecycle event %s not delivered to sink %s (attempt %d of %d%s): %s",
            delivery.event_id,
            delivery.sink,
            attempts,
            self._policy.attempts,
            "" if retry_at is None else ", tried again later",
            result.error,
        )
        return DeliveryOutcome(delivery.id, False, at, result.status_code, result.error, retry_at)
