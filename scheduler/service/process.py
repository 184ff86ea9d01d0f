"""One scheduler process: the loop that moves runs forward in distributed mode.

Each :meth:`SchedulerProcess.step` takes a batch of worker reports (waiting until one
arrives, an outbox ``NOTIFY`` comes from a client, the next timer is due, or the timeout
passes), applies it in one go, relays the outbox at once (so a successor is dispatched in
the same step that applied its predecessor's result), fires due timers and, every
``reconcile_interval`` seconds, reconciles. Reports are acknowledged only after their
transaction committed.

Several scheduler processes may share one database and broker: they compete for reports
on the results queue, claim outbox rows and timers with ``SKIP LOCKED``, and serialise
each run's transitions with its row lock. Nothing here assumes it is alone; in-memory
caches are checked against the stored run version, and after any failed step they are
dropped (a rolled-back transaction may have left states in them that never committed).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy.exc import InterfaceError, OperationalError

from treadle.common.catalog import Catalog
from treadle.common.errors import ConflictError, DefinitionError
from treadle.common.settings import Settings, os_login
from treadle.scheduler.core.commands import (
    CancelTimer,
    Command,
    ScheduleTimer,
)
from treadle.scheduler.core.state import RunState
from treadle.scheduler.service.celery_publisher import CeleryPublisher
from treadle.scheduler.service.commands import CommandHandlers
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.reconciler import Reconciler, WorkerLiveness
from treadle.scheduler.service.relay import Relay
from treadle.scheduler.service.reports import (
    AppliedReports,
    ReportApplier,
    ReportBatch,
    ReportConsumer,
)
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.service.starting import RunStarter
from treadle.scheduler.service.startup import (
    RetryPolicy,
    broker_address,
    connect_broker,
    database_address,
    open_store,
)
from treadle.scheduler.service.timers import fire_due_timers
from treadle.scheduler.store import Store
from treadle.scheduler.store.base import utc_now
from treadle.scheduler.store.queue_repo import OUTBOX_CHANNEL

log = logging.getLogger("treadle.scheduler")

#: Errors after which a step is simply tried again (the database or broker hiccuped).
_DATABASE_ERRORS = (OperationalError, InterfaceError)
#: Longest pause between failed steps.
_MAX_PAUSE_SECONDS = 30.0
#: Seconds between attempts to re-establish a lost LISTEN connection.
_RELISTEN_SECONDS = 5.0
#: How long a batch holding only ``started`` notices waits for results to join it: the
#: notices are not urgent, and applying them with the results saves a transaction.
STARTED_LINGER_SECONDS = 0.1


@dataclass
class _Services:
    """The parts holding in-memory caches, rebuilt together after a failed step."""

    definitions: Definitions
    runs: RunService
    starter: RunStarter
    relay: Relay
    applier: ReportApplier
    reconciler: Reconciler


class SchedulerProcess:
    """A ``treadle scheduler`` process: start, step (or run until stopped), close."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        *,
        clock: Callable[[], datetime] = utc_now,
        startup: RetryPolicy | None = None,
        poll_interval: float = 1.0,
        timeout_grace: timedelta = timedelta(seconds=30),
        ping_timeout: float = 1.0,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.clock = clock
        self.startup = startup or RetryPolicy()
        self.poll_interval = poll_interval
        self.timeout_grace = timeout_grace
        self.ping_timeout = ping_timeout
        self.publisher = CeleryPublisher.from_settings(settings)
        self.handlers = CommandHandlers(settings.default_queue)
        self.consumer = ReportConsumer(
            self.publisher.app,
            broker_url=settings.broker_url,
            results_queue=settings.results_queue,
            prefetch=settings.result_batch_size,
        )
        self.liveness = WorkerLiveness(since=clock())
        self._store: Store | None = None
        self._services: _Services | None = None
        self._listener: Any = None
        self._listen_retry_at = 0.0
        self._next_reconcile = clock() + timedelta(seconds=settings.reconcile_interval)
        # What a step must look at; set by saved decisions, NOTIFYs and the fallback poll.
        self._outbox_dirty = True
        self._timers_dirty = True
        self._next_timer: datetime | None = None
        self._last_poll = time.monotonic()
        #: Broker messages (reports and dead letters) this process applied and acknowledged.
        self.reports_applied = 0
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)

    # -- parts (available after start) ----------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the scheduler process is not started")
        return self._store

    @property
    def services(self) -> _Services:
        if self._services is None:
            raise RuntimeError("the scheduler process is not started")
        return self._services

    @property
    def runs(self) -> RunService:
        return self.services.runs

    @property
    def reconciler(self) -> Reconciler:
        return self.services.reconciler

    def _build_services(self) -> _Services:
        store = self.store
        definitions = Definitions(store, self.catalog)
        runs = RunService(store, definitions, clock=self.clock, write_commands=self.handlers.write)
        starter = RunStarter(runs, limits=self.settings.limits)
        runs.listeners.append(self._on_decision)
        self._outbox_dirty = self._timers_dirty = True  # a failed step may have left work
        self._services = _Services(
            definitions=definitions,
            runs=runs,
            starter=starter,
            relay=Relay(starter, self.publisher, self.handlers, clock=self.clock),
            applier=ReportApplier(
                store,
                delivery_limit=self.settings.delivery_limit,
                liveness=self.liveness,
                clock=self.clock,
            ),
            reconciler=Reconciler(
                store,
                clock=self.clock,
                liveness=self.liveness,
                ping=self.publisher.ping,
                worker_lost_after=timedelta(seconds=self.settings.worker_lost_after),
                grace=self.timeout_grace,
                ping_timeout=self.ping_timeout,
            ),
        )
        return self._services

    # -- start-up -----------------------------------------------------------------------------

    def start(self, stop: threading.Event | None = None) -> None:
        """Connect (retrying), register the packs, publish their workflows, start consuming.

        Raises ServiceUnavailable when the database or broker stays unreachable (or ``stop``
        is set while waiting for them).
        """
        settings = self.settings
        log.info("connecting to the database at %s", database_address(settings.database_url))
        self._store = open_store(
            settings.database_url, policy=self.startup, stop=stop, clock=self.clock
        )
        log.info("database ready: %s (schema up to date)", self._store.url)
        self._register_catalog()
        services = self._build_services()
        self._publish_definitions(services.definitions)
        probe = self.publisher.app.connection_for_write()
        address = broker_address(probe)
        errors = (*probe.connection_errors, KombuOperationalError)
        probe.release()
        log.info("connecting to the broker at %s", address)
        connect_broker(
            self._connect_broker, address=address, errors=errors, policy=self.startup, stop=stop
        )
        log.info("broker ready: consuming %s", ", ".join(self.consumer.queues))
        self._listen()
        log.info(
            "scheduler started: batches of up to %d reports, reconciling every %g s",
            settings.result_batch_size,
            settings.reconcile_interval,
        )

    def _connect_broker(self) -> None:
        try:
            self.publisher.connect()
            self.consumer.connect()
        except BaseException:
            self.consumer.close()
            self.publisher.close()
            raise

    def _register_catalog(self) -> None:
        catalog = self.catalog
        with self.store.unit_of_work() as uow:
            uow.register_catalog(catalog, self.clock())
        log.info(
            "registered %d pack(s) (%s): %d action(s), %d workflow(s)",
            len(catalog.packs),
            ", ".join(sorted(catalog.packs)) or "none",
            len(catalog.actions),
            len(catalog.workflows),
        )

    def _publish_definitions(self, definitions: Definitions) -> None:
        published = 0
        author = _scheduler_author()
        for ref, spec in sorted(self.catalog.workflows.items()):
            try:
                definitions.publish(spec, at=self.clock(), author=author)
                published += 1
            except (DefinitionError, ConflictError) as exc:
                log.error("workflow %s is not published: %s", ref, str(exc).splitlines()[0])
        log.info("published %d workflow definition(s)", published)

    def _listen(self) -> None:
        """LISTEN for ``treadle_outbox`` on a connection of its own (PostgreSQL only)."""
        store = self.store
        if store.engine.dialect.name != "postgresql":
            return
        try:
            proxied = store.engine.raw_connection()
            connection: Any = proxied.dbapi_connection
            proxied.detach()  # kept for the process's lifetime, outside the pool
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {OUTBOX_CHANNEL}")
        except Exception as exc:
            log.warning("cannot listen for outbox notifications (%s); polling instead", exc)
            self._listen_retry_at = time.monotonic() + _RELISTEN_SECONDS
            return
        self._listener = connection
        log.info("listening for new work on PostgreSQL channel %s", OUTBOX_CHANNEL)

    def _drop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                listener.close()
        self._listen_retry_at = time.monotonic() + _RELISTEN_SECONDS

    # -- the loop -------------------------------------------------------------------------------

    def wake(self) -> None:
        """Make a waiting :meth:`step` return now (safe from signal handlers and threads)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_write, b"!")

    def _wake_fds(self) -> list[Any]:
        fds: list[Any] = [self._wake_read]
        if self._listener is not None:
            fds.append(self._listener)
        return fds

    def _clear_wakeups(self) -> bool:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._wake_read, 4096):
                pass
        if self._listener is None:
            if self._store is not None and time.monotonic() >= self._listen_retry_at:
                self._listen()
            return False
        try:
            self._listener.poll()
        except Exception as exc:
            log.warning("lost the outbox notification connection (%s); polling meanwhile", exc)
            self._drop_listener()
            return True
        notified = bool(self._listener.notifies)
        self._listener.notifies.clear()
        return notified

    def _on_decision(self, _state: RunState, commands: Sequence[Command]) -> None:
        """Note what a saved decision wrote, so a step queries only what may have changed."""
        for command in commands:
            if self.handlers.relayed(command):
                self._outbox_dirty = True
            elif isinstance(command, (ScheduleTimer, CancelTimer)):
                self._timers_dirty = True

    def _wait_budget(self, timeout: float) -> float:
        """Seconds the step may wait for reports: up to the next timer, reconcile or poll."""
        if timeout <= 0:
            return 0.0
        now = self.clock()
        wait = min(
            timeout,
            (self._next_reconcile - now).total_seconds(),
            self.poll_interval - (time.monotonic() - self._last_poll),
        )
        if self._next_timer is not None:
            wait = min(wait, (self._next_timer - now).total_seconds())
        return max(wait, 0.0)

    def step(self, timeout: float = 0.0) -> bool:
        """One iteration of the loop (see the module docstring); True if anything happened."""
        self.consumer.heartbeat()
        batch = self.consumer.take(
            self.settings.result_batch_size,
            self._wait_budget(timeout),
            self._wake_fds(),
            linger=STARTED_LINGER_SECONDS,
        )
        if self._clear_wakeups():  # a client wrote work (or the listener was lost)
            self._outbox_dirty = self._timers_dirty = True
        if time.monotonic() - self._last_poll >= self.poll_interval:
            # The fallback poll: other processes' rows and timers, however they were written.
            self._last_poll = time.monotonic()
            self._outbox_dirty = self._timers_dirty = True
        happened = False
        if batch:
            try:
                applied = self._apply(batch)
            except BaseException:
                batch.requeue()
                raise
            taken = len(batch)
            self.consumer.ack(batch)
            self.reports_applied += taken
            self.publisher.revoke(applied.revoke)
            happened = True
        services = self.services  # (rebuilt if a report had to be dropped)
        if self._relay(services):  # at once: the successors of what was just applied
            happened = True
        if self._fire_timers(services):
            happened = True
        now = self.clock()
        if now >= self._next_reconcile:
            self._next_reconcile = now + timedelta(seconds=self.settings.reconcile_interval)
            reconciled = services.reconciler.reconcile(services.runs)
            if reconciled:
                happened = True
                self.publisher.revoke(reconciled.revoke)
                self._relay(services)
        return happened

    def _relay(self, services: _Services) -> int:
        """Drain the outbox if something may have been written to it."""
        if not self._outbox_dirty:
            return 0
        self._outbox_dirty = False
        try:
            return services.relay.drain()
        except BaseException:
            self._outbox_dirty = True
            raise

    def _fire_timers(self, services: _Services) -> int:
        """Fire due timers; the time of the next one is re-read only when it may have moved."""
        if self._timers_dirty:
            self._timers_dirty = False
            try:
                with self.store.unit_of_work() as uow:
                    self._next_timer = uow.next_timer_at()
            except BaseException:
                self._timers_dirty = True
                raise
        if self._next_timer is None or self._next_timer > self.clock():
            return 0
        self._timers_dirty = True  # firing deletes timers (and may schedule new ones)
        fired = fire_due_timers(self.store, services.runs, clock=self.clock)
        if fired:
            self._relay(services)
        return fired

    def _apply(self, batch: ReportBatch) -> AppliedReports:
        """Apply a batch; if it fails for a reason other than the database, apply its
        reports one by one and drop (with the traceback logged) those that still fail,
        so one bad report cannot block the queue."""
        services = self.services
        try:
            return services.applier.apply(batch, services.runs)
        except _DATABASE_ERRORS:
            raise
        except Exception:
            log.exception("applying %d reports failed; applying them one by one", len(batch))
        started = results = 0
        failed: list[str] = []
        revoke: list[str] = []
        services = self._build_services()  # the failed transaction may have cached states
        for single in batch.singles():
            try:
                applied = services.applier.apply(single, services.runs)
            except _DATABASE_ERRORS:
                raise
            except Exception:
                log.exception("dropping a report that cannot be applied: %s", single.describe())
                services = self._build_services()
                continue
            started += applied.started
            results += applied.results
            failed.extend(applied.failed)
            revoke.extend(applied.revoke)
        return AppliedReports(started, results, failed, revoke)

    def run(self, stop: threading.Event) -> None:
        """Step until ``stop`` is set; a failed step is logged and retried with backoff."""
        failures = 0
        while not stop.is_set():
            try:
                self.step(self.poll_interval)
                failures = 0
            except Exception as exc:
                failures += 1
                pause = min(self.poll_interval * 2 ** (failures - 1), _MAX_PAUSE_SECONDS)
                log.warning(
                    "scheduler step failed (%s: %s); retrying in %g s",
                    type(exc).__name__,
                    str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                    pause,
                    exc_info=failures == 1,  # the traceback once, not at every retry
                )
                self._build_services()
                stop.wait(pause)

    def close(self) -> None:
        """Close every connection; the process cannot step afterwards."""
        self._drop_listener()
        self.consumer.close()
        self.publisher.close()
        if self._store is not None:
            self._store.close()
            self._store = None
        self._services = None
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_read = self._wake_write = -1


def _scheduler_author() -> str:
    """Who publishes the packs' workflows at start: this scheduler, and the login it runs as."""
    return f"treadle scheduler ({os_login()}@{socket.gethostname()})"
