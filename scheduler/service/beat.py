"""``treadle beat``: celery beat with its schedule in Treadle's database.

A real :class:`celery.beat.Service` ticks a :class:`DatabaseScheduler`, a
:class:`celery.beat.Scheduler` whose entries are the stored schedules, the way
django-celery-beat keeps them in Django's database: every ``reload_every`` seconds (at
most 5) the scheduler brings the schedules workflows declare up to date
(:mod:`.schedule_sync`), follows up the schedules whose runs are still going or whose
fires wait in a buffer, and rereads every schedule, so a change made through the CLI or
the API is seen without a restart. An entry is due when its schedule's next fire (jitter
included) is; applying it does not send a Celery task: workers never touch the database,
so beat itself records the fire and starts its run, in one transaction
(:class:`~treadle.scheduler.service.schedule_firing.ScheduleFiring`). The run's tasks
reach the workers through the outbox and ``treadle scheduler``, as every run's do.

Several beats may run against one database: a schedule's row is locked while it fires
and every fire has a unique key, so each fire is recorded (and its run started) once.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar

from celery import Celery
from celery.beat import ScheduleEntry, Scheduler, Service, event_t
from celery.schedules import BaseSchedule, schedstate

from treadle.common.catalog import Catalog
from treadle.common.metrics import Metrics
from treadle.common.metrics_catalog import MetricSource
from treadle.common.schedules import jitter_delay
from treadle.common.settings import Settings
from treadle.scheduler.service.commands import CommandHandlers
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.run_log import RunLog
from treadle.scheduler.service.run_metrics import RunMetrics
from treadle.scheduler.service.run_spans import observe_run_spans
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.service.schedule_firing import ScheduleFiring
from treadle.scheduler.service.schedule_sync import DeclaredSchedules
from treadle.scheduler.service.schedules import rule_of
from treadle.scheduler.service.starting import RunStarter
from treadle.scheduler.store import Store
from treadle.scheduler.store.base import utc_now
from treadle.scheduler.store.schedule_repo import ScheduleRow

__all__ = ["BeatServices", "DatabaseScheduler", "beat_service", "next_due"]

log = logging.getLogger("treadle.beat")

#: Seconds between prunings of old fires (with ``TREADLE_SCHEDULE_FIRES_KEPT`` set).
PRUNE_EVERY = 60.0
#: The task name beat's entries carry (never sent: beat fires schedules itself).
ENTRY_TASK = "treadle.schedule"


def next_due(row: ScheduleRow) -> datetime | None:
    """When the schedule's next fire after its cursor is due (jitter included)."""
    nominal = rule_of(row).next_after(row.cursor)
    if nominal is None:
        return None
    return nominal + jitter_delay(row.id, nominal, timedelta(seconds=row.jitter_seconds))


class _DueAt(BaseSchedule):  # type: ignore[misc]
    """A celery schedule that is due once the stored schedule's next fire is."""

    def __init__(self, due_at: datetime | None, clock: Callable[[], datetime], most: float):
        super().__init__(nowfun=clock)
        self.due_at = due_at
        self.most = most

    def is_due(self, last_run_at: datetime) -> schedstate:
        if self.due_at is None:
            return schedstate(False, self.most)
        remaining = (self.due_at - self.now()).total_seconds()
        if remaining <= 0:
            return schedstate(True, 0.1)  # beat reloads the entry right after firing
        return schedstate(False, min(remaining, self.most))

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        if self.due_at is None:
            return timedelta(seconds=self.most)
        now: datetime = self.now()
        return max(self.due_at - now, timedelta(0))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _DueAt) and other.due_at == self.due_at

    def __hash__(self) -> int:
        return hash(self.due_at)

    def __repr__(self) -> str:
        return f"<due at {self.due_at.isoformat() if self.due_at else 'never'}>"


class BeatServices:
    """What beat's scheduler uses, rebuilt after a failed step (caches may be stale)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        #: What beat counts (``--metrics-port``): schedule fires, and the runs it starts.
        self.metrics = metrics or Metrics([MetricSource.BEAT, MetricSource.RUNS])
        self.declared = DeclaredSchedules()
        self.firing = self._firing()
        self._next_prune = 0.0

    def _firing(self) -> ScheduleFiring:
        handlers = CommandHandlers(self.settings.default_queue)
        definitions = Definitions(self.store, Catalog())
        runs = RunService(
            self.store,
            definitions,
            clock=self.clock,
            write_commands=handlers.write,
            notify_outbox=True,  # the schedulers relay the new runs' dispatches at once
        )
        RunLog().observe(runs)  # workflow.start of the runs it starts
        observe_run_spans(runs)  # the span of a run that ends as it starts
        runs.observers.append(RunMetrics(self.metrics, definitions))
        return ScheduleFiring(
            RunStarter.from_settings(runs, self.settings),
            clock=self.clock,
            late_after=timedelta(seconds=self.settings.schedule_late_after_seconds),
            fires=self.metrics.counter("treadle_schedule_fires"),
        )

    def reset(self) -> None:
        """Drop every cache (after a failed transaction)."""
        self.declared = DeclaredSchedules()
        self.firing = self._firing()

    def load(self) -> list[ScheduleRow]:
        """Sync declared schedules, follow up open fires, and read every schedule."""
        with self.store.unit_of_work() as uow:
            self.declared.sync(uow, now=self.clock())
            following = uow.schedules_with_open_fires()
        for schedule_id in following:
            try:
                self.firing.follow_up(schedule_id)
            except Exception:  # one schedule's trouble must not stop the others
                log.exception("schedule %s: following up its runs failed", schedule_id)
        with self.store.snapshot() as uow:
            rows = uow.list_schedules()
        self._prune(rows)
        return rows

    def _prune(self, rows: list[ScheduleRow]) -> None:
        """Keep ``TREADLE_SCHEDULE_FIRES_KEPT`` fires per schedule, looked at each minute."""
        keep = self.settings.schedule_fires_kept
        if keep is None or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY
        with self.store.unit_of_work() as uow:
            for row in rows:
                uow.prune_fires(row.id, keep)


class DatabaseScheduler(Scheduler):  # type: ignore[misc]
    """A celery beat scheduler whose entries are the stored schedules (module docstring).

    Bind it to its services with :meth:`bound` (celery builds the scheduler itself).
    """

    services: ClassVar[BeatServices]
    reload_every: ClassVar[float] = 1.0

    @classmethod
    def bound(cls, services: BeatServices, reload_every: float) -> type[DatabaseScheduler]:
        """A subclass holding ``services``, for ``Service(scheduler_cls=...)``."""
        attributes = {"services": services, "reload_every": reload_every}
        return type("BoundDatabaseScheduler", (cls,), attributes)

    def setup_schedule(self) -> None:
        self._entries: dict[str, ScheduleEntry] = {}
        self._next_load = 0.0
        current = float(getattr(self, "max_interval", self.reload_every))
        self.max_interval = min(current, self.reload_every)

    def get_schedule(self) -> dict[str, ScheduleEntry]:
        if time.monotonic() >= self._next_load:
            self._load()
        return self._entries

    def set_schedule(self, schedule: dict[str, ScheduleEntry]) -> None:
        self._entries = schedule

    schedule = property(get_schedule, set_schedule)

    def _load(self) -> None:
        self._next_load = time.monotonic() + self.reload_every
        services = self.services
        try:
            rows = services.load()
        except Exception:  # the database hiccuped: keep the entries, try again soon
            log.exception("beat could not read the schedules; trying again")
            services.reset()
            return
        entries: dict[str, ScheduleEntry] = {}
        for row in rows:
            try:
                due = next_due(row)
            except Exception:
                log.exception("schedule %s cannot be computed; left out", row.name)
                continue
            schedule = _DueAt(due, services.clock, self.reload_every)
            entries[row.id] = ScheduleEntry(
                name=row.id,
                task=ENTRY_TASK,
                schedule=schedule,
                kwargs={"name": row.name, "workspace": row.workspace},
                app=self.app,
            )
        self._entries = entries

    def populate_heap(self, event_t: Any = event_t, heapify: Any = heapq.heapify) -> None:
        """Order entries by when they are due, the longest overdue first (celery puts every
        due entry at "now", in dict order, so one busy schedule could starve the ones
        after it)."""
        heap = []
        for entry in self.schedule.values():
            schedule = entry.schedule
            due = schedule.due_at if isinstance(schedule, _DueAt) else None
            when = due.timestamp() if due is not None else self._when(entry, self.max_interval)
            heap.append(event_t(when, 5, entry))
        heapify(heap)
        self._heap = heap

    def reserve(self, entry: ScheduleEntry) -> ScheduleEntry:
        return entry  # the database keeps where a schedule is (its cursor)

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        """Fire the schedule in the database (no Celery task is sent)."""
        try:
            self.services.firing.fire_due(str(entry.name))
        except Exception:
            log.exception("schedule %s could not fire; trying again", entry.kwargs.get("name"))
            self.services.reset()
        self._next_load = 0.0  # read the schedule's new cursor at the next tick

    @property
    def producer(self) -> None:
        return None  # nothing is published: no broker connection for beat's entries

    def should_sync(self) -> bool:
        return False

    def close(self) -> None:
        """Nothing to save: every fire is in the database already."""

    @property
    def info(self) -> str:
        return f"    . db -> {self.services.store.url}\n    . reload -> {self.reload_every}s"


def beat_service(services: BeatServices, *, reload_every: float) -> Service:
    """A celery beat :class:`~celery.beat.Service` ticking a bound :class:`DatabaseScheduler`."""
    app = Celery("treadle-beat", set_as_current=False)
    app.conf.update(
        broker_url=services.settings.broker_url,
        enable_utc=True,
        timezone="UTC",
        beat_max_loop_interval=reload_every,
    )
    return Service(
        app,
        max_interval=reload_every,
        scheduler_cls=DatabaseScheduler.bound(services, reload_every),
        remote_control=False,
    )
