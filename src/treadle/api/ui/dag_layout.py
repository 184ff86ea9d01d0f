"""A run's graph laid out for drawing: layered, left to right, computed on the server.

The web UI draws a run's DAG as SVG the server writes, so a page with hundreds of tasks
needs no script to appear and no layout library. The graph comes from
:func:`treadle.scheduler.service.run_graph.run_graph` (the pinned definition's nodes and
edges with the run's progress on them); this module only places it:

* edges that close a cycle (a task's ``next`` going back to an earlier task: a loop) are
  found by a depth-first walk from the start tasks and drawn as back edges, below;
* every other edge points to a later layer (longest path from the start tasks), so
  layers are topological;
* a parallel group's node also points to its entry tasks (drawn dashed: "contains");
* within a layer, tasks are ordered by the mean position of their predecessors
  (one barycentre pass), which removes most crossings of ordinary workflows.

Pure: no I/O; the same graph always gives the same drawing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "NODE_HEIGHT",
    "NODE_WIDTH",
    "DrawnEdge",
    "DrawnNode",
    "Layout",
    "lay_out",
]

#: The size of a task's box and the gaps between boxes, in SVG units (CSS pixels).
NODE_WIDTH: Final = 180
NODE_HEIGHT: Final = 64
GAP_X: Final = 70
GAP_Y: Final = 26
MARGIN: Final = 20
#: Characters of an edge's condition shown on the drawing (the whole one is its title).
LABEL_CHARS: Final = 28


@dataclass(frozen=True)
class DrawnNode:
    """A task placed: its box's top-left corner and what the box shows."""

    name: str
    x: int
    y: int
    layer: int
    node: Mapping[str, Any]  # the run graph's node: kind, status, items, child_runs...


@dataclass(frozen=True)
class DrawnEdge:
    """A transition (or a group's containment) as a path with its label."""

    source: str
    target: str
    path: str
    label: str
    label_x: int
    label_y: int
    title: str
    back: bool  # closes a loop: drawn below the layers
    contains: bool  # a parallel group to one of its entry tasks


@dataclass(frozen=True)
class Layout:
    """The whole drawing: its size, the nodes and the edges."""

    width: int
    height: int
    nodes: tuple[DrawnNode, ...]
    edges: tuple[DrawnEdge, ...]


def _links(graph: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every (source, target, edge) to draw; ``edge`` None for a group's containment."""
    names = {node["name"] for node in graph["nodes"]}
    links: list[tuple[str, str, dict[str, Any] | None]] = [
        (edge["source"], edge["target"], edge)
        for edge in graph["edges"]
        if edge["source"] in names and edge["target"] in names
    ]
    for group in graph.get("parallel_groups", []):
        links.extend((group["name"], entry, None) for entry in group["entries"] if entry in names)
    return links


def _back_edges(order: Sequence[str], starts: Sequence[str], links: Sequence[Any]) -> set[int]:
    """Indexes of the links that close a cycle, by an iterative depth-first walk."""
    outgoing: dict[str, list[int]] = {name: [] for name in order}
    for index, (source, target, _edge) in enumerate(links):
        if source != target:
            outgoing[source].append(index)
    back = {index for index, (source, target, _e) in enumerate(links) if source == target}
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    for root in [*starts, *order]:
        if root in state:
            continue
        state[root] = 1
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            name, position = stack[-1]
            if position < len(outgoing[name]):
                stack[-1] = (name, position + 1)
                index = outgoing[name][position]
                target = links[index][1]
                seen = state.get(target)
                if seen == 1:
                    back.add(index)
                elif seen is None:
                    state[target] = 1
                    stack.append((target, 0))
            else:
                state[name] = 2
                stack.pop()
    return back


def _layers(order: Sequence[str], forward: Sequence[tuple[str, str]]) -> dict[str, int]:
    """The longest path from a task without predecessors to each task (Kahn's order)."""
    incoming = dict.fromkeys(order, 0)
    outgoing: dict[str, list[str]] = {name: [] for name in order}
    for source, target in forward:
        incoming[target] += 1
        outgoing[source].append(target)
    layer = dict.fromkeys(order, 0)
    ready = [name for name in order if incoming[name] == 0]
    while ready:
        name = ready.pop(0)
        for target in outgoing[name]:
            layer[target] = max(layer[target], layer[name] + 1)
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append(target)
    return layer


def _short(text: str) -> str:
    text = " ".join(text.replace("{{", "").replace("}}", "").split())
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def lay_out(graph: Mapping[str, Any]) -> Layout:
    """Place ``graph`` (the run graph's shape) for drawing (see the module docstring)."""
    order = [node["name"] for node in graph["nodes"]]
    by_name = {node["name"]: node for node in graph["nodes"]}
    links = _links(graph)
    starts = [node["name"] for node in graph["nodes"] if node.get("start")]
    back = _back_edges(order, starts, links)
    forward = [(s, t) for index, (s, t, _e) in enumerate(links) if index not in back]
    layer_of = _layers(order, forward)
    columns: dict[int, list[str]] = {}
    for name in order:
        columns.setdefault(layer_of[name], []).append(name)
    predecessors: dict[str, list[str]] = {name: [] for name in order}
    for source, target in forward:
        predecessors[target].append(source)
    row_of: dict[str, float] = {}
    first = {name: index for index, name in enumerate(order)}

    def weight(name: str) -> tuple[float, int]:
        placed = [row_of[p] for p in predecessors[name] if p in row_of]
        mean = sum(placed) / len(placed) if placed else float("inf")
        return (mean, first[name])

    for layer in sorted(columns):
        names = columns[layer]
        if layer > 0:
            names.sort(key=weight)
        for row, name in enumerate(names):
            row_of[name] = row
    tallest = max((len(names) for names in columns.values()), default=1)
    drawn = tuple(
        DrawnNode(
            name=name,
            x=MARGIN + layer_of[name] * (NODE_WIDTH + GAP_X),
            y=MARGIN + int(row_of[name]) * (NODE_HEIGHT + GAP_Y),
            layer=layer_of[name],
            node=by_name[name],
        )
        for name in order
    )
    at = {node.name: node for node in drawn}
    body_height = MARGIN * 2 + tallest * (NODE_HEIGHT + GAP_Y) - GAP_Y
    height = body_height + (24 + 18 * min(len(back), 6) if back else 0)
    edges = tuple(
        _edge(at[s], at[t], edge, back=index in back, bottom=body_height, index=index)
        for index, (s, t, edge) in enumerate(links)
    )
    layers = max(layer_of.values(), default=0) + 1
    width = MARGIN * 2 + layers * (NODE_WIDTH + GAP_X) - GAP_X
    return Layout(width=max(width, 240), height=max(height, 120), nodes=drawn, edges=edges)


def _edge(
    source: DrawnNode,
    target: DrawnNode,
    edge: Mapping[str, Any] | None,
    *,
    back: bool,
    bottom: int,
    index: int,
) -> DrawnEdge:
    condition = (edge or {}).get("condition") or ""
    publishes = (edge or {}).get("publishes") or []
    title = f"{source.name} → {target.name}"
    if edge is None:
        title = f"parallel group {source.name} starts {target.name}"
    if condition:
        title += f" when {condition}"
    if publishes:
        title += f"; publishes {', '.join(publishes)}"
    if back:
        x1, y1 = source.x + NODE_WIDTH // 2, source.y + NODE_HEIGHT
        x2, y2 = target.x + NODE_WIDTH // 2, target.y + NODE_HEIGHT
        low = bottom + 8 + 18 * (index % 6)
        path = f"M{x1},{y1} C{x1},{low} {x2},{low} {x2},{y2}"
        label_x, label_y = (x1 + x2) // 2, low - 4
    else:
        x1, y1 = source.x + NODE_WIDTH, source.y + NODE_HEIGHT // 2
        x2, y2 = target.x, target.y + NODE_HEIGHT // 2
        middle = (x1 + x2) // 2
        path = f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}"
        label_x, label_y = middle, (y1 + y2) // 2 - 5
    return DrawnEdge(
        source=source.name,
        target=target.name,
        path=path,
        label=_short(condition) if condition else "",
        label_x=label_x,
        label_y=label_y,
        title=title,
        back=back,
        contains=edge is None,
    )
