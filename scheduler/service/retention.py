"""Purging ended runs in small batches: for ``treadle runs purge`` and the scheduler.

Each batch is one transaction (``RetentionRepository``: find whole ended trees older than
the cutoff, lock them, delete every per-run row), so a purge never holds many locks or a
long transaction, and stopping it half-way leaves a consistent database. Old outside
events no remaining run references go after the runs. :class:`PeriodicPurge` is what the
scheduler process runs: one batch every ``TREADLE_RETENTION_INTERVAL`` seconds when
``TREADLE_RETENTION_DAYS`` is set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from treadle.common.settings import Settings
from treadle.common.statuses import RUN_TERMINAL, RunStatus
from treadle.scheduler.store import Store
from treadle.scheduler.store.retention_repo import PurgePosition

log = logging.getLogger("treadle.scheduler.retention")


@dataclass(frozen=True, slots=True)
class PurgeRequest:
    """What to purge: runs ended before ``cutoff`` with one of ``statuses``."""

    cutoff: datetime
    statuses: frozenset[RunStatus] = RUN_TERMINAL
    batch_size: int = 100
    dry_run: bool = False


@dataclass(slots=True)
class PurgeReport:
    """What a purge removed (or, dry, would remove)."""

    runs: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    events: int = 0
    #: Top-level runs left alone: a run of their tree not ended (before the cutoff), held
    #: by a scheduler, or with messages still to publish.
    skipped: int = 0
    batches: int = 0

    def add_rows(self, rows: dict[str, int]) -> None:
        for table, count in rows.items():
            self.rows[table] = self.rows.get(table, 0) + count


def purge_run_batch(
    store: Store, request: PurgeRequest, report: PurgeReport, after: PurgePosition | None = None
) -> PurgePosition | None:
    """Purge one batch of run trees into ``report``; where the next batch starts, or None."""
    with store.unit_of_work() as uow:
        found = uow.purge_candidates(
            request.cutoff, statuses=request.statuses, limit=request.batch_size, after=after
        )
        removed, purged = uow.purge_runs(found.trees, request.cutoff, dry_run=request.dry_run)
    report.runs.extend(removed)
    report.add_rows(purged.rows)
    report.skipped += found.skipped + purged.locked
    report.batches += 1
    return found.next_position


def purge_event_batch(store: Store, request: PurgeRequest, leaving: Collection[str] = ()) -> int:
    """Delete one batch of old unreferenced outside events (dry: count all of them)."""
    with store.unit_of_work() as uow:
        return uow.purge_events(
            request.cutoff, limit=request.batch_size, dry_run=request.dry_run, leaving=leaving
        )


def purge(
    store: Store, request: PurgeRequest, *, progress: Callable[[PurgeReport], None] | None = None
) -> PurgeReport:
    """Purge every matching run tree, then the old outside events, batch by batch."""
    report = PurgeReport()
    after: PurgePosition | None = None
    while True:
        after = purge_run_batch(store, request, report, after)
        if progress is not None:
            progress(report)
        if after is None:
            break
    if request.dry_run:
        report.events = purge_event_batch(store, request, report.runs)
        return report
    while True:
        deleted = purge_event_batch(store, request)
        report.events += deleted
        if deleted < request.batch_size:
            return report


class PeriodicPurge:
    """The scheduler's retention: one small batch every interval, when it is switched on.

    Each call of :meth:`maybe_purge` that is due removes at most one batch of run trees and
    one batch of outside events older than ``TREADLE_RETENTION_DAYS``; a search that
    passed over trees still going goes on from there next time, then starts again.
    """

    def __init__(self, settings: Settings, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.days = settings.retention_days
        self.batch_size = settings.retention_batch_size
        self.interval = timedelta(seconds=settings.retention_interval)
        self._next = clock()
        self._after: PurgePosition | None = None
        #: Runs and events this process has purged.
        self.purged_runs = 0
        self.purged_events = 0

    @property
    def enabled(self) -> bool:
        return self.days is not None

    def maybe_purge(self, store: Store) -> int:
        """Purge one batch if retention is on and the interval has passed; rows' runs removed."""
        now = self.clock()
        if self.days is None or now < self._next:
            return 0
        self._next = now + self.interval
        request = PurgeRequest(now - timedelta(days=self.days), batch_size=self.batch_size)
        report = PurgeReport()
        self._after = purge_run_batch(store, request, report, self._after)
        events = purge_event_batch(store, request)
        self.purged_runs += len(report.runs)
        self.purged_events += events
        if report.runs or events:
            log.info(
                "retention: purged %d run(s) and %d outside event(s) older than %d day(s)",
                len(report.runs),
                events,
                self.days,
            )
        return len(report.runs) + events
