"""What a ``treadle scheduler`` process counts, wired to the parts that see it.

:class:`SchedulerMetrics` holds the process's :class:`~treadle.common.metrics.Metrics`
(sources ``scheduler`` and ``runs``; served by ``--metrics-port``) and is what the
:class:`~treadle.scheduler.service.process.SchedulerProcess` calls:

* the publisher tells it each confirmed batch (``celery_task_sent_total``, and the
  completion -> dispatch latency of the result batch that caused it) and each revoke
  (``celery_task_revoked_total``, labelled from the attempts' rows: revokes are rare);
* :meth:`apply` times the transaction applying a result batch (``treadle_state_save_*``)
  and counts the dead letters it applied; :meth:`reconciled` what the reconciler ended;
* :meth:`attach` registers :class:`~treadle.scheduler.service.run_metrics.RunMetrics` on
  the run service (runs, retries, attempt durations) and builds the
  :class:`~treadle.scheduler.service.metrics_refresh.MetricsRefresher` (the gauges, every
  ``TREADLE_OBSERVE_SECONDS``), stepped by :meth:`refresh`.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import select

from treadle.common.metrics import Metrics
from treadle.common.metrics_catalog import MetricSource
from treadle.common.settings import Settings
from treadle.scheduler.service.broker_observer import BrokerObserver
from treadle.scheduler.service.celery_publisher import CeleryPublisher
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.metrics_refresh import MetricsRefresher
from treadle.scheduler.service.reconciler import Reconciliation, WorkerLiveness
from treadle.scheduler.service.report_applier import AppliedReports
from treadle.scheduler.service.run_metrics import RunMetrics, celery_task_name
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.store import Store
from treadle.scheduler.store.models import attempts, runs

log = logging.getLogger("treadle.scheduler")

__all__ = ["SchedulerMetrics", "scheduler_metrics"]

_Batch = TypeVar("_Batch")


def scheduler_metrics() -> Metrics:
    """A new registry with the metrics a scheduler exports."""
    return Metrics([MetricSource.SCHEDULER, MetricSource.RUNS])


class SchedulerMetrics:
    """The scheduler process's counting (see the module docstring)."""

    def __init__(
        self,
        metrics: Metrics,
        settings: Settings,
        *,
        publisher: CeleryPublisher,
        liveness: WorkerLiveness,
        clock: Callable[[], datetime],
        hostname: str | None = None,
    ) -> None:
        self.metrics = metrics
        self.settings = settings
        self.hostname = hostname or socket.gethostname()
        self._liveness = liveness
        self._clock = clock
        self._sent = metrics.counter("celery_task_sent")
        self._revoked = metrics.counter("celery_task_revoked")
        self._latency = metrics.histogram("treadle_dispatch_latency_seconds")
        self._save_seconds = metrics.histogram("treadle_state_save_seconds")
        self._save_failures = metrics.counter("treadle_state_save_failures")
        self._reconciled = metrics.counter("treadle_reconciler_actions")
        self._store: Store | None = None
        self._definitions: Definitions | None = None
        self._refresher: MetricsRefresher | None = None
        #: When the result batch whose successors are not yet published was taken.
        self._batch_taken: float | None = None
        publisher.counts = self

    # -- wiring --------------------------------------------------------------------------------

    def attach(self, store: Store, runs: RunService, observer: BrokerObserver) -> None:
        """Count what ``runs`` saves; refresh the gauges from ``store`` and ``observer``."""
        self._store = store
        self._definitions = runs.definitions
        runs.observers.append(
            RunMetrics(
                self.metrics,
                runs.definitions,
                hostname=self.hostname,
                default_queue=self.settings.default_queue,
            )
        )
        self._refresher = MetricsRefresher(
            self.metrics,
            store,
            queues=lambda: observer.latest,
            workers_seen=self._liveness.heard_from,
            worker_lost_after=timedelta(seconds=self.settings.worker_lost_after),
            stalled_after=timedelta(seconds=self.settings.stalled_after),
            clock=self._clock,
            interval=self.settings.observe_seconds,
        )

    def refresh(self) -> None:
        """Set the gauges if it is time (a step calls this; it reads the database at most
        every ``TREADLE_OBSERVE_SECONDS``)."""
        if self._refresher is not None:
            self._refresher.step()

    # -- a step's parts ----------------------------------------------------------------------

    def apply(self, apply: Callable[[_Batch], AppliedReports], batch: _Batch) -> AppliedReports:
        """``apply(batch)``, timed as a state save (a failure counted); the batch's
        successors' dispatch is timed from now."""
        taken = time.monotonic()
        try:
            applied = apply(batch)
        except BaseException:
            self._save_failures.inc()
            raise
        self._save_seconds.observe(time.monotonic() - taken)
        self._batch_taken = taken
        dead_letters = len(applied.failed) - len(applied.revoke)  # never revoked: gone
        if dead_letters > 0:
            self._reconciled.labels("dead_letter").inc(dead_letters)
        return applied

    def batch_relayed(self) -> None:
        """The step published what the batch caused: later dispatches are not its own."""
        self._batch_taken = None

    def reconciled(self, reconciliation: Reconciliation) -> Reconciliation:
        """Count what a reconciler pass ended (and hand it on)."""
        vanished = len(reconciliation.vanished)
        for action, count in (
            ("timed_out", len(reconciliation.timed_out)),
            ("lost", len(reconciliation.lost) - vanished),
            ("vanished", vanished),
        ):
            if count:
                self._reconciled.labels(action).inc(count)
        return reconciliation

    # -- the publisher's counts (PublishCounts) ------------------------------------------------

    def sent(self, tasks: Sequence[tuple[str, str]]) -> None:
        for name, queue in tasks:
            self._sent.labels(name, self.hostname, queue).inc()
        taken = self._batch_taken
        if taken is not None and tasks:
            latency = time.monotonic() - taken
            for _ in tasks:
                self._latency.observe(latency)

    def revoked(self, attempt_ids: Sequence[str]) -> None:
        """Count revokes by the attempts' task and queue (one read: revokes are rare)."""
        store = self._store
        labels: dict[str, tuple[str, str]] = {}
        if store is not None:
            try:
                labels = self._revoked_labels(store, attempt_ids)
            except Exception as exc:  # counting must not fail what it counts
                log.debug("could not read the revoked attempts: %s", exc)
        for attempt_id in attempt_ids:
            name, queue = labels.get(attempt_id, ("", ""))
            self._revoked.labels(name, self.hostname, queue).inc()

    def _revoked_labels(
        self, store: Store, attempt_ids: Sequence[str]
    ) -> dict[str, tuple[str, str]]:
        definitions = self._definitions
        found: dict[str, tuple[str, str]] = {}
        with store.snapshot() as uow:
            rows = uow.connection.execute(
                select(
                    attempts.c.attempt_id,
                    attempts.c.action_ref,
                    attempts.c.queue,
                    runs.c.workflow,
                    runs.c.definition_version,
                    runs.c.workspace,
                )
                .join(runs, runs.c.id == attempts.c.run_id)
                .where(attempts.c.attempt_id.in_(list(attempt_ids)))
            ).all()
            for row in rows:
                runner = None
                if definitions is not None:
                    pinned = definitions.pinned(
                        row.workflow, row.definition_version, uow, workspace=row.workspace
                    )
                    route = pinned.routes.get(row.action_ref)
                    runner = route.runner if route is not None else None
                queue = row.queue or self.settings.default_queue
                found[row.attempt_id] = (celery_task_name(runner), queue)
        return found
