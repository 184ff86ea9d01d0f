"""Run workflows to their end in one process: the loop behind ``treadle run``.

The loop repeats: relay the outbox (dispatching to the thread pool, starting child runs),
apply the results that came back (in batches: one transaction for many results), fire due
timers, then block until the next result or timer. It returns when the run has ended, or
when nothing can happen without a person or an outside event (nothing in flight, only
wait deadlines pending): the CLI then exits 3 and a later ``treadle inquiry respond``
continues the run from the database.

Timers run on real time here; an overdue timer (say, an inquiry deadline that passed while
no Treadle process was running) fires as soon as the run is continued.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from treadle.clientlib.audit import Auditor
from treadle.clientlib.changes import answer, publish_and_start, publish_one
from treadle.clientlib.publishing import Registered
from treadle.common.access import Principal
from treadle.common.catalog import Catalog
from treadle.common.errors import NotFound
from treadle.common.graph import Graph
from treadle.common.messages import TaskResult
from treadle.common.settings import Settings
from treadle.common.spec import WorkflowSpec
from treadle.embedded.pool import LocalPublisher
from treadle.scheduler.core.queries import only_waits
from treadle.scheduler.core.state import RunState, Timer, TimerKind
from treadle.scheduler.service.commands import CommandHandlers
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.emergency_stop.guard import EmergencyStopGuard
from treadle.scheduler.service.flow_release import FlowRelease
from treadle.scheduler.service.inquiries import answer_inquiry
from treadle.scheduler.service.relay import Relay
from treadle.scheduler.service.run_log import RunLog
from treadle.scheduler.service.run_spans import observe_run_spans
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.service.starting import RunOptions, RunStarter
from treadle.scheduler.service.timers import fire_due_timers
from treadle.scheduler.store import InquiryEntry, Store, UnitOfWork
from treadle.worker.execute import RunnerSettings

# Results applied per transaction at most; more wait for the next turn of the loop.
_BATCH = 2000
# The loop wakes at least this often even when nothing is due, to notice overdue timers.
_MAX_WAIT_SECONDS = 1.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class FollowResult:
    """Where following a run stopped: its state, and whether it waits on people or events."""

    state: RunState
    waiting: bool


class EmbeddedRunner:
    """The scheduler, a worker pool and a SQLite (or any) store in one process."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        *,
        store: Store | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.clock = clock
        secret_key = settings.secret_key.get_secret_value() if settings.secret_key else None
        if store is None:
            store = Store.open(settings.database_url, secret_key=secret_key)
            store.prepared_statements = settings.prepared_statements
        self.store = store
        if settings.lifecycle_events:  # every change writes its events (lifecycle-events.md)
            self.store.lifecycle_events = True
        self.definitions = Definitions(self.store, catalog)
        self.handlers = handlers = CommandHandlers(settings.default_queue)
        self.runs = RunService(
            self.store, self.definitions, clock=clock, write_commands=handlers.write
        )
        RunLog().observe(self.runs)  # the run events as log lines (docs/operations.md#logs)
        observe_run_spans(self.runs)  # `treadle api` on SQLite, tracing on: run spans
        self.starter = RunStarter.from_settings(self.runs, settings)
        # The in-process workers decrypt with the store's key (configured, or the key
        # file generated beside a SQLite database), as a worker would with its own.
        runner_settings = replace(
            RunnerSettings.from_settings(settings, worker_name="embedded"),
            secret_keys=self.store.keys.keyring,
        )
        self.pool = LocalPublisher(catalog, runner_settings, settings.worker_threads)
        #: Emergency stops hold this runner's dispatches too (docs/governance.md).
        self.emergency = EmergencyStopGuard(settings, clock)
        self.emergency.attach(self.runs, self.pool)
        self.relay = Relay(self.starter, self.emergency.gated, handlers, clock=clock)
        self.flow = FlowRelease(self.store, clock, recheck_seconds=settings.flow_recheck_seconds)

    @classmethod
    @contextmanager
    def open(cls, settings: Settings, catalog: Catalog, **kwargs: Any) -> Iterator[EmbeddedRunner]:
        runner = cls(settings, catalog, **kwargs)
        try:
            yield runner
        finally:
            runner.close()

    def close(self) -> None:
        self.pool.close()
        self.store.close()

    # -- starting and continuing -----------------------------------------------------------

    def start(
        self,
        spec: WorkflowSpec,
        parameters: Mapping[str, Any],
        options: RunOptions | None = None,
        *,
        graph: Graph | None = None,
        by: Principal | None = None,
    ) -> str:
        """Create and start a run (raises ParameterError before anything is stored);
        ``graph``: ``spec`` as validation compiled it with this runner's catalog. With
        ``by``, publishing and starting are one transaction, recorded in the audit log as
        theirs (``workflow.publish``, ``run.start``)."""
        if by is None:
            return self.starter.start(spec, parameters, options, graph=graph)
        options = options or RunOptions()
        author = str((options.identity or {}).get("login") or "") or None

        def publish(uow: UnitOfWork) -> Registered:
            at = self.clock()
            return publish_one(self.definitions, uow, spec, at=at, author=author, graph=graph)

        return publish_and_start(
            self.auditor(by), self.starter, spec, parameters, options=options, publish=publish
        )

    def auditor(self, principal: Principal) -> Auditor:
        """Changes made here for ``principal``, recorded in the audit log as theirs."""
        return Auditor(self.store.unit_of_work, principal, self.clock)

    def respond(
        self,
        inquiry_id: str,
        response: Any,
        responder: str | None = None,
        *,
        by: Principal | None = None,
    ) -> InquiryEntry:
        """Answer an inquiry as :func:`answer_inquiry` does through the database (checked
        against its schema, under the run lock; the run is unchanged if refused); returns
        the inquiry as answered. With ``by``, the answer (or its refusal) is recorded in
        the audit log as theirs (``inquiry.respond``).

        Overdue timers fire first (nothing else fires them between two ``treadle``
        commands), so an inquiry whose deadline already passed is closed as timed out
        rather than answered late.
        """
        with self.store.unit_of_work() as uow:
            uow.get_inquiry(inquiry_id)  # NotFound before anything moves
        self._fire_timers()
        if by is None:
            return answer_inquiry(self.runs, inquiry_id, response, responder)
        return answer(self.auditor(by), self.runs, inquiry_id, response, responder=responder)

    # -- the loop ----------------------------------------------------------------------------

    def follow(
        self, run_id: str, on_change: Callable[[RunState], None] | None = None
    ) -> FollowResult:
        """Drive ``run_id`` (and its child runs) until it ends or only waits."""
        notify = None if on_change is None else (lambda: on_change(self.state_of(run_id)))
        return self.follow_all([run_id], notify)[run_id]

    def follow_all(
        self, run_ids: Sequence[str], on_change: Callable[[], None] | None = None
    ) -> dict[str, FollowResult]:
        """Drive several runs (and their child runs) until each ends or only waits."""
        roots = list(run_ids)
        tree = {*roots, *self._descendants(roots)}
        while True:
            if self.emergency.step(self.runs, self.pool):  # a stop paused or resumed runs
                continue
            self.relay.drain()
            tree.update(self.relay.child_runs_started)
            if self.emergency.withheld:  # the next step takes back what the stop withheld
                continue
            if self.flow.step():  # held dispatches whose slot or rate window freed
                continue
            results = self._take_results(block=False)
            if results or (self._timer_due(tree) and self._fire_timers()):
                if results:
                    self.runs.apply_results(results)
                if on_change is not None:
                    on_change()
                continue
            states = {run_id: self.state_of(run_id) for run_id in roots}
            if all(state.status.is_terminal for state in states.values()):
                return {run_id: FollowResult(state, False) for run_id, state in states.items()}
            wait = self._seconds_to_next_timer(tree)
            if self.flow.holding:  # a slot or a rate window may free without a result here
                wait = self._wait_while_holding()
            if wait is None and self.pool.in_flight == 0:
                # A worker queues its result before it stops counting as in flight, so an
                # empty queue read *after* seeing nothing in flight means nothing is coming.
                if not self.pool.results.empty():
                    continue
                # Another process (``treadle runs cancel``) may have moved the runs; a late
                # result of a revoked attempt is dropped unread, so the cache may be old.
                for run_id in tree:
                    self.runs.forget(run_id)
                states = {run_id: self.state_of(run_id) for run_id in roots}
                return {
                    run_id: FollowResult(state, only_waits(state, self._stored_run))
                    for run_id, state in states.items()
                }
            results = self._take_results(
                block=True, timeout=min(wait or _MAX_WAIT_SECONDS, _MAX_WAIT_SECONDS)
            )
            if results:
                self.runs.apply_results(results)
                if on_change is not None:
                    on_change()

    def _descendants(self, run_ids: Sequence[str]) -> list[str]:
        """Child runs already started, e.g. before a restart: their timers (retries,
        delays) move the followed runs on as much as the runs' own do."""
        found: list[str] = []
        pending = list(run_ids)
        with self.store.unit_of_work() as uow:
            while pending:
                children = uow.child_runs(pending.pop())
                found.extend(children)
                pending.extend(children)
        return found

    def state_of(self, run_id: str) -> RunState:
        """The freshest state of a run this process knows (cached, else loaded)."""
        cached = self.runs.cached(run_id)
        return cached if cached is not None else self.runs.load(run_id)

    def _stored_run(self, run_id: str) -> RunState | None:
        """:meth:`state_of`, or None for a run not stored (yet)."""
        try:
            return self.state_of(run_id)
        except NotFound:
            return None

    def _take_results(self, *, block: bool, timeout: float = 0.0) -> list[TaskResult]:
        taken: list[TaskResult] = []
        source = self.pool.results
        if block:
            try:
                taken.append(source.get(timeout=max(timeout, 0.0)))
            except queue.Empty:
                return taken
        while len(taken) < _BATCH:
            try:
                taken.append(source.get_nowait())
            except queue.Empty:
                break
        return taken

    def _fire_timers(self) -> int:
        return fire_due_timers(self.store, self.runs, clock=self.clock)

    def _timer_due(self, tree: set[str]) -> bool:
        """Whether any timer of the followed runs is due (saves a query per turn).

        While flow control holds dispatches back, their timeout timers are stopped in the
        store only: the store's next timer is the truth then.
        """
        now = self.clock()
        if self.flow.holding:
            due = self._stored_next_timer()
            return due is not None and due <= now
        return any(
            timer.fire_at <= now
            for run_id in tree
            for timer in self.state_of(run_id).timers.values()
        )

    def _stored_next_timer(self) -> datetime | None:
        with self.store.unit_of_work() as uow:
            return uow.next_timer_at()

    def _wait_while_holding(self) -> float:
        """Until the next stored timer, at most until the next look at held dispatches."""
        wait = self.settings.flow_recheck_seconds
        due = self._stored_next_timer()
        if due is not None:
            wait = min(wait, max((due - self.clock()).total_seconds(), 0.0))
        return wait

    def _seconds_to_next_timer(self, tree: set[str]) -> float | None:
        """Seconds until the next timer that moves work on (retries, delays, timeouts).

        Deadlines of inquiries and event waits do not count: the loop does not wait for a
        person. ``None`` when there is no such timer.
        """
        in_flight = self.pool.in_flight > 0
        upcoming = [
            timer.fire_at
            for run_id in tree
            if not (state := self.state_of(run_id)).status.is_terminal
            for timer in state.timers.values()
            if _moves_work(timer, in_flight=in_flight)
        ]
        if not upcoming:
            return None
        return max((min(upcoming) - self.clock()).total_seconds(), 0.0)


def _moves_work(timer: Timer, *, in_flight: bool) -> bool:
    """Retries, delays and timeouts move a run on; deadlines of waits only end them.

    A run's own deadline counts while work is in flight (it may cut that work short).
    """
    if timer.kind is not TimerKind.DEADLINE:
        return True
    return timer.execution == 0 and in_flight
