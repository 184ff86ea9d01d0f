"""A run as a graph to draw: its definition's tasks and transitions, and where the run is.

The Attune plan's ``GET /workflow-executions/{id}/graph`` ("execution graph, for
visualization"). The nodes and edges are the compiled graph of the definition version the
run is pinned to (:mod:`treadle.common.graph`), so they are exactly what the scheduler
walks; each node carries the run's progress on it, read from the run's overview (the
items of with_items tasks are counted, never loaded). A drawing needs nothing else: kinds
to pick shapes, conditions to label edges, parallel groups to draw boxes around, statuses
to colour, child runs to link to.

Shape (``docs/api.md``)::

    {run, workflow, version, status,
     nodes: [{name, kind, action, parallel, start, join, with_items, status, executions,
              items: {total, done, by_status} | null, child_runs: [id], inquiry,
              compensates}],
     edges: [{id, source, target, transition, condition, publishes: [name]}],
     parallel_groups: [{name, tasks: [name], entries: [name], status}]}

``status`` is that of the task's latest execution (null before it starts), ``executions``
how often it started (a task in a loop starts more than once). Values of the run's secrets
are masked (``***``) wherever they appear, as in the run document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from treadle.common.graph import Graph, Node, NodeKind
from treadle.common.redaction import redact
from treadle.common.statuses import TaskStatus
from treadle.scheduler.core.state import Execution, RunState
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.run_document import run_secrets
from treadle.scheduler.store import ItemSummary, UnitOfWork

__all__ = ["run_graph"]


def run_graph(uow: UnitOfWork, definitions: Definitions, run_id: str) -> dict[str, Any]:
    """The graph of ``run_id`` (NotFound for an unknown run); read it in a snapshot."""
    overview = uow.load_run_overview(run_id, failures=0)
    state = overview.state
    graph = definitions.pinned(
        state.workflow, state.definition_version, uow, workspace=state.workspace
    ).graph
    latest = _latest_executions(state)
    counts: dict[str, int] = {}
    for execution in state.executions.values():
        counts[execution.task] = counts.get(execution.task, 0) + 1
    nodes = [
        _node(graph, node, latest.get(name), counts.get(name, 0), overview.items)
        for name, node in graph.nodes.items()
    ]
    groups = [
        {
            "name": name,
            "tasks": list(node.children),
            "entries": list(node.entries),
            "status": _status(latest.get(name)),
        }
        for name, node in graph.nodes.items()
        if node.kind is NodeKind.PARALLEL
    ]
    drawn = {
        "run": state.run_id,
        "workflow": state.workflow,
        "version": state.definition_version,
        "status": state.status.value,
        "nodes": nodes,
        "edges": [_edge(graph, index) for index in range(len(graph.edges))],
        "parallel_groups": groups,
    }
    masked: dict[str, Any] = redact(drawn, run_secrets(state))
    return masked


def _latest_executions(state: RunState) -> dict[str, Execution]:
    latest: dict[str, Execution] = {}
    for execution_id in sorted(state.executions):
        execution = state.executions[execution_id]
        latest[execution.task] = execution
    return latest


def _status(execution: Execution | None) -> str | None:
    return None if execution is None else execution.status.value


def _node(
    graph: Graph,
    node: Node,
    latest: Execution | None,
    executions: int,
    summaries: Mapping[int, ItemSummary],
) -> dict[str, Any]:
    spec = node.spec
    scope_entries = graph.entries if node.scope is None else graph.nodes[node.scope].entries
    undone = [task for task, hidden in graph.compensation_of.items() if hidden == node.name]
    return {
        "name": node.name,
        "kind": node.kind.value,
        "action": spec.action,
        "parallel": node.scope,
        "start": not node.hidden and node.name in scope_entries,
        "join": spec.join,
        "with_items": spec.with_items is not None,
        "status": _status(latest),
        "executions": executions,
        "items": _items(latest, summaries),
        "child_runs": _child_runs(latest),
        "inquiry": _inquiry(latest),
        "compensates": undone[0] if undone else None,
    }


def _items(
    execution: Execution | None, summaries: Mapping[int, ItemSummary]
) -> dict[str, Any] | None:
    """How far the items of a with_items execution are: total, ended, count by status."""
    if execution is None or not execution.with_items:
        return None
    summary = summaries.get(execution.id) or ItemSummary.of(execution.units)
    by_status = {s.value: summary.by_status[s] for s in TaskStatus if s in summary.by_status}
    done = sum(count for status, count in summary.by_status.items() if status.is_terminal)
    return {"total": summary.total, "done": done, "by_status": by_status}


def _child_runs(execution: Execution | None) -> list[str]:
    """The child runs of a workflow task's latest execution (of a with_items one: list
    the run's child runs instead, they are as many as its items)."""
    if execution is None or execution.with_items:
        return []
    return [unit.child_run_id for unit in execution.units if unit.child_run_id is not None]


def _inquiry(execution: Execution | None) -> str | None:
    """The inquiry the latest execution waits on or waited on (not with_items ones)."""
    if execution is None or execution.with_items:
        return None
    if execution.inquiry_id is not None:
        return execution.inquiry_id
    return next((u.inquiry_id for u in execution.units if u.inquiry_id is not None), None)


def _edge(graph: Graph, index: int) -> dict[str, Any]:
    edge = graph.edges[index]
    transition = graph.nodes[edge.source].transitions[edge.transition]
    return {
        "id": edge.id,
        "source": edge.source,
        "target": edge.target,
        "transition": edge.transition,
        "condition": transition.when,
        "publishes": [publish.name for publish in transition.publish],
    }
