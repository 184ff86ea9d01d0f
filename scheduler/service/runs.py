"""Apply events to runs: lock, load, ``decide``, save state and commands in one transaction.

This is the impure shell around the pure core, shared by the embedded runner, the client
and the distributed scheduler. Events are applied in batches grouped by run, so a burst of
worker results costs one transaction, not one per result, and each run is locked once per
transaction. States are cached in memory and reused when the stored version still matches
(another scheduler process may have moved the run). The rows each command writes come from
its handler (:mod:`treadle.scheduler.service.commands`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from treadle.common.errors import NotFound
from treadle.common.messages import TaskResult
from treadle.scheduler.core.commands import Command
from treadle.scheduler.core.decide import decide
from treadle.scheduler.core.endings import AttemptEnding
from treadle.scheduler.core.events import Event
from treadle.scheduler.core.ids import parse_attempt_id
from treadle.scheduler.core.state import RunState
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.lifecycle_events.decided import Decided
from treadle.scheduler.store import (
    CommandRowWriter,
    EndedAttempt,
    HeldCommand,
    RunChange,
    SavedRuns,
    Store,
    UnitOfWork,
)

if TYPE_CHECKING:
    from treadle.scheduler.service.lifecycle_events.run_events import RunEventWriter

log = logging.getLogger("treadle.scheduler")


class OutgoingCommands(Protocol):
    """Who publishes the commands leaving the process that a save held (a scheduler's
    :class:`~treadle.scheduler.service.direct_publish.DirectPublish`)."""

    hold_for: timedelta

    def held(self, uow: UnitOfWork, held: Sequence[HeldCommand]) -> None: ...

    def marks_for(self, uow: UnitOfWork) -> list[tuple[list[int], datetime]]: ...


class RunObserver(Protocol):
    """Told, inside the transaction, what it saved and which attempts it ended (the
    metrics: :mod:`~treadle.scheduler.service.run_metrics`); count after ``uow`` commits."""

    def saved(self, uow: UnitOfWork, changes: Sequence[RunChange], saved: SavedRuns) -> None: ...

    def ended(self, uow: UnitOfWork, attempts: Sequence[EndedAttempt]) -> None: ...


Clock = Callable[[], datetime]


class RunService:
    """Applies events to runs through the core and saves what it decided."""

    def __init__(
        self,
        store: Store,
        definitions: Definitions,
        *,
        clock: Clock,
        write_commands: CommandRowWriter,
        cache_size: int = 2048,
        notify_outbox: bool = False,
    ) -> None:
        self.store = store
        self.definitions = definitions
        self.clock = clock
        self._write_commands = write_commands
        self._cache: OrderedDict[str, tuple[RunState, int]] = OrderedDict()
        self._uncommitted: dict[str, tuple[RunState, int, UnitOfWork]] = {}
        self._cache_size = cache_size
        self._notify_outbox = notify_outbox
        self.listeners: list[Callable[[RunState, Sequence[Command]], None]] = []
        self.observers: list[RunObserver] = []
        #: Set in a scheduler process: outgoing commands are held and published by it
        #: after commit; without it they wait in the outbox for a relay.
        self.outgoing: OutgoingCommands | None = None
        #: Writes each decision's lifecycle events with it (TREADLE_LIFECYCLE_EVENTS).
        self.lifecycle: RunEventWriter | None = None
        if store.lifecycle_events:  # imported only then: it brings in the renderings
            from treadle.scheduler.service.lifecycle_events.run_events import RunEventWriter

            self.lifecycle = RunEventWriter(definitions)

    # -- applying events --------------------------------------------------------------------

    def apply_results(self, results: Iterable[TaskResult]) -> None:
        """Record worker results on their attempts and apply the fresh ones, in one transaction."""
        endings = [AttemptEnding.reported(result) for result in results]
        if endings:
            with self.store.unit_of_work() as uow:
                self.settle(uow, endings)

    def settle(self, uow: UnitOfWork, endings: Sequence[AttemptEnding]) -> set[str]:
        """Record how attempts ended and apply the events of those that were still open.

        The runs are locked before their attempt rows are touched: every transaction takes
        locks in that order (runs in id order, then attempts), so two schedulers cannot
        deadlock. An attempt that is unknown, already ended, or ended twice in this batch
        is recorded once (the first ending given wins) and its event applied once. What an
        action printed is kept with its attempt (the first report's; a late report's too,
        when the attempt has none). Returns the ids that were fresh.
        """
        known: list[tuple[str, AttemptEnding]] = []
        for ending in endings:
            ref = parse_attempt_id(ending.attempt_id)
            if ref is None:
                log.warning("ignoring an ending of %r: not an attempt id", ending.attempt_id)
                continue
            known.append((ref.run_id, ending))
        if not known:
            return set()
        # What was published since the last save is marked sent by the same statement.
        # The runs are locked by the same statement too (PostgreSQL), before the attempts.
        sent = self.outgoing.marks_for(uow) if self.outgoing is not None else []
        ended: list[EndedAttempt] | None = [] if self.observers else None
        fresh = uow.record_results(
            [ending for _, ending in known],
            ended=ended,
            sent=sent,
            lock=[run_id for run_id, _ in known],
        )
        printed = [(e.attempt_id, e.output) for _, e in known if e.output is not None]
        if printed:  # what the actions printed, kept with their attempts
            uow.record_outputs(printed)
        for observer in self.observers:
            observer.ended(uow, ended or ())
        applied = set(fresh)
        events: list[tuple[str, Event]] = []
        for run_id, ending in known:
            if ending.attempt_id not in fresh:
                continue  # unknown, already ended, or a second copy in this batch
            fresh.discard(ending.attempt_id)
            event = ending.event()
            if event is not None:
                events.append((run_id, event))
        self.apply_in(uow, events)
        return applied

    def apply_in(self, uow: UnitOfWork, events: Sequence[tuple[str, Event]]) -> None:
        """Apply events (run id, event), in order per run, as one batch in ``uow``."""
        by_run: dict[str, list[Event]] = {}
        for run_id, event in events:
            by_run.setdefault(run_id, []).append(event)
        if by_run:
            self._apply_batch(uow, by_run, self.clock())

    def apply_new(self, uow: UnitOfWork, state: RunState, event: Event) -> RunState:
        """Apply the first event of a run just inserted as ``state`` (nothing to load)."""
        return self.apply_new_many(uow, [(state, event)])[state.run_id]

    def apply_new_many(
        self, uow: UnitOfWork, first: Sequence[tuple[RunState, Event]]
    ) -> dict[str, RunState]:
        """:meth:`apply_new` for runs inserted together: decided and saved as one batch."""
        known = {state.run_id: state for state, _ in first}
        return self._apply_batch(
            uow, {state.run_id: [event] for state, event in first}, self.clock(), known=known
        )

    def _apply_batch(
        self,
        uow: UnitOfWork,
        by_run: Mapping[str, Sequence[Event]],
        now: datetime,
        *,
        known: Mapping[str, RunState] | None = None,
    ) -> dict[str, RunState]:
        """Lock the runs (in id order), decide each run's events, save all in one go.

        The batch costs one statement per table however many runs it touches; states come
        from the cache when the locked version matches, else from the database.
        """
        versions = uow.lock_runs(list(by_run))
        missing = [run_id for run_id in by_run if run_id not in versions]
        if missing:
            raise NotFound(f"run {missing[0]} not found")
        states: dict[str, RunState] = {}
        changes: list[RunChange] = []
        lifecycle = self.lifecycle
        decided: list[Decided] | None = None if lifecycle is None else []
        known_here = {
            run_id: self._known_at(uow, run_id, versions[run_id], known) for run_id in by_run
        }
        unknown = [run_id for run_id, state in known_here.items() if state is None]
        read = uow.load_runs(unknown) if unknown else {}  # in one go, not one run at a time
        for run_id, events in by_run.items():
            state = known_here[run_id] or read[run_id]
            old = state
            graph = self.definitions.pinned(
                state.workflow, state.definition_version, uow, workspace=state.workspace
            ).graph
            commands: list[Command] = []
            logged: list[tuple[Event, datetime]] = []
            for event in events:
                decision = decide(state, event, graph, now)
                if decision.state is state and not decision.commands:
                    continue  # stale or duplicate: nothing changes, nothing is logged
                if decided is not None:
                    decided.append(Decided(state, decision.state, decision.commands))
                state = decision.state
                commands.extend(decision.commands)
                logged.append((event, now))
            states[run_id] = state
            if logged:
                changes.append(RunChange(old, state, logged, commands))
            elif known is None or run_id not in known:
                # Nothing changed, but the state read may be newer than the cached one
                # (another process moved the run): the cache must not keep the old one.
                self._hold(uow, run_id, state, versions[run_id])
        outgoing = self.outgoing
        saved = uow.save_runs(
            changes,
            versions,
            write_commands=self._write_commands,
            hold_outgoing=outgoing.hold_for if outgoing is not None else None,
            notify_outbox=self._notify_outbox,  # a client wrote work for the scheduler
        )
        if saved.held and outgoing is not None:
            outgoing.held(uow, saved.held)
        if lifecycle is not None and decided:
            lifecycle.record(uow, decided, saved.versions)
        for change in changes:
            self._hold(uow, change.new.run_id, change.new, saved.versions[change.new.run_id])
            for listener in self.listeners:
                listener(change.new, change.commands)
        for observer in self.observers:
            observer.saved(uow, changes, saved)
        return states

    def _known_at(
        self,
        uow: UnitOfWork,
        run_id: str,
        version: int,
        known: Mapping[str, RunState] | None,
    ) -> RunState | None:
        """The run's state at ``version`` if known without reading it: given, written
        earlier in this transaction, or cached; None if it must be read."""
        if known is not None and run_id in known:
            return known[run_id]
        held = self._uncommitted.get(run_id)
        if held is not None:
            if held[2] is uow and held[1] == version:
                return held[0]  # written earlier in this same transaction
            del self._uncommitted[run_id]  # left by a transaction that rolled back
        cached = self._cache.get(run_id)
        if cached is not None and cached[1] == version:
            return cached[0]
        return None

    def _hold(self, uow: UnitOfWork, run_id: str, state: RunState, version: int) -> None:
        """Keep a saved state for this transaction; it joins the cache only once committed.

        Caching before commit would be wrong: after a rollback another scheduler may reach
        the same version of the run with different content.
        """
        self._uncommitted[run_id] = (state, version, uow)

        def promote() -> None:
            held = self._uncommitted.get(run_id)
            if held is not None and held[2] is uow:
                del self._uncommitted[run_id]
                self._remember(run_id, held[0], held[1])

        uow.after_commit(promote)

    def _remember(self, run_id: str, state: RunState, version: int) -> None:
        self._cache[run_id] = (state, version)
        self._cache.move_to_end(run_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def cached(self, run_id: str) -> RunState | None:
        """The last committed state this service saved for ``run_id``, if still cached."""
        entry = self._cache.get(run_id)
        return None if entry is None else entry[0]

    def forget(self, run_id: str) -> None:
        self._cache.pop(run_id, None)

    def load(self, run_id: str) -> RunState:
        with self.store.unit_of_work() as uow:
            return uow.load_run(run_id)

    def state_in(self, uow: UnitOfWork, run_id: str) -> RunState:
        """The run's last committed state known here, else as ``uow`` reads it."""
        cached = self._cache.get(run_id)
        return cached[0] if cached is not None else uow.load_run(run_id)
