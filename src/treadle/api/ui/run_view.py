"""Everything a run's page shows, read in one snapshot with the JSON API's own views.

The run document (:func:`~treadle.scheduler.service.run_document.stored_run_document`:
statuses, results, errors, inquiries, ``why``; secrets masked), the run graph
(:func:`~treadle.scheduler.service.run_graph.run_graph`), the variable context
(:func:`~treadle.scheduler.service.run_context.run_context`, masked), the workflow's
versions (for the link to the diff from the latest) and, for the task the page selects,
its executions and a page of its items. Which run a user may see is
:func:`~treadle.api.workspaces.run_scope`'s call, as for the JSON API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from treadle.api.context import ApiContext
from treadle.api.ui.dag_layout import Layout, lay_out
from treadle.api.workspaces import run_scope
from treadle.clientlib.versions import list_versions
from treadle.common.access import Principal
from treadle.common.errors import NotFound, TreadleError
from treadle.scheduler.service.run_context import run_context
from treadle.scheduler.service.run_document import item_page, stored_run_document
from treadle.scheduler.service.run_graph import run_graph

__all__ = ["ITEMS_PER_PAGE", "RunView", "TaskView", "read_run_view"]

#: Items of a with_items task shown per page.
ITEMS_PER_PAGE = 50


@dataclass(frozen=True)
class TaskView:
    """The selected task: its node in the graph, its executions, a page of its items."""

    name: str
    node: dict[str, Any]
    executions: list[dict[str, Any]]
    items: dict[str, Any] | None


@dataclass(frozen=True)
class RunView:
    """One run as its page shows it (see the module docstring)."""

    document: dict[str, Any]
    graph: dict[str, Any]
    layout: Layout
    variables: dict[str, Any]
    latest_version: int | None
    task: TaskView | None
    timeline: list[dict[str, Any]]
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


def _moment(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def timeline(tasks: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Each task execution as a bar: where it starts and how long it is, in percent of the
    run's span from the first start to the last end (or now)."""
    spans = []
    for task in tasks:
        start = _moment(task.get("started_at"))
        if start is None:
            continue
        end = _moment(task.get("finished_at"))
        spans.append((task, start, end))
    if not spans:
        return []
    first = min(start for _t, start, _e in spans)
    last = max([end or now for _t, _s, end in spans] + [first])
    total = max((last - first).total_seconds(), 0.001)
    bars = []
    for task, start, end in spans:
        offset = (start - first).total_seconds() / total * 100
        seconds = ((end or now) - start).total_seconds()
        bars.append(
            {
                "task": task,
                "offset": round(offset, 2),
                "width": round(max(seconds / total * 100, 0.5), 2),
                "seconds": round(seconds, 3),
                "running": end is None,
            }
        )
    return bars


def read_run_view(
    context: ApiContext,
    principal: Principal,
    run_id: str,
    *,
    task: str | None = None,
    items_cursor: str | None = None,
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
            selected = TaskView(task, nodes[task], executions, items)
    return RunView(
        document=document,
        graph=graph,
        layout=lay_out(graph),
        variables=variables,
        latest_version=latest,
        task=selected,
        timeline=timeline(document["tasks"], context.clock()),
        row_version=row[0] if row is not None else 0,
    )
