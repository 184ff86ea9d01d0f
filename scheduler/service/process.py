"""One scheduler process: the loop that moves runs forward in distributed mode.

Each :meth:`SchedulerProcess.step` takes a batch of worker reports (waiting until one
arrives, an outbox ``NOTIFY`` comes from a client, the next timer is due, or the timeout
passes), applies it in one go, relays the outbox at once (so a successor is dispatched in
the same step that applied its predecessor's result), fires due timers and, every
``reconcile_interval`` seconds, reconciles; with retention on, it purges a batch of
ended runs every ``retention_interval`` seconds
(:mod:`~treadle.scheduler.service.retention`). Reports are acknowledged only after their
transaction committed. Taking and applying reports are
:mod:`~treadle.scheduler.service.report_consumer` and
:mod:`~treadle.scheduler.service.report_applier`; what ends the wait early, and whether the
outbox and the timers need a look, are :mod:`~treadle.scheduler.service.wakeups`.

Several scheduler processes may share one database and broker: they compete for reports
on the results queue, claim outbox rows and timers with ``SKIP LOCKED``, and serialise
each run's transitions with its row lock. Nothing here assumes it is alone; in-memory
caches are checked against the stored run version, and after any failed step they are
dropped (a rolled-back transaction may have left states in them that never committed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy.exc import InterfaceError, OperationalError

from treadle.common.catalog import Catalog
from treadle.common.metrics import Metrics
from treadle.common.settings import Settings
from treadle.scheduler.core.commands import Command
from treadle.scheduler.service.broker_observer import BrokerObserver
from treadle.scheduler.service.celery_publisher import CeleryPublisher
from treadle.scheduler.service.commands import CommandHandlers
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.direct_publish import DirectPublish
from treadle.scheduler.service.emergency_stop.guard import EmergencyStopGuard
from treadle.scheduler.service.flow_release import FlowRelease
from treadle.scheduler.service.lifecycle_events.publishing_thread import LifecyclePublishing
from treadle.scheduler.service.pack_startup import publish_pack_workflows, register_packs
from treadle.scheduler.service.reconciler import Reconciler, WorkerLiveness
from treadle.scheduler.service.relay import Relay
from treadle.scheduler.service.report_applier import AppliedReports, ReportApplier
from treadle.scheduler.service.report_consumer import ReportBatch, ReportConsumer
from treadle.scheduler.service.retention import PeriodicPurge
from treadle.scheduler.service.run_log import RunLog
from treadle.scheduler.service.run_spans import observe_run_spans
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.service.scheduler_metrics import SchedulerMetrics, scheduler_metrics
from treadle.scheduler.service.scheduler_services import SchedulerServices
from treadle.scheduler.service.starting import RunStarter
from treadle.scheduler.service.startup import (
    RetryPolicy,
    broker_address,
    connect_broker,
    database_address,
    open_store,
)
from treadle.scheduler.service.step_backoff import pause_after_failure
from treadle.scheduler.service.timers import fire_due_timers
from treadle.scheduler.service.wakeups import PendingWork, Wakeups
from treadle.scheduler.store import Store
from treadle.scheduler.store.base import utc_now

log = logging.getLogger("treadle.scheduler")

#: Errors after which a step is simply tried again (the database or broker hiccuped).
_DATABASE_ERRORS = (OperationalError, InterfaceError)
#: How long a batch holding only ``started`` notices waits for results to join it: the
#: notices are not urgent, and applying them with the results saves a transaction.
STARTED_LINGER_SECONDS = 0.1


class SchedulerProcess:
    """A ``treadle scheduler`` process: start, step (or run until stopped), close.

    It owns the connections and the order of a step; what each part of a step does is
    left to the services it holds.
    """

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
        metrics: Metrics | None = None,
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
            results_queue_type=settings.results_queue_type,
            redis_visibility_timeout=settings.redis_report_visibility_timeout,
        )
        self.liveness = WorkerLiveness(since=clock())
        self.metrics = SchedulerMetrics(
            metrics or scheduler_metrics(),
            settings,
            publisher=self.publisher,
            liveness=self.liveness,
            clock=clock,
        )
        self._store: Store | None = None
        self._services: SchedulerServices | None = None
        self._next_reconcile = clock() + timedelta(seconds=settings.reconcile_interval)
        # Whether the outbox and the timers need a look in the next step.
        self._pending = PendingWork(poll_interval, relayed=self._gives_relay_work)
        #: Publishes this process's own dispatches after its commits (None: relay them).
        self._direct: DirectPublish | None = None
        #: Broker messages (reports and dead letters) this process applied and acknowledged.
        self.reports_applied = 0
        self._wakeups = Wakeups()
        self.emergency = EmergencyStopGuard(settings, clock, self._wakeups, self.metrics.metrics)
        #: Purges ended runs now and then when ``TREADLE_RETENTION_DAYS`` is set.
        self.retention = PeriodicPurge(settings, clock)
        self.lifecycle = LifecyclePublishing(settings, clock)  # TREADLE_LIFECYCLE_EVENTS

    # -- parts (available after start) ----------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the scheduler process is not started")
        return self._store

    @property
    def services(self) -> SchedulerServices:
        if self._services is None:
            raise RuntimeError("the scheduler process is not started")
        return self._services

    @property
    def runs(self) -> RunService:
        return self.services.runs

    @property
    def reconciler(self) -> Reconciler:
        return self.services.reconciler

    def _build_services(self) -> SchedulerServices:
        store = self.store
        definitions = Definitions(store, self.catalog)
        runs = RunService(store, definitions, clock=self.clock, write_commands=self.handlers.write)
        starter = RunStarter.from_settings(runs, self.settings)
        runs.listeners.append(self._pending.note_decision)
        self.lifecycle.watch(runs)
        self.emergency.attach(runs, self.publisher)  # what its gate publishes to
        RunLog().observe(runs)  # the run events as log lines (docs/operations.md#logs)
        observe_run_spans(runs)  # with tracing on, each run's span (docs/operations.md#traces)
        if self.settings.outbox_hold_seconds > 0:
            if self._direct is None:  # kept across rebuilds: it holds committed work only
                self._direct = DirectPublish(
                    store,
                    self.emergency.gated,
                    hold_for=timedelta(seconds=self.settings.outbox_hold_seconds),
                    clock=self.clock,
                )
            runs.outgoing = self._direct
        self._pending.mark_all()  # a failed step may have left work
        self._services = SchedulerServices(
            definitions=definitions,
            runs=runs,
            starter=starter,
            relay=Relay(starter, self.emergency.gated, self.handlers, clock=self.clock),
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
                delivery_limit=self.settings.delivery_limit,
                reservations=self.publisher.reservations,
                incarnation=self.publisher.broker_incarnation,
                held=self.publisher.held_attempts,
                broker=broker_address(self.publisher.app.connection_for_read()),
            ),
            flow=FlowRelease(store, self.clock, recheck_seconds=self.settings.flow_recheck_seconds),
            observer=BrokerObserver(
                store,
                self.publisher.app,
                broker_url=self.settings.broker_url,
                default_queue=self.settings.default_queue,
                workers_seen=self.liveness.heard_from,
                clock=self.clock,
                interval=self.settings.observe_seconds,
            ),
        )
        self.metrics.attach(store, runs, self._services.observer)
        return self._services

    # -- start-up -----------------------------------------------------------------------------

    def start(self, stop: threading.Event | None = None) -> None:
        """Connect (retrying), register the packs, publish their workflows, start consuming.

        Raises ServiceUnavailable when the database or broker stays unreachable (or ``stop``
        is set while waiting for them).
        """
        settings = self.settings
        log.info("connecting to the database at %s", database_address(settings.database_url))
        # No ping before each transaction: a failed step is retried (after the pool
        # learnt of the dropped connections), so pinging only adds a round trip.
        self._store = open_store(
            settings, policy=self.startup, stop=stop, clock=self.clock, pre_ping=False
        )
        log.info("database ready: %s (schema up to date)", self._store.url)
        self.lifecycle.start(self._store, self.publisher.app)
        register_packs(self.store, self.catalog, self.clock)
        services = self._build_services()
        publish_pack_workflows(services.definitions, self.catalog, self.clock)
        probe = self.publisher.app.connection_for_write()
        address = broker_address(probe)
        errors = (*probe.connection_errors, KombuOperationalError)
        probe.release()
        log.info("connecting to the broker at %s", address)
        connect_broker(
            self._connect_broker, address=address, errors=errors, policy=self.startup, stop=stop
        )
        log.info("broker ready: consuming %s", ", ".join(self.consumer.queues))
        services.reconciler.note_broker()  # a restart from now on is noticed
        self._wakeups.listen(self._store.engine)
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

    # -- the loop -------------------------------------------------------------------------------

    def wake(self) -> None:
        """Make a waiting :meth:`step` return now (safe from signal handlers and threads)."""
        self._wakeups.wake()

    def _wait_budget(self, timeout: float) -> float:
        """Seconds the step may wait for reports: up to the next timer, reconcile or poll."""
        if timeout <= 0:
            return 0.0
        now = self.clock()
        wait = min(
            timeout,
            (self._next_reconcile - now).total_seconds(),
            self._pending.seconds_to_poll(),
        )
        next_timer = self._pending.known_next_timer
        if next_timer is not None:
            wait = min(wait, (next_timer - now).total_seconds())
        return max(wait, 0.0)

    def step(self, timeout: float = 0.0) -> bool:
        """One iteration of the loop (see the module docstring); True if anything happened."""
        self.consumer.heartbeat()
        batch = self.consumer.take(
            self.settings.result_batch_size,
            self._wait_budget(timeout),
            self._wakeups.waitables(),
            linger=STARTED_LINGER_SECONDS,
        )
        if self._wakeups.clear():  # a client wrote work (or the listener was lost)
            self._pending.mark_all()
        if not batch and self._direct is not None:
            self._direct.mark_sent()  # nothing to apply: no transaction to carry the marks
        self._pending.fallback_poll()
        happened = self.emergency.step(self.services.runs, self.publisher)  # docs/governance.md
        if batch:
            try:
                applied = self.metrics.apply(self._apply, batch)
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
        self.metrics.batch_relayed()
        if services.flow.step():  # slots freed by what was just applied go on at once
            self._pending.mark_outbox()
            self._relay(services)
            happened = True
        if self._fire_timers(services):
            happened = True
        now = self.clock()
        if now >= self._next_reconcile:
            self._next_reconcile = now + timedelta(seconds=self.settings.reconcile_interval)
            reconciled = self.metrics.reconciled(services.reconciler.reconcile(services.runs))
            if reconciled:
                happened = True
                self.publisher.revoke(reconciled.revoke)
                self._relay(services)
        if self.retention.maybe_purge(self.store):
            happened = True
        services.observer.step()  # not "happened": it moves no run
        self.metrics.refresh()
        return happened

    def _gives_relay_work(self, command: Command) -> bool:
        """Whether saving ``command`` leaves rows for a relay pass: not the dispatches and
        cancellations this process publishes itself after commit."""
        if self._direct is not None and self.handlers.leaves_process(command):
            return False
        return self.handlers.relayed(command)

    def _relay(self, services: SchedulerServices) -> int:
        """Publish what this process's commits held, and drain the outbox if something
        may have been written to it (carrying out a relayed command may hold more)."""
        direct = self._direct
        handled = direct.flush() if direct is not None else 0
        with self._pending.take_outbox() as marked:
            if marked:
                handled += services.relay.drain()
        if direct is not None:
            handled += direct.flush()
        return handled

    def _fire_timers(self, services: SchedulerServices) -> int:
        """Fire due timers; the time of the next one is re-read only when it may have moved."""
        next_timer = self._pending.next_timer(self._read_next_timer)
        if next_timer is None or next_timer > self.clock():
            return 0
        self._pending.mark_timers()  # firing deletes timers (and may schedule new ones)
        fired = fire_due_timers(self.store, services.runs, clock=self.clock)
        if fired:
            self._relay(services)
        return fired

    def _read_next_timer(self) -> datetime | None:
        with self.store.unit_of_work() as uow:
            return uow.next_timer_at()

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
                pause = pause_after_failure(
                    log, "scheduler step", exc, failures=failures, poll_interval=self.poll_interval
                )
                if not self.consumer.connected:
                    # The broker failed us: workers could not be heard either, so their
                    # silence until it answers again does not count against them.
                    self.liveness.broker_unreachable()
                self._build_services()
                stop.wait(pause)

    def close(self) -> None:
        """Close every connection; the process cannot step afterwards."""
        self._wakeups.stop_listening()
        self.lifecycle.stop()
        self.consumer.close()
        self.publisher.close()
        if self._store is not None:
            if self._direct is not None:
                try:  # what was published is marked, or a relay publishes it again later
                    self._direct.mark_sent()
                except Exception as exc:
                    log.warning("could not mark published outbox rows sent: %s", exc)
            self._store.close()
            self._store = None
        self._services = None
        self._wakeups.close()
