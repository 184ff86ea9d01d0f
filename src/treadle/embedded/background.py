"""Every run of a database moved on in the background: the embedded mode of ``treadle api``.

``treadle run`` drives the runs it started (:meth:`EmbeddedRunner.follow`) and returns when
they end or only wait. A server needs the other shape: one process that answers requests
and, beside them, moves on every run of its database for as long as it runs, whoever
started the run (a request, an event's trigger, a parent run) and whatever released it (an
answered inquiry, an event, a control, a timer). :class:`BackgroundScheduler` is that, for
``treadle api`` on SQLite: an :class:`EmbeddedRunner` (the same services and thread pool
as ``treadle run``) stepped by one thread of its own, as ``treadle scheduler`` steps its
loop.

Each step applies the results the worker threads queued, relays the outbox (dispatching to
the pool, starting child runs), fires the timers that are due and, with
``TREADLE_RETENTION_DAYS`` set, purges old runs now and then. Between steps the thread
waits for the next result, the next timer, a change committed on an engine it watches
(:meth:`BackgroundScheduler.watch`: the API's requests) or ``poll_interval`` seconds, which
also catches what other processes write to the same file. As in the scheduler,
:class:`~treadle.scheduler.service.wakeups.PendingWork` says what a step must look at, so
an idle server costs the database a look per poll interval. A step that fails (the
database locked for too long, say) is logged and tried again with backoff; results it
could not apply are kept for the next one.

:meth:`BackgroundScheduler.close` stops without losing work: the thread stops relaying;
attempts no worker thread had started are ended as ``lost`` (the run dispatches them
again, uncharged, and they leave the outbox when the process starts again); the running
ones are waited for and their results applied. Python threads cannot be killed, so
closing waits as long as the longest action still running.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import InterfaceError, OperationalError

from treadle.common.catalog import Catalog
from treadle.common.errors import ConflictError, DefinitionError
from treadle.common.messages import TaskResult
from treadle.common.settings import Settings
from treadle.common.statuses import AttemptStatus
from treadle.embedded.runner import EmbeddedRunner, utc_now
from treadle.scheduler.core.endings import AttemptEnding
from treadle.scheduler.service.lifecycle_events.publishing_thread import LifecyclePublishing
from treadle.scheduler.service.retention import PeriodicPurge
from treadle.scheduler.service.rule_sync import sync_rules
from treadle.scheduler.service.step_backoff import pause_after_failure
from treadle.scheduler.service.timers import fire_due_timers
from treadle.scheduler.service.wakeups import PendingWork
from treadle.scheduler.store import Store
from treadle.scheduler.store.engine import READ_ONLY_OPTION

__all__ = ["BackgroundScheduler"]

log = logging.getLogger("treadle.embedded")

#: Errors after which a step is simply tried again (the database hiccuped).
_DATABASE_ERRORS = (OperationalError, InterfaceError)
#: Results applied per transaction at most; more are taken by the next step at once.
_BATCH = 2000
#: Marks a pooled connection whose transaction committed a change (``info`` of its record).
_WROTE = "treadle_wrote"
#: Why the attempts no worker thread had started when the scheduler stopped are lost.
_STOPPED = {
    "type": "SchedulerStopped",
    "message": "the embedded scheduler stopped before the attempt started; "
    "it runs again when the scheduler starts again",
}


class BackgroundScheduler:
    """An :class:`EmbeddedRunner` stepped by a thread of its own until closed; see the
    module docstring. Build it, :meth:`publish_packs`, :meth:`watch` the engines whose
    writes should wake it, :meth:`start`, and :meth:`close` at the end."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        *,
        store: Store | None = None,
        clock: Callable[[], datetime] = utc_now,
        poll_interval: float = 1.0,
    ) -> None:
        self.runner = EmbeddedRunner(settings, catalog, store=store, clock=clock)
        self.poll_interval = poll_interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._outside_write = False
        self._pending = PendingWork(poll_interval, relayed=self.runner.handlers.relayed)
        self.runner.runs.listeners.append(self._pending.note_decision)
        self.runner.pool.on_result = self._wake.set
        self._retention = PeriodicPurge(settings, clock)
        #: With TREADLE_LIFECYCLE_EVENTS, posts them to the webhook sinks (no broker here).
        self._lifecycle = LifecyclePublishing(settings, clock)
        self._lifecycle.watch(self.runner.runs)
        self._held: list[TaskResult] = []  # taken from the pool, not applied yet
        self._thread: threading.Thread | None = None
        self._watched: list[Engine] = []
        self._closed = False

    @property
    def running(self) -> bool:
        """Whether the thread is stepping."""
        return self._thread is not None and self._thread.is_alive()

    # -- before starting ---------------------------------------------------------------------

    def publish_packs(self, author: str) -> int:
        """Register the catalog's packs and publish their workflows (a new version only
        where one changed), as ``treadle scheduler`` does when it starts; a workflow that
        cannot be published is logged and left out. Returns how many were published."""
        runner = self.runner
        with runner.store.unit_of_work() as uow:
            uow.register_catalog(runner.catalog, runner.clock())
            catalog = runner.catalog
            sync_rules(uow, catalog.rules, set(catalog.packs), now=runner.clock())
        published = 0
        for ref, spec in sorted(runner.catalog.workflows.items()):
            try:
                runner.definitions.publish(spec, at=runner.clock(), author=author)
                published += 1
            except (DefinitionError, ConflictError) as exc:
                log.error("workflow %s is not published: %s", ref, str(exc).splitlines()[0])
        return published

    def watch(self, engine: Engine) -> None:
        """Wake up whenever a transaction on ``engine`` commits a change (once its
        connection is back in the pool, so the change is visible): what a request wrote
        is relayed at once rather than at the next poll. ``engine`` must not be the
        runner's own (its every step would wake it again)."""
        if engine is self.runner.store.engine:
            raise ValueError("watch another engine than the runner's own")
        event.listen(engine, "commit", self._note_commit)
        event.listen(engine, "checkin", self._on_checkin)
        self._watched.append(engine)

    @staticmethod
    def _note_commit(connection: Connection) -> None:
        if not connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.info[_WROTE] = True

    def _on_checkin(self, _dbapi_connection: Any, record: Any) -> None:
        if record is not None and record.info.pop(_WROTE, False):
            self._outside_write = True
            self._wake.set()
            self._lifecycle.wake()

    # -- running -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start stepping on a thread of its own."""
        if self._thread is not None or self._closed:
            raise RuntimeError("the background scheduler was started already")
        self._thread = threading.Thread(
            target=self._loop, name="treadle-embedded-scheduler", daemon=True
        )
        self._thread.start()
        self._lifecycle.start(self.runner.store, None)
        log.info(
            "embedded scheduler started on %s: %d worker thread(s)",
            self.runner.store.url,
            self.runner.settings.worker_threads,
        )

    def wake(self) -> None:
        """Make the thread look at the outbox and the timers now (from any thread)."""
        self._outside_write = True
        self._wake.set()

    def _loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                self.step()
            except Exception as exc:
                failures += 1
                pause = pause_after_failure(
                    log,
                    "embedded scheduler step",
                    exc,
                    failures=failures,
                    poll_interval=self.poll_interval,
                )
                self._pending.mark_all()
                self._stopping.wait(pause)
                continue
            failures = 0
            self._wake.wait(self._wait_budget())

    def step(self) -> bool:
        """One turn of the loop, without waiting; True if anything happened. Called by the
        thread (tests may call it on a scheduler they did not start)."""
        self._wake.clear()
        if self._outside_write:
            self._outside_write = False
            self._pending.mark_all()
        self._pending.fallback_poll()
        happened = self._apply_results()
        if self.runner.emergency.step(self.runner.runs, self.runner.pool):
            happened = True
        if self._relay():
            happened = True
        if self._fire_timers():
            happened = True
        if self._retention.maybe_purge(self.runner.store):
            happened = True
        return happened

    def _wait_budget(self) -> float:
        """Seconds to wait for a result or a wake-up: up to the next timer or poll."""
        wait = self._pending.seconds_to_poll()
        next_timer = self._pending.known_next_timer
        if next_timer is not None:
            wait = min(wait, (next_timer - self.runner.clock()).total_seconds())
        return max(wait, 0.0)

    def _apply_results(self) -> bool:
        results, self._held = self._held, []
        source = self.runner.pool.results
        while len(results) < _BATCH:
            try:
                results.append(source.get_nowait())
            except queue.Empty:
                break
        else:
            self._wake.set()  # more are queued: the next step takes them at once
        if not results:
            return False
        try:
            self.runner.runs.apply_results(results)
        except _DATABASE_ERRORS:
            self._held = results
            raise
        except Exception:
            log.exception("applying %d results failed; applying them one by one", len(results))
            for result in results:
                try:
                    self.runner.runs.apply_results([result])
                except _DATABASE_ERRORS:
                    self._held.append(result)
                except Exception:
                    log.exception("dropping the result of %s: it cannot be applied", result)
        return True

    def _relay(self) -> bool:
        """Drain the outbox if something may have been written to it."""
        relay = self.runner.relay
        with self._pending.take_outbox() as marked:
            drained = relay.drain() if marked else 0
        relay.child_runs_started.clear()  # only followers need them; this runs for long
        return drained > 0

    def _fire_timers(self) -> bool:
        """Fire due timers; the next one's time is read again only when it may have moved."""
        runner = self.runner
        next_timer = self._pending.next_timer(self._read_next_timer)
        if next_timer is None or next_timer > runner.clock():
            return False
        self._pending.mark_timers()  # firing deletes timers (and may schedule new ones)
        fired = fire_due_timers(runner.store, runner.runs, clock=runner.clock)
        if fired:
            self._relay()
        return fired > 0

    def _read_next_timer(self) -> datetime | None:
        with self.runner.store.snapshot() as uow:
            return uow.next_timer_at()

    # -- stopping --------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the thread, end the pool's work as the module docstring says, and close
        the store. Safe to call twice, and on a scheduler never started."""
        if self._closed:
            return
        self._closed = True
        for engine in self._watched:
            event.remove(engine, "commit", self._note_commit)
            event.remove(engine, "checkin", self._on_checkin)
        self._watched.clear()
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self._lifecycle.stop()
        try:
            self._finish_work()
        except Exception:
            log.exception("the embedded scheduler could not record its last results")
        finally:
            self.runner.close()
        if self._thread is not None:
            log.info("embedded scheduler stopped")

    def _finish_work(self) -> None:
        runner = self.runner
        pool = runner.pool
        dropped = pool.drop_queued()
        if dropped:
            now = runner.clock()
            endings = [
                AttemptEnding(
                    attempt_id,
                    AttemptStatus.LOST,
                    finished_at=now,
                    reason="embedded scheduler stopped",
                    error=dict(_STOPPED),
                )
                for attempt_id in dropped
            ]
            with runner.store.unit_of_work() as uow:
                runner.runs.settle(uow, endings)
        if pool.in_flight:
            log.info("waiting for %d running action(s) to end", pool.in_flight)
        pool.close()
        while True:
            self._apply_results()
            if pool.results.empty():
                break
        if self._held:
            log.warning("%d result(s) could not be recorded: %s", len(self._held), self._held)
