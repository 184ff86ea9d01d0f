"""Why a run does not move: for each task that has not ended, what it waits for, in words.

"Stuck in queued or running" is the complaint users of every peer file most. Treadle
answers it from what it records: the run's state (retry and delay timers, joins, a pause,
inquiries, event waits, child runs) and the rows of what happens outside the run (its
open attempts, with their queue or worker; dispatches held back by a concurrency key or
a rate limit; the queues' lengths and consumers and the workers' last signs of life as
the scheduler last observed them; an emergency stop holding the run's workspace).
:func:`explain` is pure over those facts;
:func:`gather_facts` reads them in one unit of work. The run document carries the result
(``why``), ``treadle runs why ID`` says it in plain words.

With_items tasks are summarised: items sharing a reason are counted, with the oldest
``since``, so a run of thousands of items explains itself in a few lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from treadle.common.emergency_stop import EmergencyStop, holding
from treadle.common.graph import Graph
from treadle.common.statuses import AttemptStatus, InquiryPurpose, RunStatus, TaskStatus
from treadle.scheduler.core.ids import attempt_id
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.core.state import Execution, RunState, TimerKind, Unit
from treadle.scheduler.service.budget_views import budget_stop_message
from treadle.scheduler.store import AttemptEntry, InquiryEntry, UnitOfWork
from treadle.scheduler.store.event_repo import EventWaitEntry
from treadle.scheduler.store.flow_repo import FlowWait
from treadle.scheduler.store.observation_repo import QueueObservation, WorkerObservation

#: At most this many open attempts are read per explanation (the oldest): a with_items task
#: of thousands of items in flight is explained by its oldest ones.
OPEN_ATTEMPTS_READ = 500


#: Stands in for "no time" when ordering reasons (never reached: only dated ones are).
NEVER = datetime.max.replace(tzinfo=UTC)


class WaitReason(StrEnum):
    """What a task that has not ended waits for."""

    QUEUED = "queued"  # on the broker; no worker has started it
    RUNNING = "running"  # a worker runs it
    RETRY = "retry"  # its next attempt waits for the retry delay
    DELAYED = "delayed"  # its `delay` has not passed
    INQUIRY = "inquiry"  # a person's answer
    EVENT = "event"  # an outside event
    CHILD_RUN = "child_run"  # a child run to end
    PAUSED = "paused"  # the run to resume
    CONCURRENCY = "concurrency"  # a slot of a concurrency key
    RATE_LIMITED = "rate_limited"  # a rate limit's window
    ITEMS_CAP = "items_cap"  # the with_items task's own `concurrency`
    JOIN = "join"  # the other inbound transitions of a join
    STARTING = "starting"  # decided, about to leave the scheduler
    EMERGENCY_STOP = "emergency_stop"  # an emergency stop to be lifted
    BUDGET = "budget"  # the run's budget stopped it (a higher limit, or an answer)


@dataclass(frozen=True)
class Reason:
    """One reason some of a task (the task, or ``count`` of its items) has not ended."""

    task: str
    reason: WaitReason
    message: str
    execution: int | None = None
    since: datetime | None = None
    count: int = 1
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "execution": self.execution,
            "reason": self.reason.value,
            "message": self.message,
            "count": self.count,
            "since": iso(self.since),
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class StoredFacts:
    """What the store knows about a run's waiting work, read once (see :func:`gather_facts`)."""

    attempts: Mapping[str, AttemptEntry] = field(default_factory=dict)
    flow_waits: Mapping[str, FlowWait] = field(default_factory=dict)
    inquiries: Mapping[str, InquiryEntry] = field(default_factory=dict)
    event_waits: Mapping[str, EventWaitEntry] = field(default_factory=dict)
    child_status: Mapping[str, RunStatus] = field(default_factory=dict)
    #: ``scope:task`` of each pending join -> the tasks whose transitions have not come.
    join_missing: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    queues: Mapping[str, QueueObservation] = field(default_factory=dict)
    workers: Mapping[str, WorkerObservation] = field(default_factory=dict)
    #: The emergency stop holding the run's workspace, and whether it paused this run.
    emergency_stop: EmergencyStop | None = None
    stopped_run: bool = False


def explain(state: RunState, facts: StoredFacts) -> list[Reason]:
    """Every reason the run's unfinished tasks wait, in execution order; ``[]`` once ended."""
    if state.status.is_terminal:
        return []
    reasons: list[Reason] = []
    for execution_id in sorted(state.executions):
        execution = state.executions[execution_id]
        if not execution.status.is_terminal:
            reasons.extend(_grouped(_execution_reasons(state, execution, facts)))
    reasons.extend(_not_started(state, facts))
    stopped = budget_stop_message(state)
    if stopped is not None and state.budget is not None and state.budget.stop is not None:
        stop = state.budget.stop
        details = {"kind": stop.kind.value, "soft": stop.soft, "inquiry": stop.inquiry_id}
        reasons.insert(0, Reason("", WaitReason.BUDGET, stopped, None, None, 1, details))
    if facts.emergency_stop is not None:
        return _held_by_stop(reasons, facts.emergency_stop, paused_it=facts.stopped_run)
    return reasons


def _held_by_stop(reasons: list[Reason], stop: EmergencyStop, *, paused_it: bool) -> list[Reason]:
    """While an emergency stop holds the run, what waits to start (or, in a run the stop
    paused, to resume) waits for the stop to be lifted."""
    held = {WaitReason.QUEUED, WaitReason.STARTING} | ({WaitReason.PAUSED} if paused_it else set())
    details = {"scope": stop.label, "reason": stop.reason, "set_by": stop.set_by}
    told: set[tuple[str, int | None]] = set()  # one stop reason per execution
    kept: list[Reason] = []
    for reason in reasons:
        if reason.reason not in held:
            kept.append(reason)
        elif (reason.task, reason.execution) not in told:
            told.add((reason.task, reason.execution))
            items = f"{reason.count} items: " if reason.count > 1 else ""
            kept.append(
                replace(
                    reason,
                    reason=WaitReason.EMERGENCY_STOP,
                    message=f"{items}held by the {stop.describe()}",
                    since=stop.since,
                    details={**details, "since": iso(stop.since)},
                )
            )
    return kept


def _execution_reasons(
    state: RunState, execution: Execution, facts: StoredFacts
) -> Iterable[Reason]:
    task, eid = execution.task, execution.id
    timer = state.timers.get(execution.timer) if execution.timer else None
    if execution.status is TaskStatus.SCHEDULED:
        if state.deferred and state.status in (RunStatus.PAUSING, RunStatus.PAUSED):
            yield Reason(task, WaitReason.PAUSED, "paused: waits for the run to resume", eid)
        elif timer is not None and timer.kind is TimerKind.DELAY:
            message = f"waits for its delay until {iso(timer.fire_at)}"
            yield Reason(task, WaitReason.DELAYED, message, eid, timer.fire_at)
        else:
            yield Reason(task, WaitReason.STARTING, "starting", eid)
        return
    if execution.inquiry_id is not None or execution.waits_for is not None:
        yield from _wait_reason(task, eid, execution.inquiry_id, execution.waits_for, facts)
        return
    if state.status in (RunStatus.PAUSING, RunStatus.PAUSED) and any(
        d.execution == eid for d in state.deferred
    ):
        yield Reason(task, WaitReason.PAUSED, "paused: its next work waits for the resume", eid)
    for position, unit in enumerate(execution.units):
        if not unit.status.is_terminal:
            yield _unit_reason(state, execution, position, unit, facts)


def _unit_reason(
    state: RunState,
    execution: Execution,
    position: int,
    unit: Unit,
    facts: StoredFacts,
) -> Reason:
    task, eid = execution.task, execution.id
    if unit.child_run_id is not None:
        status = facts.child_status.get(unit.child_run_id)
        shown = "not started yet" if status is None else status.value
        message = f"waits for child run {unit.child_run_id} ({shown})"
        return Reason(task, WaitReason.CHILD_RUN, message, eid, unit.started_at)
    if unit.inquiry_id is not None or unit.waits_for is not None:
        return next(iter(_wait_reason(task, eid, unit.inquiry_id, unit.waits_for, facts)))
    current = attempt_id(state.run_id, eid, position, unit.attempt)
    held = facts.flow_waits.get(current)
    if held is not None:
        return _flow_reason(task, eid, held)
    attempt = facts.attempts.get(current)
    if attempt is not None:
        return _attempt_reason(task, eid, attempt, facts)
    timer = state.timers.get(unit.timer) if unit.timer else None
    if timer is not None and timer.kind is TimerKind.RETRY:
        message = f"waits for a retry at {iso(timer.fire_at)} (attempt {unit.attempt + 1})"
        return Reason(task, WaitReason.RETRY, message, eid, timer.fire_at)
    if unit.status is TaskStatus.SCHEDULED and execution.with_items:
        message = f"waits for the task's own concurrency ({execution.in_flight} in flight)"
        return Reason(task, WaitReason.ITEMS_CAP, message, eid)
    return Reason(task, WaitReason.STARTING, "starting", eid, unit.started_at)


def _attempt_reason(task: str, eid: int, attempt: AttemptEntry, facts: StoredFacts) -> Reason:
    if attempt.status is AttemptStatus.RUNNING:
        worker = attempt.worker or "a worker"
        message = f"running on {worker} since {iso(attempt.started_at)}"
        details: dict[str, Any] = {"worker": attempt.worker, "attempt": attempt.attempt_id}
        seen = facts.workers.get(attempt.worker or "")
        if seen is not None:
            message += f"; last heard from at {iso(seen.last_seen)}"
            details["last_seen"] = iso(seen.last_seen)
        return Reason(task, WaitReason.RUNNING, message, eid, attempt.started_at, 1, details)
    queue = attempt.queue or "the default queue"
    message = f"queued on '{queue}' since {iso(attempt.dispatched_at)}: no worker has taken it yet"
    details = {"queue": attempt.queue, "attempt": attempt.attempt_id}
    observed = facts.queues.get(attempt.queue or "")
    if observed is not None:
        details.update(messages=observed.messages, consumers=observed.consumers)
        if observed.consumers == 0:
            message += f"; nothing consumes '{queue}' (no worker listens to it)"
        else:
            message += (
                f"; '{queue}' holds {observed.messages} messages for {observed.consumers} consumers"
            )
    return Reason(task, WaitReason.QUEUED, message, eid, attempt.dispatched_at, 1, details)


def _flow_reason(task: str, eid: int, held: FlowWait) -> Reason:
    if held.until is not None:
        message = f"rate limited until {iso(held.until)} ({held.reason})"
        details: dict[str, Any] = {"key": held.key, "until": iso(held.until)}
        return Reason(task, WaitReason.RATE_LIMITED, message, eid, held.since, 1, details)
    message = held.reason
    if held.holders:
        message += f"; held by {', '.join(held.holders)}"
    details = {"key": held.key, "held_by": list(held.holders)}
    return Reason(task, WaitReason.CONCURRENCY, message, eid, held.since, 1, details)


def _wait_reason(
    task: str,
    eid: int,
    inquiry_id: str | None,
    waits_for: Mapping[str, Any] | None,
    facts: StoredFacts,
) -> Iterable[Reason]:
    if inquiry_id is not None:
        inquiry = facts.inquiries.get(inquiry_id)
        assigned = None if inquiry is None else inquiry.assigned_to
        message = f"waits for inquiry {inquiry_id}" + (
            f" (assigned to {assigned})" if assigned else ""
        )
        if inquiry is not None and inquiry.purpose is InquiryPurpose.ESCALATION:
            message = "failed and escalated: " + message + " to retry, skip or fail it"
        since = None if inquiry is None else inquiry.created_at
        yield Reason(task, WaitReason.INQUIRY, message, eid, since, 1, {"inquiry": inquiry_id})
        return
    wanted = dict(waits_for or {})
    since = min(
        (w.created_at for w in facts.event_waits.values() if w.event_type == wanted.get("type")),
        default=None,
    )
    subject = f" (subject {wanted['subject']})" if wanted.get("subject") else ""
    message = f"waits for an event of type '{wanted.get('type')}'{subject}"
    if since is not None:
        message += f" since {iso(since)}"
    yield Reason(task, WaitReason.EVENT, message, eid, since, 1, {"event": wanted})


def _not_started(state: RunState, facts: StoredFacts) -> Iterable[Reason]:
    """Tasks with no execution yet: joins waiting for their other inbound transitions, and
    starts a pause holds back."""
    for key in sorted(state.joins):
        task = key.rsplit(":", 1)[-1]
        missing = facts.join_missing.get(key, ())
        message = (
            f"a join waiting on {_names(missing)}"
            if missing
            else f"a join waiting for more inbound transitions ({len(state.joins[key])} arrived)"
        )
        yield Reason(task, WaitReason.JOIN, message, None, None, 1, {"waiting_on": list(missing)})
    if state.status in (RunStatus.PAUSING, RunStatus.PAUSED):
        for deferred in state.deferred:
            if deferred.task and deferred.execution == 0:
                message = "paused: starts when the run resumes"
                yield Reason(deferred.task, WaitReason.PAUSED, message)


def _grouped(reasons: Iterable[Reason]) -> list[Reason]:
    """Items sharing a reason kind and execution become one reason, counted, oldest first."""
    groups: dict[tuple[int | None, WaitReason], list[Reason]] = {}
    for reason in reasons:
        groups.setdefault((reason.execution, reason.reason), []).append(reason)
    merged: list[Reason] = []
    for members in groups.values():
        if len(members) == 1:
            merged.append(members[0])
            continue
        dated = [r for r in members if r.since is not None]
        oldest = min(dated, key=lambda r: r.since or NEVER) if dated else members[0]
        first = members[0]
        merged.append(
            Reason(
                first.task,
                first.reason,
                f"{len(members)} items: {oldest.message}",
                first.execution,
                oldest.since,
                len(members),
                oldest.details,
            )
        )
    return merged


def _names(tasks: Iterable[str]) -> str:
    quoted = [f"'{t}'" for t in tasks]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def gather_facts(
    uow: UnitOfWork,
    state: RunState,
    graph_of: Callable[[], Graph | None] | None = None,
    inquiries: Iterable[InquiryEntry] | None = None,
) -> StoredFacts:
    """The stored facts :func:`explain` needs, for a run not ended (a handful of queries).

    ``inquiries``: the run's, when the caller has read them already."""
    run_id = state.run_id
    attempts = {a.attempt_id: a for a in uow.open_attempts(run_id, limit=OPEN_ATTEMPTS_READ)}
    children = [
        unit.child_run_id
        for execution in state.executions.values()
        if not execution.status.is_terminal
        for unit in execution.units
        if unit.child_run_id is not None and not unit.status.is_terminal
    ]
    join_missing: dict[str, tuple[str, ...]] = {}
    graph = graph_of() if (state.joins and graph_of is not None) else None
    if graph is not None:
        for key, arrived in state.joins.items():
            target = key.rsplit(":", 1)[-1]
            join_missing[key] = tuple(
                edge.source
                for edge in graph.edges
                if edge.target == target and edge.id not in arrived
            )
    queues = {a.queue for a in attempts.values() if a.queue and a.status is AttemptStatus.QUEUED}
    stop = holding(uow.emergency_stops(), state.workspace)
    workers = {a.worker for a in attempts.values() if a.worker}
    return StoredFacts(
        attempts=attempts,
        flow_waits=uow.flow_waits([run_id]),
        inquiries={
            i.id: i for i in (uow.list_inquiries(run_id=run_id) if inquiries is None else inquiries)
        },
        event_waits={w.wait_id: w for w in uow.list_event_waits(run_id=run_id)},
        child_status=uow.run_statuses(children) if children else {},
        join_missing=join_missing,
        queues=uow.queue_observations(sorted(queues)) if queues else {},
        workers=uow.worker_observations(sorted(workers)) if workers else {},
        emergency_stop=stop,
        stopped_run=stop is not None and uow.stopped_by(run_id) is not None,
    )
