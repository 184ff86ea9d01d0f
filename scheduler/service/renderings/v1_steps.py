"""The steps of a run in the workflows/v1 vocabulary (``STEP_RUN_STATE_*``, typed steps).

A v1 step is one task of the imported definition, sometimes with a helper next to it (the
approval a governance check may require, the failure of a rejected approval, the
compensation that undid it). :func:`render_steps` folds those back into the one step the
v1 author wrote, in definition order, with what a v1 run record shows: state, output, the
approval request, the governance decision, the awaited event, input and cost.

Runs of definitions written in another dialect render too: each top-level task is a step
whose type follows from what it does (an action, a question, an event wait, a parallel
block).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from treadle.common.budget import result_cost_usd
from treadle.common.dialects.shared import APPROVAL_SUFFIX, REJECTED_SUFFIX, V1_METADATA
from treadle.common.graph import COMPENSATION_SUFFIX, Graph, NodeKind
from treadle.common.messages import TaskDispatch
from treadle.common.spec import WorkflowSpec
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.core.state import Execution, RunState
from treadle.scheduler.service.definitions import PinnedDefinition

STEP_STATES: Final = {
    TaskStatus.SCHEDULED: "PENDING",
    TaskStatus.RUNNING: "RUNNING",
    TaskStatus.WAITING: "WAITING",
    TaskStatus.SUCCEEDED: "COMPLETED",
    TaskStatus.FAILED: "FAILED",
    TaskStatus.TIMED_OUT: "FAILED",
    TaskStatus.CANCELED: "CANCELLED",
    TaskStatus.SKIPPED: "SKIPPED",
    TaskStatus.COMPENSATED: "COMPENSATED",
}
DECISIONS: Final = {
    "allow": "ACTION_DECISION_ALLOW",
    "require_approval": "ACTION_DECISION_REQUIRE_APPROVAL",
}
DENIED: Final = "ACTION_DECISION_DENY"
_KIND_TYPES: Final = {
    NodeKind.ACTION: "AGENT_ACTION",
    NodeKind.WORKFLOW: "AGENT_ACTION",
    NodeKind.INQUIRY: "HUMAN_TASK",
    NodeKind.EVENT: "WAIT_FOR_EVENT",
    NodeKind.PARALLEL: "PARALLEL",
}
#: Result keys that report what a step cost rather than what it produced.
COST_KEYS: Final = ("cost_usd", "cost_cents")


@dataclass(frozen=True)
class V1Step:
    """A step of the definition: its id, name, short type and written fields."""

    id: str
    name: str
    type: str
    data: Mapping[str, Any]


def definition_steps(spec: WorkflowSpec, graph: Graph) -> tuple[list[V1Step], set[str]]:
    """The steps of ``spec`` (compiled as ``graph``) in definition order, and the ids only
    used as compensations."""
    version = spec.metadata.get(V1_METADATA, {}).get("version")
    if isinstance(version, Mapping) and isinstance(version.get("steps"), list):
        steps = [
            V1Step(
                str(raw["id"]),
                str(raw.get("name") or raw["id"]),
                str(raw.get("step_type", "")).removeprefix("STEP_TYPE_"),
                raw,
            )
            for raw in version["steps"]
            if isinstance(raw, Mapping) and "id" in raw
        ]
        linked = {
            str(edge.get(key))
            for edge in version.get("edges") or ()
            if isinstance(edge, Mapping)
            for key in ("from_step_id", "to_step_id")
        }
        compensations = {
            str(step.data["compensation_step_id"])
            for step in steps
            if step.data.get("compensation_step_id")
        }
        return steps, {c for c in compensations if c not in linked}
    steps = [
        V1Step(name, name, _KIND_TYPES[node.kind], {})
        for name, node in graph.nodes.items()
        if node.scope is None and not node.hidden
    ]
    return steps, set()


@dataclass(frozen=True)
class StepLayout:
    """The steps of one definition version as v1 shows them, worked out once per version:
    in order, the ids only used as compensations, who each compensation undoes for, and
    each step by id."""

    steps: tuple[V1Step, ...]
    compensation_only: frozenset[str]
    compensator: Mapping[str, str]
    by_id: Mapping[str, V1Step]

    @classmethod
    def of(cls, pinned: PinnedDefinition) -> StepLayout:
        steps, compensation_only = definition_steps(pinned.spec, pinned.graph)
        compensator = {
            str(step.data["compensation_step_id"]): step.id
            for step in steps
            if step.data.get("compensation_step_id")
        }
        by_id: dict[str, V1Step] = {}
        for step in steps:
            by_id.setdefault(step.id, step)
        return cls(tuple(steps), frozenset(compensation_only), compensator, by_id)


class RunFacts(Protocol):
    """What the v1 renderings read of a run besides its state at the moment shown: the
    stored run replayed (:class:`~.history.StoredRun`), or a decision being saved
    (:mod:`treadle.scheduler.service.lifecycle_events.facts`)."""

    @property
    def pinned(self) -> PinnedDefinition: ...

    @property
    def trigger_event_id(self) -> str | None: ...

    @property
    def layout(self) -> StepLayout: ...

    def first_dispatch(self, execution: int) -> TaskDispatch | None:
        """The latest dispatch of the first unit of ``execution``, if it was dispatched."""
        ...

    def question_prompt(self, inquiry_id: str) -> Any:
        """The prompt of the inquiry ``inquiry_id`` asked (None if unknown)."""
        ...


def cost_of(result: Any) -> float:
    """What a result says it cost, in USD (``cost_usd``, or ``cost_cents`` / 100), as the
    budgets count it (:func:`~treadle.common.budget.result_cost_usd`)."""
    return result_cost_usd(result)


def without_cost(result: Any) -> Any:
    if isinstance(result, Mapping):
        return {k: v for k, v in result.items() if k not in COST_KEYS}
    return result


class StepRenderer:
    """Renders the steps of one run at one moment (``state``)."""

    def __init__(self, run: RunFacts, state: RunState) -> None:
        self.run = run
        self.state = state
        layout = run.layout
        self.steps = layout.steps
        self.compensation_only = layout.compensation_only
        self.compensator = layout.compensator
        self._by_id = layout.by_id

    def render(self) -> list[dict[str, Any]]:
        """Every step in definition order; compensation-only steps once they have run."""
        out: list[dict[str, Any]] = []
        for step in self.steps:
            if step.id in self.compensation_only:
                entry = self._compensation_step(step)
                if entry is not None:
                    out.append(entry)
                continue
            out.append(self.step(step))
        return out

    def step_for_task(self, task: str) -> V1Step | None:
        """The step a task belongs to (a helper task belongs to the step it helps)."""
        for suffix in (APPROVAL_SUFFIX, REJECTED_SUFFIX):
            task = task.removesuffix(suffix)
        if task.endswith(COMPENSATION_SUFFIX):
            undone = task.removesuffix(COMPENSATION_SUFFIX)
            owner = self._by_id.get(undone)
            target = None if owner is None else owner.data.get("compensation_step_id")
            task = str(target) if target else undone
        return self._by_id.get(task)

    def step(self, step: V1Step) -> dict[str, Any]:
        if step.id in self.compensation_only:
            return self._compensation_step(step) or self._base(step, "PENDING")
        execution = self.state.latest_execution(step.id)
        if execution is None:
            return self._base(step, self._unreached())
        entry = self._base(step, STEP_STATES[execution.status])
        entry["started_at"] = iso(execution.started_at)
        if execution.finished_at is not None:
            entry["completed_at"] = iso(execution.finished_at)
        kind = step.type
        if kind == "AGENT_ACTION":
            self._agent(entry, execution)
        elif kind in ("APPROVAL_GATE", "HUMAN_TASK"):
            self._question(entry, execution, approval=kind == "APPROVAL_GATE")
        elif kind == "GOVERNANCE_CHECK":
            self._governance(entry, step, execution)
        elif kind == "WAIT_FOR_EVENT":
            self._event(entry, execution)
        elif execution.status is TaskStatus.SUCCEEDED and execution.result is not None:
            entry["output_payload"] = without_cost(execution.result)
        return entry

    # -- parts ---------------------------------------------------------------------------------

    def _base(self, step: V1Step, state: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "step_id": step.id,
            "step_name": step.name,
            "step_type": f"STEP_TYPE_{step.type}",
            "state": f"STEP_RUN_STATE_{state}",
        }
        if step.type == "AGENT_ACTION" or step.data.get("agent_id"):
            entry["agent_id"] = step.data.get("agent_id")
        return entry

    def _unreached(self) -> str:
        """A step the run never reached: ``PENDING`` while the run may still reach it, then
        ``CANCELLED`` if the run was cancelled (also when it was compensated afterwards: a
        running run is cancelled before it is compensated), else ``SKIPPED``."""
        state = self.state
        if not state.status.is_terminal and state.status is not RunStatus.COMPENSATING:
            return "PENDING"
        cancelled = state.status is RunStatus.CANCELED or (
            state.error is not None and state.error.get("type") == "Canceled"
        )
        return "CANCELLED" if cancelled else "SKIPPED"

    def _agent(self, entry: dict[str, Any], execution: Execution) -> None:
        dispatch = self.run.first_dispatch(execution.id)
        if dispatch is not None:
            given = dict(dispatch.input)
            entry["input_payload"] = given.get("payload", given)
            entry["objective_id"] = dispatch.attempt_id
        if execution.status in (TaskStatus.SUCCEEDED, TaskStatus.COMPENSATED):
            entry["output_payload"] = without_cost(execution.result)
        cost = cost_of(execution.result)
        if cost:
            entry["cost_usd"] = cost

    def _question(self, entry: dict[str, Any], execution: Execution, *, approval: bool) -> None:
        if execution.inquiry_id is not None:
            entry["approval_request_id"] = execution.inquiry_id
            prompt = self.run.question_prompt(execution.inquiry_id)
            if isinstance(prompt, Mapping) and "payload" in prompt:
                entry["input_payload"] = prompt["payload"]
        if execution.status is TaskStatus.SUCCEEDED:
            result = execution.result if isinstance(execution.result, Mapping) else {}
            entry["output_payload"] = result.get("response", result)
            if approval and not result.get("approved"):
                entry["state"] = "STEP_RUN_STATE_FAILED"

    def _governance(self, entry: dict[str, Any], step: V1Step, execution: Execution) -> None:
        result = execution.result if isinstance(execution.result, Mapping) else {}
        dispatch = self.run.first_dispatch(execution.id)
        if dispatch is not None:
            entry["input_payload"] = dict(dispatch.input)
        if execution.status.is_unsuccessful:
            error = execution.error or {}
            if error.get("type") == "PolicyDenied":
                entry["governance_decision"] = DENIED
            return
        decision = result.get("decision")
        if decision in DECISIONS:
            entry["governance_decision"] = DECISIONS[decision]
        if decision != "require_approval" or execution.status is not TaskStatus.SUCCEEDED:
            return
        approval = self.state.latest_execution(step.id + APPROVAL_SUFFIX)
        entry.pop("completed_at", None)
        if approval is None:
            entry["state"] = "STEP_RUN_STATE_RUNNING"
            return
        if approval.inquiry_id is not None:
            entry["approval_request_id"] = approval.inquiry_id
        answer = approval.result if isinstance(approval.result, Mapping) else {}
        state = STEP_STATES[approval.status]
        if approval.status is TaskStatus.SUCCEEDED and not answer.get("approved"):
            state = "FAILED"
        entry["state"] = f"STEP_RUN_STATE_{state}"
        if approval.finished_at is not None:
            entry["completed_at"] = iso(approval.finished_at)

    def _event(self, entry: dict[str, Any], execution: Execution) -> None:
        result = execution.result
        if execution.status is TaskStatus.SUCCEEDED and isinstance(result, Mapping):
            entry["event_id"] = result.get("id")
            entry["output_payload"] = result.get("data")

    def _compensation_step(self, step: V1Step) -> dict[str, Any] | None:
        owner = self.compensator.get(step.id)
        undo = None if owner is None else self.state.latest_execution(owner + COMPENSATION_SUFFIX)
        if undo is None:
            return None
        entry = self._base(step, STEP_STATES[undo.status])
        entry["started_at"] = iso(undo.started_at)
        if undo.finished_at is not None:
            entry["completed_at"] = iso(undo.finished_at)
        if undo.status is TaskStatus.SUCCEEDED and undo.result is not None:
            entry["output_payload"] = without_cost(undo.result)
        return entry


def total_cost(state: RunState) -> float:
    """What every execution of the run says it cost, in USD."""
    return round(sum(cost_of(e.result) for e in state.executions.values()), 6)
