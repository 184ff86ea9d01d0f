"""Published definitions and versions in the workflows/v1 shapes (``WorkflowDefinition``,
``WorkflowVersion``), for clients of that API.

A version imported from workflows/v1 keeps its original document
(``metadata.workflows_v1``): its steps, edges, trigger, retry policy and timeout are shown
as written, with Treadle's version number, author and time. Any other definition is shown
the way its runs are (:mod:`~treadle.scheduler.service.renderings.v1_steps`): each top-level
task is a step typed by what it does, each transition between them an edge (its ``when``
as the ``condition_expr``), and the trigger in v1 terms. Treadle has no workspaces: a
``workspace_id`` comes from an imported definition, or is ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from treadle.common.dialects.shared import V1_METADATA
from treadle.common.graph import Graph
from treadle.common.spec import TriggerSpec, WorkflowSpec
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.service.renderings.v1_steps import definition_steps

__all__ = ["v1_definition", "v1_version", "workflow_tags"]


def _imported(spec: WorkflowSpec, key: str) -> Mapping[str, Any]:
    """The imported v1 ``version`` or ``definition`` document (empty when none)."""
    documents = spec.metadata.get(V1_METADATA)
    found = documents.get(key) if isinstance(documents, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def workflow_tags(spec: WorkflowSpec) -> tuple[str, ...]:
    """The workflow's tags, in the order written: the ``tags`` list in its ``metadata``
    (for a workflows/v1 import, its definition's ``tags``)."""
    tags = spec.metadata.get("tags")
    if tags is None:
        tags = _imported(spec, "definition").get("tags")
    if not isinstance(tags, list):
        return ()
    return tuple(str(tag) for tag in tags if isinstance(tag, str | int | float))


def v1_definition(
    spec: WorkflowSpec,
    *,
    latest_version: int,
    tags: Sequence[str],
    created_at: datetime,
    updated_at: datetime,
) -> dict[str, Any]:
    """The workflow as a v1 ``WorkflowDefinition``; ``spec`` is its latest version."""
    imported = _imported(spec, "definition")
    return {
        "id": imported.get("id") or spec.ref,
        "workspace_id": imported.get("workspace_id"),
        "name": imported.get("name") or spec.label or spec.ref,
        "description": spec.description or imported.get("description"),
        "latest_version": latest_version,
        "tags": list(tags),
        "created_at": iso(created_at),
        "updated_at": iso(updated_at),
    }


def v1_version(
    spec: WorkflowSpec,
    graph: Graph,
    *,
    version: int,
    author: str | None,
    created_at: datetime,
) -> dict[str, Any]:
    """One published version of the workflow as a v1 ``WorkflowVersion``."""
    imported = _imported(spec, "version")
    definition_id = _imported(spec, "definition").get("id") or imported.get("definition_id")
    shown: dict[str, Any] = {
        "id": f"{spec.ref}@v{version}",
        "definition_id": definition_id or spec.ref,
        "version": version,
    }
    if isinstance(imported.get("steps"), list):
        shown.update(
            steps=list(imported["steps"]),
            edges=list(imported.get("edges") or []),
            trigger=imported.get("trigger") or _trigger(spec.trigger),
            default_retry_policy=imported.get("default_retry_policy"),
            timeout_seconds=imported.get("timeout_seconds") or _seconds(spec),
        )
    else:
        shown.update(
            steps=_steps(spec, graph),
            edges=_edges(graph),
            trigger=_trigger(spec.trigger),
            default_retry_policy=None,
            timeout_seconds=_seconds(spec),
        )
    shown.update(author=author, created_at=iso(created_at))
    return shown


def _steps(spec: WorkflowSpec, graph: Graph) -> list[dict[str, Any]]:
    steps, _ = definition_steps(spec, graph)
    shown = []
    for step in steps:
        node = graph.nodes[step.id]
        entry: dict[str, Any] = {
            "id": step.id,
            "name": step.name,
            "step_type": f"STEP_TYPE_{step.type}",
        }
        if node.spec.action:
            entry["action_type"] = node.spec.action
        if node.spec.timeout is not None:
            entry["timeout_seconds"] = int(node.spec.timeout.total_seconds())
        shown.append(entry)
    return shown


def _edges(graph: Graph) -> list[dict[str, Any]]:
    """The transitions between top-level tasks, in the order the graph holds them."""
    shown = []
    for edge in graph.edges:
        source, target = graph.nodes[edge.source], graph.nodes[edge.target]
        if source.scope is not None or target.scope is not None:
            continue  # inside a parallel block: part of that step
        entry: dict[str, Any] = {"from_step_id": edge.source, "to_step_id": edge.target}
        when = source.transitions[edge.transition].when
        if when is not None:
            entry["condition_expr"] = when
        shown.append(entry)
    return shown


def _trigger(trigger: TriggerSpec | None) -> dict[str, Any]:
    if trigger is None:
        return {"trigger_type": "TRIGGER_TYPE_MANUAL"}
    if trigger.type == "cron":
        shown_cron = {"trigger_type": "TRIGGER_TYPE_SCHEDULE", "cron_expression": trigger.cron}
        return shown_cron | ({"timezone": trigger.timezone} if trigger.timezone else {})
    kind = "TRIGGER_TYPE_WEBHOOK" if trigger.type == "webhook" else "TRIGGER_TYPE_EVENT"
    shown: dict[str, Any] = {"trigger_type": kind}
    if trigger.event_type is not None:
        shown["event_type"] = trigger.event_type
    if trigger.subject is not None:
        shown["event_subject"] = trigger.subject
    if trigger.filter is not None:
        shown["filter_expr"] = trigger.filter
    return shown


def _seconds(spec: WorkflowSpec) -> int | None:
    return None if spec.timeout is None else int(spec.timeout.total_seconds())
