"""The bodies of the run views: a run's graph, its variable context, a task's attempts, and
step transitions.

The graph, the context and the attempts are built by
:mod:`treadle.scheduler.service.run_graph`, :mod:`treadle.scheduler.service.run_context` and
:mod:`treadle.scheduler.service.attempt_views` (secrets masked there); these models
describe them in the OpenAPI document. A step transition answers the run document, as the
run controls do.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from treadle.common.graph import NodeKind
from treadle.common.messages import ActionOutput
from treadle.common.statuses import AttemptStatus, RunStatus, TaskStatus
from treadle.scheduler.service.step_transitions import StepTransition

__all__ = [
    "AttemptInfo",
    "AttemptPage",
    "ChildRunLink",
    "GraphEdge",
    "GraphNode",
    "ItemProgress",
    "ParallelGroup",
    "RunGraph",
    "StepTransitionRequest",
    "VariableContext",
]


class ItemProgress(BaseModel):
    """How far the items of a with_items task's latest execution are."""

    total: int
    done: int = Field(description="Items that have ended, whatever their status.")
    by_status: dict[TaskStatus, int]


class ChildRunLink(BaseModel):
    """A child run the task started, and where to read it."""

    id: str
    href: str = Field(description="The run's route: `/api/v1/runs/{id}`.")


class GraphNode(BaseModel):
    """A task of the definition, with the run's progress on it."""

    name: str
    kind: NodeKind = Field(description="How it runs: action, inquiry, event, workflow, parallel.")
    action: str | None = Field(description="Its action (null for a parallel task).")
    parallel: str | None = Field(description="The parallel task it is nested in, if any.")
    start: bool = Field(description="It starts its block (nothing transitions to it).")
    join: Literal["all"] | int | None = Field(
        description="How many inbound transitions it waits for (`all`); null: each starts it."
    )
    with_items: bool
    status: TaskStatus | None = Field(
        description="The status of its latest execution; null until it starts."
    )
    executions: int = Field(description="How often it started (a task in a loop: more than once).")
    items: ItemProgress | None = Field(description="with_items tasks: the items' progress.")
    child_runs: list[ChildRunLink] = Field(
        description="Child runs of its latest execution (a workflow task that is not with_items; "
        "list a with_items task's children with `GET /api/v1/runs?parent=`)."
    )
    inquiry: str | None = Field(description="The inquiry its latest execution asked, if any.")
    compensates: str | None = Field(
        description="For the hidden node that undoes a task (`<task>~compensate`): that task."
    )


class GraphEdge(BaseModel):
    """A transition from one task to another, with its condition."""

    id: int
    source: str
    target: str
    transition: int = Field(description="Which transition of `source` (from 0) it belongs to.")
    condition: str | None = Field(description="The transition's `when`; null: always.")
    publishes: list[str] = Field(description="Variables the transition publishes when it fires.")


class ParallelGroup(BaseModel):
    """A parallel task: the tasks nested in it, and those that start with it."""

    name: str
    tasks: list[str]
    entries: list[str]
    status: TaskStatus | None


class RunGraph(BaseModel):
    """A run's definition as a graph, with where the run stands on each task."""

    run: str
    workflow: str
    version: int | None
    status: RunStatus
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    parallel_groups: list[ParallelGroup]


class VariableContext(BaseModel):
    """What the run's templates read as `parameters.*` and `workflow.*` now."""

    run: str
    workflow: str
    status: RunStatus
    parameters: dict[str, Any] = Field(description="The run's parameters; secret ones `***`.")
    vars: dict[str, Any] = Field(description="The workflow variables, as last published.")
    secret_parameters: list[str] = Field(description="The names of the secret parameters.")


class AttemptInfo(BaseModel):
    """One attempt of a task: where and how it ran, what it was given, what it printed."""

    attempt_id: str
    execution: int = Field(description="The task execution it belongs to.")
    item: int | None = Field(description="The with_items item (or batch) it ran; else null.")
    attempt: int = Field(description="Its number among the attempts of its item, from 1.")
    action: str
    status: AttemptStatus
    queue: str | None
    worker: str | None
    dispatched_at: str | None
    started_at: str | None
    finished_at: str | None
    error: dict[str, Any] | None
    reason: str | None = Field(description="Why the scheduler, not a worker, ended it.")
    input: dict[str, Any] | None = Field(
        description="The rendered input it was dispatched with: secret references and the "
        "action's secret parameters as `***`; null when no dispatch is recorded."
    )
    output: ActionOutput | None = Field(
        description="What the action wrote to stdout and stderr (the last "
        "`TREADLE_CAPTURE_OUTPUT_BYTES` of each, secrets as `***`; `*_truncated`: earlier "
        "output was dropped); null when it printed nothing or capture was off."
    )


class AttemptPage(BaseModel):
    """A page of a task's attempts, by execution, item and attempt number."""

    run: str
    task: str
    attempts: list[AttemptInfo]
    next_cursor: str | None = Field(description="The cursor of the next page; null after the last.")


class StepTransitionRequest(BaseModel):
    """What to do with a waiting step: `complete` a task waiting on a person (answering its
    inquiry with `payload`), or `fail` a step that waits (on a person or an event) with a
    `reason`. `skip` is refused (409): Treadle skips only tasks whose `when` is false."""

    model_config = ConfigDict(extra="forbid")

    transition: StepTransition
    payload: Any = Field(
        default=None, description="`complete`: the answer, checked against the inquiry's schema."
    )
    reason: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="`fail` and `skip`: why (required); kept in the run's event log, the "
        "step's error and the audit log.",
    )
