"""The bodies of the runs routes, as the OpenAPI document describes them.

A run is shown as the run document (``treadle runs show``, :class:`treadle.Client`'s
``RunInfo``): the routes send the document itself and these models describe it, so the
API, the CLI and the client show a run the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from treadle.clientlib.views import ItemPage, RunInfo, TaskInfo
from treadle.common.statuses import RunStatus
from treadle.scheduler.store import RunSummary

__all__ = [
    "ControlRequest",
    "EventEntry",
    "EventPage",
    "ItemPage",
    "RunDocument",
    "RunList",
    "RunListItem",
    "TaskList",
]


class RunDocument(RunInfo):
    """A run: its status, parameters (secret ones as `***`), output, error and each task
    execution (with_items tasks summarised unless `items=true`), and its inquiries."""


class RunListItem(BaseModel):
    """One run of a listing."""

    id: str
    workflow: str
    status: RunStatus
    created_at: datetime | None
    finished_at: datetime | None
    parent_run: str | None

    @classmethod
    def of(cls, summary: RunSummary) -> RunListItem:
        return cls(
            id=summary.id,
            workflow=summary.workflow,
            status=summary.status,
            created_at=summary.created_at,
            finished_at=summary.finished_at,
            parent_run=summary.parent_run_id,
        )


class RunList(BaseModel):
    """A page of runs, newest first; pass `next_cursor` back as `cursor` for the next."""

    items: list[RunListItem]
    next_cursor: str | None = Field(description="The cursor of the next page; null after the last.")


class TaskList(BaseModel):
    """Every task execution of a run, in the order they started."""

    run: str
    tasks: list[TaskInfo]


class EventEntry(BaseModel):
    """One event of a run's log: what the scheduler was told, and when."""

    seq: int = Field(description="The event's place in the log, from 1.")
    kind: str = Field(description="What happened: run_requested, task_succeeded, ...")
    at: datetime = Field(description="When the scheduler was told.")
    recorded_at: datetime = Field(description="When it was stored.")
    data: dict[str, Any] = Field(description="The event's fields (secrets as `***`).")


class EventPage(BaseModel):
    """A page of a run's event log, oldest first; `next_cursor` pages on."""

    run: str
    items: list[EventEntry]
    next_cursor: str | None


class ControlRequest(BaseModel):
    """Why: kept in the run's event log and the audit log (a cancel's reason is the run's
    error)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1000)
    budget: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Resume only: new limits of the run's budget, set before it resumes "
            "(`{cost_usd, wall_time, attempts, items, soft_ratio, step_cost_usd}`, each "
            "optional; `wall_time` in seconds or as text such as `2h`). 422 for a bad or "
            "unknown limit, or one above the workspace's ceiling; 409 when the limit the run "
            "stopped on is not raised enough."
        ),
        examples=[{"cost_usd": 50}],
    )
    task: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description=(
            "Retry only: retry from this task. Only its latest execution runs again (its "
            "items that did not succeed, or its attempt), and the flow goes on from it; the "
            "run's other failures stay recorded (docs/lifecycle.md). 404 when the run's "
            "definition has no such task; 409 when its latest execution did not fail, time "
            "out or get canceled."
        ),
        examples=["deploy"],
    )
