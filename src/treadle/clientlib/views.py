"""What the client returns about a run: typed, read-only views of the run document.

The run document (``treadle run --json``, ``treadle runs show``) is the one description of a
run users see; these models give applications the same content with real types (statuses
as enums, times as ``datetime``) instead of a dict to dig through. They are snapshots:
call :meth:`treadle.Client.get` again for news.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from treadle.common.errors import NotFound
from treadle.common.statuses import InquiryStatus, RunStatus, TaskStatus


class _ClientView(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class ItemInfo(_ClientView):
    """One item (or batch) of a ``with_items`` task."""

    index: int | None
    item: Any = None
    status: TaskStatus
    attempts: int = 0
    result: Any = None
    error: dict[str, Any] | None = None
    child_run: str | None = None


class ItemSummaryInfo(_ClientView):
    """How the items of a with_items task stand: counts by status, the first failures."""

    total: int
    by_status: dict[TaskStatus, int] = Field(default_factory=dict)
    first_failures: tuple[ItemInfo, ...] = ()


class ItemPage(_ClientView):
    """One page of a task's items (:meth:`treadle.Client.items`); ``next_cursor`` pages on."""

    run: str
    task: str
    execution: int
    items: tuple[ItemInfo, ...] = ()
    next_cursor: str | None = None


class TaskInfo(_ClientView):
    """One execution of a task (a task in a loop has one per pass).

    A with_items task has ``items_summary``; ``items`` only when they were asked for.
    """

    name: str
    execution: int | None = None
    status: TaskStatus
    attempts: int = 0
    result: Any = None
    error: dict[str, Any] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    items_summary: ItemSummaryInfo | None = None
    items: tuple[ItemInfo, ...] | None = None
    child_run: str | None = None
    parallel: str | None = None
    inquiry: str | None = None
    compensates: int | None = None


class InquiryInfo(_ClientView):
    """A question the run put to a person; answer it with ``treadle inquiry respond``."""

    id: str
    #: ``None`` for a run-level inquiry (the run's budget asks).
    task: str | None = None
    #: ``task``, ``escalation`` or ``budget`` (``docs/governance.md``).
    purpose: str = "task"
    status: InquiryStatus
    prompt: Any = None
    response_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    assigned_to: Any = None


class FlowWaitInfo(_ClientView):
    """A dispatch held back by a concurrency key or a rate limit, and why
    (``docs/flow-control.md``)."""

    task: str | None = None
    attempt: str
    reason: str
    since: datetime | None = None
    priority: int | None = None


class RunInfo(_ClientView):
    """A run as the run document describes it (secret parameter values appear as ``***``)."""

    document_version: int = 1
    id: str
    workflow: str
    version: int | None = None
    status: RunStatus
    parameters: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    error: dict[str, Any] | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    parent_run: str | None = None
    #: The run's seed: the same seed and the same results give the same decisions.
    seed: int | None = None
    tasks: tuple[TaskInfo, ...] = ()
    inquiries: tuple[InquiryInfo, ...] = ()
    held_back: tuple[str, ...] = ()
    compensation_pending: tuple[str, ...] = ()
    flow_waits: tuple[FlowWaitInfo, ...] = ()
    #: ``{limits, spent, stopped}`` for a run with a budget (``docs/governance.md``).
    budget: dict[str, Any] | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> RunInfo:
        return cls.model_validate(dict(document))

    @property
    def succeeded(self) -> bool:
        return self.status is RunStatus.SUCCEEDED

    @property
    def ended(self) -> bool:
        """Whether the run reached a final status (succeeded, failed, timed out, canceled...)."""
        return self.status.is_terminal

    @property
    def pending_inquiries(self) -> tuple[InquiryInfo, ...]:
        """Questions still waiting for an answer."""
        return tuple(i for i in self.inquiries if i.status is InquiryStatus.PENDING)

    def task(self, name: str) -> TaskInfo:
        """The latest execution of task ``name``; NotFound if it has not started."""
        for info in reversed(self.tasks):
            if info.name == name:
                return info
        raise NotFound(f"run {self.id} has no execution of task '{name}'")
