"""Everything a run's page shows, read in one snapshot with the JSON API's own views.

The run document (:func:`~treadle.scheduler.service.run_document.stored_run_document`:
statuses, results, errors, inquiries, ``why``; secrets masked), the run graph
(:func:`~treadle.scheduler.service.run_graph.run_graph`), the variable context
(:func:`~treadle.scheduler.service.run_context.run_context`, masked), the workflow's
versions (for the link to the diff from the latest), the latest attempts on a time axis
(:mod:`.attempt_timeline`) and, for the task the page selects, its executions, a page of
its items and a page of its attempts with their input and captured output
(:func:`~treadle.scheduler.service.attempt_views.task_attempts`). Which run a user may see is
:func:`~treadle.api.workspaces.run_scope`'s call, as for the JSON API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from treadle.api.context import ApiContext
from treadle.api.ui.attempt_timeline import AttemptTimeline, read_timeline
from treadle.api.ui.dag_layout import Layout, lay_out
from treadle.api.workspaces import run_scope
from treadle.clientlib.versions import list_versions
from treadle.common.access import Principal
from treadle.common.errors import NotFound, TreadleError
from treadle.scheduler.service.attempt_views import task_attempts
from treadle.scheduler.service.run_context import run_context
from treadle.scheduler.service.run_document import item_page, stored_run_document
from treadle.scheduler.service.run_graph import run_graph

__all__ = ["ATTEMPTS_PER_PAGE", "ITEMS_PER_PAGE", "RunView", "TaskView", "read_run_view"]

#: Items of a with_items task shown per page.
ITEMS_PER_PAGE = 50
#: Attempts (each with its input and captured output) of the selected task per page.
ATTEMPTS_PER_PAGE = 10


@dataclass(frozen=True)
class TaskView:
    """The selected task: its node in the graph, its executions, a page of its items, and
    a page of its attempts with their input and captured output (``attempt_views``)."""

    name: str
    node: dict[str, Any]
    executions: list[dict[str, Any]]
    items: dict[str, Any] | None
    attempts: dict[str, Any] | None = None


@dataclass(frozen=True)
class RunView:
    """One run as its page shows it (see the module docstring)."""

    document: dict[str, Any]
    graph: dict[str, Any]
    layout: Layout
    variables: dict[str, Any]
    latest_version: int | None
    task: TaskView | None
    #: The run's latest attempts on one time axis.
    timeline: AttemptTimeline
    #: The run row's version when read: the live stream says when it moves on.
    row_version: int

    @property
    def outgoing(self) -> dict[str, list[dict[str, Any]]]:
        """Each task's transitions (the graph's edges by source)."""
        by_source: dict[str, list[dict[str, Any]]] = {}
        for edge in self.graph["edges"]:
            by_source.setdefault(edge["source"], []).append(edge)
        return by_source

    @property
    def pending_inquiries(self) -> list[dict[str, Any]]:
        return [i for i in self.document.get("inquiries", []) if i.get("status") == "pending"]


def read_run_view(
    context: ApiContext,
    principal: Principal,
    run_id: str,
    *,
    task: str | None = None,
    items_cursor: str | None = None,
    attempts_cursor: str | None = None,
) -> RunView:
    """The run ``run_id`` as ``principal`` may see it (NotFound otherwise)."""
    scope = run_scope(principal)
    with context.reading() as uow:
        document = stored_run_document(uow, run_id, workspace=scope.workspace)
        row = uow.run_status(run_id)
        graph = run_graph(uow, context.definitions, run_id)
        variables = run_context(uow, run_id)
        try:
            versions = list_versions(uow, document["workflow"], principal.workspace)
            latest = max((v.version for v in versions), default=None)
        except TreadleError:  # deleted since, or never published in this workspace
            latest = None
        selected = None
        if task is not None:
            nodes = {node["name"]: node for node in graph["nodes"]}
            if task not in nodes:
                raise NotFound(f"run {run_id} has no task '{task}'")
            executions = [t for t in document["tasks"] if t["name"] == task]
            items = None
            if nodes[task]["with_items"] and executions:
                items = item_page(uow, run_id, task, cursor=items_cursor, limit=ITEMS_PER_PAGE)
            tried = None
            if executions:
                tried = task_attempts(
                    uow, run_id, task, cursor=attempts_cursor, limit=ATTEMPTS_PER_PAGE
                )
            selected = TaskView(task, nodes[task], executions, items, tried)
        attempts = read_timeline(uow, run_id, context.clock())
    return RunView(
        document=document,
        graph=graph,
        layout=lay_out(graph),
        variables=variables,
        latest_version=latest,
        task=selected,
        timeline=attempts,
        row_version=row[0] if row is not None else 0,
    )
