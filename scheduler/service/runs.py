"""Apply events to runs: lock, load, ``decide``, save state and commands in one transaction.

This is the impure shell around the pure core, shared by the embedded runner and the
distributed scheduler. Events are applied in batches grouped by run, so a burst of worker
results costs one transaction, not one per result. States are cached in memory and reused
when the stored version still matches (another scheduler process may have moved the run).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from treadle.common.errors import DefinitionError, NotFound, ParameterError
from treadle.common.limits import Limits
from treadle.common.messages import Outcome, TaskResult
from treadle.common.params import resolve_parameters, secret_names
from treadle.common.redaction import without_secret_values
from treadle.common.spec import WorkflowSpec
from treadle.common.statuses import AttemptStatus, RunStatus
from treadle.scheduler.core.commands import (
    CancelChildRun,
    CancelTask,
    Command,
    CompleteRun,
    DispatchTask,
    PauseChildRun,
    ReportPausedToParent,
    ResumeChildRun,
    StartChildRun,
)
from treadle.scheduler.core.decide import decide
from treadle.scheduler.core.events import (
    CancelRequested,
    ChildRunPaused,
    CompensateRequested,
    Event,
    PauseRequested,
    ResumeRequested,
    RetryRequested,
    RunRequested,
    TaskFailed,
    TaskSucceeded,
    TaskTimedOut,
)
from treadle.scheduler.core.ids import parse_attempt_id
from treadle.scheduler.core.state import RunContext, RunState, initial_state
from treadle.scheduler.service.definitions import Definitions, PinnedDefinition
from treadle.scheduler.store import (
    AttemptOutcome,
    DuplicateRunError,
    OutboxEntry,
    RunChange,
    Store,
    UnitOfWork,
)

log = logging.getLogger("treadle.scheduler")

Clock = Callable[[], datetime]
INTERNAL_KINDS = frozenset(
    {"start_child", "notify_parent", "cancel_child", "pause_child", "resume_child", "child_paused"}
)
# Error types of a task whose child run could not start, by what stopped it.
_CHILD_START_ERRORS: dict[type[Exception], str] = {
    ParameterError: "InvalidInput",
    NotFound: "UnknownWorkflow",
    DefinitionError: "InvalidWorkflow",
}


#: Commands that become outbox rows for the scheduler's relay.
#: Commands that become outbox rows (the relay's work).
OUTBOX_COMMANDS = (
    DispatchTask,
    CancelTask,
    StartChildRun,
    CancelChildRun,
    PauseChildRun,
    ResumeChildRun,
    ReportPausedToParent,
    CompleteRun,
)


def new_run_id() -> str:
    return f"r-{uuid.uuid4().hex[:16]}"


def random_seed() -> int:
    return uuid.uuid4().int & 0x7FFF_FFFF


@dataclass(frozen=True)
class RunOptions:
    """Who starts a run and how: identity, idempotency, and the pinned inputs."""

    identity: Mapping[str, Any] | None = None
    idempotency_key: str | None = None
    trigger_event_id: str | None = None


@dataclass(frozen=True)
class AttemptEnding:
    """How an attempt ended (its row's new state) and the event to apply if it was open."""

    outcome: AttemptOutcome
    event: Event | None


def result_outcome(result: TaskResult) -> AttemptOutcome:
    """How a worker's result is recorded on its attempt row."""
    return AttemptOutcome(
        attempt_id=result.attempt_id,
        status=AttemptStatus(result.outcome.value),
        worker=result.worker,
        started_at=result.started_at,
        finished_at=result.finished_at,
        error=result.error.as_dict() if result.error else None,
    )


def result_event(result: TaskResult) -> Event:
    """The core event for a worker's result."""
    if result.outcome is Outcome.SUCCEEDED:
        return TaskSucceeded(attempt_id=result.attempt_id, result=result.result)
    error = result.error.as_dict() if result.error is not None else {}
    if result.outcome is Outcome.TIMED_OUT:
        return TaskTimedOut(attempt_id=result.attempt_id, error=error)
    return TaskFailed(attempt_id=result.attempt_id, error=error)


class RunService:
    """Starts runs and applies events to them through the core."""

    def __init__(
        self,
        store: Store,
        definitions: Definitions,
        *,
        clock: Clock,
        limits: Limits | None = None,
        queue_for: Callable[[DispatchTask], str] | None = None,
        run_ids: Callable[[], str] = new_run_id,
        seeds: Callable[[], int] = random_seed,
        cache_size: int = 2048,
        notify_outbox: bool = False,
    ) -> None:
        self.store = store
        self.definitions = definitions
        self.clock = clock
        self.limits = limits or Limits()
        self._queue_for = queue_for or (lambda _d: "treadle.tasks")
        self._run_ids = run_ids
        self._seeds = seeds
        self._cache: OrderedDict[str, tuple[RunState, int]] = OrderedDict()
        self._uncommitted: dict[str, tuple[RunState, int, UnitOfWork]] = {}
        self._cache_size = cache_size
        self._notify_outbox = notify_outbox
        self.listeners: list[Callable[[RunState, Sequence[Command]], None]] = []

    # -- starting ----------------------------------------------------------------------------

    def prepare_parameters(
        self, spec: WorkflowSpec, parameters: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Validated parameters with defaults; raises ParameterError and stores nothing.

        A problem with a ``secret`` parameter names the rule its value breaks, never the
        value: the message is printed by the CLI and kept in a parent task's error.
        """
        subject = f"parameters of '{spec.ref}'"
        try:
            return resolve_parameters(spec.parameters, parameters, subject=subject)
        except ParameterError as exc:
            if not any(p.secret for p in spec.parameters):
                raise
            problems = without_secret_values(exc.problems, spec.parameters, dict(parameters))
            raise ParameterError(problems, subject=subject) from None

    def start(
        self,
        spec: WorkflowSpec,
        parameters: Mapping[str, Any],
        options: RunOptions | None = None,
    ) -> str:
        """Validate parameters, publish the definition, create the run and start it."""
        self.prepare_parameters(spec, parameters)  # refuse bad parameters before publishing
        identity = (options.identity if options is not None else None) or {}
        author = str(identity.get("login") or "") or None  # who published this version
        pinned = self.definitions.publish(spec, at=self.clock(), author=author)
        return self.start_pinned(pinned, parameters, options)

    def start_pinned(
        self,
        pinned: PinnedDefinition,
        parameters: Mapping[str, Any],
        options: RunOptions | None = None,
    ) -> str:
        """Create and start a run of a published definition version.

        Parameters are checked first: a refused request stores nothing. Starting twice with
        one idempotency key returns the first run's id, even when both starts race.
        """
        options = options or RunOptions()
        spec = pinned.spec
        resolved = self.prepare_parameters(spec, parameters)
        now = self.clock()
        try:
            with self.store.unit_of_work() as uow:
                if options.idempotency_key is not None:
                    existing = uow.find_run_by_idempotency_key(options.idempotency_key)
                    if existing is not None:
                        return existing
                run_id = self._run_ids()
                state = initial_state(run_id, spec.ref, now, pinned.version)
                uow.insert_run(
                    state,
                    definition_version=pinned.version,
                    idempotency_key=options.idempotency_key,
                    trigger_event_id=options.trigger_event_id,
                )
                context = self._context(uow, spec, resolved, options.identity, depth=0)
                self._apply_to_run(
                    uow, run_id, [RunRequested(context=context)], now, known=(state, None)
                )
        except DuplicateRunError as exc:
            if exc.existing_run_id is None:
                raise
            return exc.existing_run_id
        return run_id

    def _context(
        self,
        uow: UnitOfWork,
        spec: WorkflowSpec,
        parameters: Mapping[str, Any],
        identity: Mapping[str, Any] | None,
        *,
        depth: int,
        parent_run_id: str | None = None,
        parent_attempt_id: str | None = None,
    ) -> RunContext:
        entries = uow.kv_list()
        secret_keys = tuple(f"keystore.{e.key}" for e in entries if e.secret)
        return RunContext(
            parameters=dict(parameters),
            config=self.definitions.pack_config(spec.pack, uow),
            keystore={e.key: e.value for e in entries},
            identity=dict(identity or {}),
            secrets=secret_names(spec.parameters) + secret_keys,
            seed=self._seeds(),
            limits=self.limits,
            depth=depth,
            parent_run_id=parent_run_id,
            parent_attempt_id=parent_attempt_id,
        )

    # -- applying events --------------------------------------------------------------------

    def apply(self, events: Sequence[tuple[str, Event]]) -> None:
        """Apply events (run id, event) in one transaction, grouped by run, in order."""
        if not events:
            return
        with self.store.unit_of_work() as uow:
            self.apply_in(uow, events)

    def apply_results(self, results: Iterable[TaskResult]) -> None:
        """Record worker results on their attempts and apply the fresh ones, in one transaction."""
        results = list(results)
        if results:
            with self.store.unit_of_work() as uow:
                self.apply_results_in(uow, results)

    def apply_results_in(self, uow: UnitOfWork, results: Sequence[TaskResult]) -> set[str]:
        """:meth:`apply_results` inside the caller's transaction; returns the fresh ids."""
        return self.settle_attempts(
            uow, [AttemptEnding(result_outcome(r), result_event(r)) for r in results]
        )

    def settle_attempts(self, uow: UnitOfWork, endings: Sequence[AttemptEnding]) -> set[str]:
        """Record how attempts ended and apply the events of those that were still open.

        The runs are locked before their attempt rows are touched: every transaction takes
        locks in that order (runs in id order, then attempts), so two schedulers cannot
        deadlock. An attempt that is unknown, already ended, or ended twice in this batch
        is recorded once and its event applied once. Returns the ids that were fresh.
        """
        known: list[tuple[str, AttemptEnding]] = []
        for ending in endings:
            ref = parse_attempt_id(ending.outcome.attempt_id)
            if ref is None:
                log.warning(
                    "ignoring an ending of %r: not an attempt id", ending.outcome.attempt_id
                )
                continue
            known.append((ref.run_id, ending))
        if not known:
            return set()
        uow.lock_runs(sorted({run_id for run_id, _ in known}))
        fresh = uow.record_results([ending.outcome for _, ending in known])
        applied = set(fresh)
        events: list[tuple[str, Event]] = []
        for run_id, ending in known:
            attempt = ending.outcome.attempt_id
            if attempt not in fresh:
                continue  # unknown, already ended, or a second copy in this batch
            fresh.discard(attempt)
            if ending.event is not None:
                events.append((run_id, ending.event))
        self.apply_in(uow, events)
        return applied

    def apply_in(self, uow: UnitOfWork, events: Sequence[tuple[str, Event]]) -> None:
        """Apply events (run id, event), in order per run, as one batch in ``uow``."""
        by_run: dict[str, list[Event]] = {}
        for run_id, event in events:
            by_run.setdefault(run_id, []).append(event)
        if by_run:
            self._apply_batch(uow, by_run, self.clock())

    def _apply_to_run(
        self,
        uow: UnitOfWork,
        run_id: str,
        events: Sequence[Event],
        now: datetime,
        *,
        known: tuple[RunState, int | None] | None = None,
    ) -> RunState:
        preset = {} if known is None else {run_id: known[0]}
        return self._apply_batch(uow, {run_id: events}, now, known=preset)[run_id]

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
        for run_id, events in by_run.items():
            state = self._state_at(uow, run_id, versions[run_id], known)
            old = state
            graph = self.definitions.pinned(state.workflow, state.definition_version, uow).graph
            commands: list[Command] = []
            logged: list[tuple[Event, datetime]] = []
            for event in events:
                decision = decide(state, event, graph, now)
                if decision.state is state and not decision.commands:
                    continue  # stale or duplicate: nothing changes, nothing is logged
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
        new_versions = uow.save_runs(changes, versions, queue_for=self._queue_for)
        wrote_outbox = False
        for change in changes:
            self._hold(uow, change.new.run_id, change.new, new_versions[change.new.run_id])
            wrote_outbox = wrote_outbox or any(
                isinstance(c, OUTBOX_COMMANDS) for c in change.commands
            )
            for listener in self.listeners:
                listener(change.new, change.commands)
        if self._notify_outbox and wrote_outbox:
            uow.notify_outbox()  # a client wrote work for the scheduler: wake it now
        return states

    def _state_at(
        self,
        uow: UnitOfWork,
        run_id: str,
        version: int,
        known: Mapping[str, RunState] | None,
    ) -> RunState:
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
        return uow.load_run(run_id)

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

    def control(self, run_id: str, *events: Event) -> RunState:
        """Apply operator events (pause, resume, retry, compensate...) to one run."""
        with self.store.unit_of_work() as uow:
            return self._apply_to_run(uow, run_id, list(events), self.clock())

    def pause(self, run_id: str) -> RunState:
        """Start nothing new; the run is ``paused`` once running attempts have finished."""
        return self.control(run_id, PauseRequested())

    def resume(self, run_id: str) -> RunState:
        return self.control(run_id, ResumeRequested())

    def retry(self, run_id: str) -> RunState:
        """Re-run what failed, timed out or was cancelled in an ended run."""
        return self.control(run_id, RetryRequested())

    def compensate(self, run_id: str, reason: str | None = None) -> RunState:
        """Undo the run's completed work (a run still going is cancelled first)."""
        return self.control(
            run_id,
            CancelRequested(reason=reason or "canceled to compensate"),
            CompensateRequested(),
        )

    def cancel(self, run_id: str, reason: str | None = None) -> RunState:
        """Cancel a run (and, through the outbox, its child runs); a no-op once it ended."""
        with self.store.unit_of_work() as uow:
            return self._cancel_in(uow, run_id, reason)

    def _cancel_in(self, uow: UnitOfWork, run_id: str, reason: str | None) -> RunState:
        return self._apply_to_run(uow, run_id, [CancelRequested(reason=reason)], self.clock())

    def cached(self, run_id: str) -> RunState | None:
        """The last committed state this service saved for ``run_id``, if still cached."""
        entry = self._cache.get(run_id)
        return None if entry is None else entry[0]

    def forget(self, run_id: str) -> None:
        self._cache.pop(run_id, None)

    def load(self, run_id: str) -> RunState:
        with self.store.unit_of_work() as uow:
            return uow.load_run(run_id)

    # -- child runs and parents (outbox entries the scheduler handles itself) --------------------

    def handle_internal(self, uow: UnitOfWork, entries: Sequence[OutboxEntry]) -> list[str]:
        """Carry out start_child / notify_parent / cancel_child; returns child runs started."""
        started: list[str] = []
        for entry in entries:
            payload = entry.payload
            if entry.kind == "start_child":
                child = self._start_child(uow, entry.run_id, payload)
                if child is not None:
                    started.append(child)
            elif entry.kind == "notify_parent":
                self._notify_parent(uow, payload)
            elif entry.kind in ("pause_child", "resume_child"):
                control: Event = (
                    PauseRequested() if entry.kind == "pause_child" else ResumeRequested()
                )
                with contextlib.suppress(NotFound):
                    self._apply_to_run(uow, str(payload["child_run_id"]), [control], self.clock())
            elif entry.kind == "child_paused":
                paused = ChildRunPaused(child_run_id=str(payload["child_run_id"]))
                with contextlib.suppress(NotFound):
                    self._apply_to_run(uow, str(payload["parent_run_id"]), [paused], self.clock())
            elif entry.kind == "cancel_child":
                # The outbox is relayed in order, so a child's start came first; a child
                # that never started (its start failed) has nothing to cancel.
                reason = f"its parent run {entry.run_id} canceled it"
                with contextlib.suppress(NotFound):
                    self._cancel_in(uow, str(payload["child_run_id"]), reason)
        return started

    def _start_child(
        self, uow: UnitOfWork, parent_run_id: str, payload: Mapping[str, Any]
    ) -> str | None:
        child_id = str(payload["child_run_id"])
        parent_attempt = str(payload["parent_attempt_id"])
        now = self.clock()
        try:
            uow.lock_run(child_id)
            return None  # already started (the outbox entry was delivered before)
        except NotFound:
            pass
        try:
            pinned = self.definitions.publish_ref(str(payload["workflow"]), at=now, uow=uow)
            parameters = self.prepare_parameters(pinned.spec, payload.get("parameters") or {})
        except (NotFound, ParameterError, DefinitionError) as exc:
            # The child cannot start: its task fails (and the outbox entry is done with),
            # rather than the error escaping and the entry being retried for ever.
            kind = next(k for cls, k in _CHILD_START_ERRORS.items() if isinstance(exc, cls))
            error = {"type": kind, "message": str(exc)}
            self._apply_to_run(
                uow, parent_run_id, [TaskFailed(attempt_id=parent_attempt, error=error)], now
            )
            return None
        state = initial_state(child_id, pinned.ref, now, pinned.version)
        uow.insert_run(state, definition_version=pinned.version)
        parent = self._state_of(uow, parent_run_id)
        context = self._context(
            uow,
            pinned.spec,
            parameters,
            parent.context.identity,
            depth=int(payload.get("depth", 1)),
            parent_run_id=parent_run_id,
            parent_attempt_id=parent_attempt,
        )
        self._apply_to_run(uow, child_id, [RunRequested(context=context)], now, known=(state, None))
        return child_id

    def _state_of(self, uow: UnitOfWork, run_id: str) -> RunState:
        cached = self._cache.get(run_id)
        return cached[0] if cached is not None else uow.load_run(run_id)

    def _notify_parent(self, uow: UnitOfWork, payload: Mapping[str, Any]) -> None:
        attempt = str(payload["parent_attempt_id"])
        ref = parse_attempt_id(attempt)
        if ref is None:
            return
        status = RunStatus(payload["status"])
        child = str(payload.get("run_id", ""))
        event: Event
        if status is RunStatus.SUCCEEDED:
            event = TaskSucceeded(attempt_id=attempt, result=payload.get("output"))
        else:
            error = payload.get("error") or {}
            detail = error.get("message") if isinstance(error, Mapping) else None
            message = f"child run {child} ended {status.value}" + (f": {detail}" if detail else "")
            failure = {"type": "ChildRunFailed", "message": message, "child_run": child}
            if status is RunStatus.TIMED_OUT:
                event = TaskTimedOut(attempt_id=attempt, error=failure)
            else:
                event = TaskFailed(attempt_id=attempt, error=failure)
        self._apply_to_run(uow, ref.run_id, [event], self.clock())
