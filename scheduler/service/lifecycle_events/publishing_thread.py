"""A scheduler's publishing of lifecycle events, on a thread of its own.

The scheduler's loop turns a worker's report into the next dispatch; posting to a webhook
sink can take seconds, and a broker publish a few milliseconds, neither of which that loop
should wait for. So a scheduler with ``TREADLE_LIFECYCLE_EVENTS`` on runs a
:class:`~.pump.LifecycleEventPump` here: a pass right after one of its own transactions
wrote events (the run service's writer wakes it after commit), and at least every
``poll_seconds`` for the events clients, the API and beat wrote and for the retries coming
due. A failed pass (the broker or database away) is logged and tried again after a pause
that grows to a minute. With the setting off nothing starts and every call does nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from celery import Celery

from treadle.common.settings import Settings
from treadle.scheduler.service.lifecycle_events.exchange import EventExchange
from treadle.scheduler.service.lifecycle_events.pump import DeliveryPolicy, LifecycleEventPump
from treadle.scheduler.store import Store

if TYPE_CHECKING:
    from treadle.scheduler.service.runs import RunService

__all__ = ["LifecyclePublishing", "pump_for"]

log = logging.getLogger("treadle.scheduler")

#: The longest pause after failed passes.
MAX_PAUSE_SECONDS = 60.0


def pump_for(
    settings: Settings, store: Store, app: Celery | None, clock: Callable[[], datetime]
) -> LifecycleEventPump:
    """The pump the settings describe (no exchange without ``app`` or an exchange name)."""
    exchange = None
    if app is not None and settings.lifecycle_exchange:
        exchange = EventExchange(
            app, name=settings.lifecycle_exchange, broker_url=settings.broker_url
        )
    policy = DeliveryPolicy(
        sinks=settings.lifecycle_sinks,
        attempts=settings.lifecycle_delivery_attempts,
        retry_seconds=settings.lifecycle_retry_seconds,
    )
    return LifecycleEventPump(store, clock=clock, exchange=exchange, policy=policy)


class LifecyclePublishing:
    """Starts, wakes and stops the publishing thread of a scheduler process."""

    def __init__(
        self, settings: Settings, clock: Callable[[], datetime], poll_seconds: float = 1.0
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pump: LifecycleEventPump | None = None

    @property
    def on(self) -> bool:
        return self._settings.lifecycle_events

    def start(self, store: Store, app: Celery | None) -> None:
        """Make ``store``'s writers record events and start publishing them (setting on);
        without ``app`` (embedded mode: no broker) to the webhook sinks only."""
        store.lifecycle_events = self.on
        if not self.on or self._thread is not None:
            return
        self._pump = pump = pump_for(self._settings, store, app, self._clock)
        self._thread = threading.Thread(
            target=self._run, args=(pump,), name="treadle-lifecycle-events", daemon=True
        )
        self._thread.start()
        log.info(
            "publishing lifecycle events to %s and %d webhook sink(s)",
            self._settings.lifecycle_exchange if pump.exchange is not None else "no exchange",
            len(self._settings.lifecycle_sinks),
        )

    def watch(self, runs: RunService) -> None:
        """Wake the thread whenever ``runs`` commits events."""
        if runs.lifecycle is not None:
            runs.lifecycle.written = self.wake

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread (after its pass at hand) and close its broker connection."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join()
        if self._pump is not None:
            self._pump.close()

    def _run(self, pump: LifecycleEventPump) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                pump.step(self._stopping)
                failures = 0
                pause = self._poll_seconds
            except Exception as exc:
                failures += 1
                pause = min(self._poll_seconds * 2**failures, MAX_PAUSE_SECONDS)
                log.warning(
                    "publishing lifecycle events failed (%s: %s); trying again in %g s",
                    type(exc).__name__,
                    exc,
                    pause,
                )
            # After a failure only stopping ends the pause: writes must not hurry a retry.
            (self._stopping if failures else self._wake).wait(pause)
