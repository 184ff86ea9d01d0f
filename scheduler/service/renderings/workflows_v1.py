"""A run in the workflows/v1 run shape, and its lifecycle events in the v1 event shapes.

:func:`v1_run` gives ``{"run": {...}}`` as a v1 ``GetRun`` response does: the run's state
as ``WORKFLOW_STATE_*``, every step of the definition in order (``STEP_RUN_STATE_*``,
``PENDING`` until reached), the trigger, the input and the cost. :func:`v1_lifecycle_events`
replays the run and gives, in order, a run event (``{"operation", "recorded_at", "run"}``)
for each change of the run's status and a step event (``{"run_id", ..., "operation",
"recorded_at", "step"}``) for each change of a step's state, each showing the run as it was
at that moment.

Treadle has no workspaces, entities or agents of its own; those fields come from the
imported definition (``workspace_id``), the run's input (``entity_id``, ``entity_type``)
and the identity that started the run (``initiator_user_id``, ``initiator_agent_id``), and
are ``null`` when none says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from treadle.common.dialects.shared import V1_METADATA
from treadle.common.statuses import RunStatus
from treadle.scheduler.core.commands import Command, EmitLifecycleEvent, RunStatusChanged
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.core.state import RunState
from treadle.scheduler.service.renderings.history import StoredRun
from treadle.scheduler.service.renderings.v1_steps import RunFacts, StepRenderer, total_cost

RUN_STATES: Final = {
    RunStatus.PENDING: "PENDING",
    RunStatus.RUNNING: "RUNNING",
    RunStatus.PAUSING: "PAUSED",
    RunStatus.PAUSED: "PAUSED",
    RunStatus.CANCELED: "CANCELLED",
    RunStatus.SUCCEEDED: "COMPLETED",
    RunStatus.FAILED: "FAILED",
    RunStatus.TIMED_OUT: "FAILED",
    RunStatus.COMPENSATING: "COMPENSATING",
    RunStatus.COMPENSATED: "CANCELLED",
}
#: The operation of a run event, by the status the run moved to.
RUN_OPERATIONS: Final = {
    RunStatus.PAUSED: "paused",
    RunStatus.CANCELED: "cancelled",
    RunStatus.SUCCEEDED: "completed",
    RunStatus.FAILED: "failed",
    RunStatus.TIMED_OUT: "failed",
    RunStatus.COMPENSATING: "compensating",
    RunStatus.COMPENSATED: "compensated",
}
#: The operation of a step event, by the step's new state.
STEP_OPERATIONS: Final = {
    "STEP_RUN_STATE_RUNNING": "started",
    "STEP_RUN_STATE_WAITING": "waiting",
    "STEP_RUN_STATE_COMPLETED": "completed",
    "STEP_RUN_STATE_FAILED": "failed",
    "STEP_RUN_STATE_SKIPPED": "skipped",
    "STEP_RUN_STATE_CANCELLED": "cancelled",
    "STEP_RUN_STATE_COMPENSATED": "compensated",
}


class ChangeOf(StrEnum):
    """What a lifecycle event tells of a change of."""

    RUN = "run"
    STEP = "step"


@dataclass(frozen=True)
class V1LifecycleEvent:
    """One lifecycle event: of the run or of a step (``step_id``), its v1 ``operation``,
    when it happened and its payload in the v1 event shape."""

    of: ChangeOf
    operation: str
    at: datetime
    payload: dict[str, Any]
    step_id: str | None = None


def v1_run(run: StoredRun) -> dict[str, Any]:
    """The run as a workflows/v1 ``GetRun`` response: ``{"run": {...}}``."""
    return {"run": run_record(run, run.state)}


def run_record(run: RunFacts, state: RunState, status: RunStatus | None = None) -> dict[str, Any]:
    """The v1 run record of ``run`` as it was in ``state``.

    ``status`` is the run status to show when it is not the state's own: a run event
    reports the status the run moved to, even when the same decision moved it on again
    (a compensation with nothing to undo is ``COMPENSATING`` and ``COMPENSATED`` at once).
    """
    status = state.status if status is None else status
    record = _header(run, state, status)
    record["steps"] = StepRenderer(run, state).render()
    record["input_payload"] = dict(state.context.parameters)
    record["total_cost_usd"] = total_cost(state)
    record["started_at"] = iso(state.started_at)
    if state.finished_at is not None and status.is_terminal:
        record["completed_at"] = iso(state.finished_at)
    if state.error is not None:
        record["error"] = dict(state.error)
    return record


def v1_lifecycle_events(run: StoredRun) -> list[dict[str, Any]]:
    """Every lifecycle event of the run, in order, in the v1 event shapes."""
    events: list[dict[str, Any]] = []
    before: RunState | None = None
    for decision in run.decisions:
        events.extend(
            e.payload for e in decision_events(run, before, decision.state, decision.commands)
        )
        before = decision.state
    return events


def decision_events(
    run: RunFacts, before: RunState | None, state: RunState, commands: Sequence[Command]
) -> list[V1LifecycleEvent]:
    """The lifecycle events of one decision, which moved the run from ``before`` (None: the
    run's first decision) to ``state`` with ``commands``, each showing the run as it was.

    A run event for each change of the run's status the commands report; a step event
    for a step whose v1 state the decision changed (once per decision, whatever the
    number of its tasks that moved: a helper task belongs to the step it helps).
    """
    events: list[V1LifecycleEvent] = []
    status = RunStatus.PENDING if before is None else before.status  # as of the command
    started = status is not RunStatus.PENDING
    renderer: StepRenderer | None = None
    previous: StepRenderer | None = None
    emitted: set[str] = set()
    cost: float | None = None  # the run's, summed once per decision
    for command in commands:
        if isinstance(command, RunStatusChanged):
            status = command.status
            operation = RUN_OPERATIONS.get(command.status)
            if command.status is RunStatus.RUNNING:
                operation = "resumed" if started else "started"
                started = True
            if operation is not None:
                payload = {
                    "operation": operation,
                    "recorded_at": iso(command.at),
                    "run": run_record(run, state, command.status),
                }
                events.append(V1LifecycleEvent(ChangeOf.RUN, operation, command.at, payload))
        elif isinstance(command, EmitLifecycleEvent):
            renderer = renderer or StepRenderer(run, state)
            step = renderer.step_for_task(command.task)
            if step is None or step.id in emitted:
                continue
            entry = renderer.step(step)
            operation = STEP_OPERATIONS.get(entry["state"])
            if operation is None:
                continue
            if before is not None:
                previous = previous or StepRenderer(run, before)
                if previous.step(step)["state"] == entry["state"]:
                    continue
            emitted.add(step.id)
            cost = total_cost(state) if cost is None else cost
            payload = _step_event(run, state, command, entry, status=status, cost=cost)
            events.append(V1LifecycleEvent(ChangeOf.STEP, operation, command.at, payload, step.id))
    return events


def _step_event(
    run: RunFacts,
    state: RunState,
    command: EmitLifecycleEvent,
    step: dict[str, Any],
    *,
    status: RunStatus,
    cost: float,
) -> dict[str, Any]:
    operation = STEP_OPERATIONS[step["state"]]
    header = _header(run, state, status)
    return {
        "run_id": header["id"],
        "definition_id": header["definition_id"],
        "definition_version": header["definition_version"],
        "workspace_id": header["workspace_id"],
        "workflow_state": header["state"],
        "trigger_type": header["trigger_type"],
        "trigger_event_id": header["trigger_event_id"],
        "initiator_agent_id": header["initiator_agent_id"],
        "initiator_user_id": header["initiator_user_id"],
        "entity_id": header["entity_id"],
        "entity_type": header["entity_type"],
        "workflow_total_cost_usd": cost,
        "operation": operation,
        "recorded_at": iso(command.at),
        "step": step,
    }


def _header(run: RunFacts, state: RunState, status: RunStatus | None = None) -> dict[str, Any]:
    spec = run.pinned.spec
    imported = spec.metadata.get(V1_METADATA)
    version = _mapping(imported, "version")
    definition = _mapping(imported, "definition")
    trigger = _mapping(version, "trigger")
    parameters = state.context.parameters
    identity = state.context.identity
    entity_type = parameters.get("entity_type") or trigger.get("tap_entity_type")
    return {
        "id": state.run_id,
        "definition_id": version.get("definition_id") or spec.ref,
        "definition_version": run.pinned.version,
        "workspace_id": definition.get("workspace_id") or version.get("workspace_id"),
        "state": f"WORKFLOW_STATE_{RUN_STATES[state.status if status is None else status]}",
        "trigger_event_id": run.trigger_event_id,
        "trigger_type": _trigger_type(state, run.trigger_event_id, trigger),
        "initiator_agent_id": identity.get("agent_id"),
        "initiator_user_id": None if run.trigger_event_id else identity.get("login"),
        "entity_id": parameters.get("entity_id"),
        "entity_type": f"ENTITY_TYPE_{str(entity_type).upper()}" if entity_type else None,
    }


def _trigger_type(state: RunState, trigger_event_id: str | None, trigger: Mapping[str, Any]) -> str:
    if state.context.schedule:  # a schedule's fire started it (treadle beat)
        return "TRIGGER_TYPE_SCHEDULE"
    if trigger_event_id is None:
        return "TRIGGER_TYPE_MANUAL"
    written = trigger.get("trigger_type")
    return str(written) if written else "TRIGGER_TYPE_EVENT"


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    found = value.get(key) if isinstance(value, Mapping) else None
    return found if isinstance(found, Mapping) else {}
