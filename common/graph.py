"""Compile a :class:`WorkflowSpec` into an immutable graph the scheduler core walks.

The graph resolves what each task is (an action, an inquiry, a child workflow or a parallel
block), numbers every transition target as an edge, and knows which tasks start each scope.
Structural problems (duplicate names, unknown targets, unreachable tasks, cycles made only of
unconditional transitions) are returned as :class:`Issue` values, all at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from treadle.common.errors import DefinitionError
from treadle.common.source import Issue, Path
from treadle.common.spec import (
    RateLimitSpec,
    RunnerType,
    TaskSpec,
    TaskType,
    TransitionSpec,
    WorkflowSpec,
)

#: Actions the scheduler itself handles by asking a person.
INQUIRY_ACTIONS = frozenset({"core.ask", "core.inquiry"})
#: Actions the scheduler itself handles by waiting for an outside event.
EVENT_ACTIONS = frozenset({"core.wait_for_event"})
#: Suffix of the hidden node that runs a task's compensation (no task name can contain ``~``
#: and be reached by a transition: compensation nodes have no edges).
COMPENSATION_SUFFIX = "~compensate"

KindOf = Callable[[str], RunnerType | None]
QueueOf = Callable[[str], str | None]
#: An action's own rate limit, as the catalog (or the pinned routes) says.
RateOf = Callable[[str], RateLimitSpec | None]
#: Whether an action declares ``side_effects: true``, as the catalog (or the pinned routes) says.
EffectsOf = Callable[[str], bool]


class NodeKind(StrEnum):
    """How the core starts a task."""

    ACTION = "action"
    INQUIRY = "inquiry"
    EVENT = "event"
    WORKFLOW = "workflow"
    PARALLEL = "parallel"


@dataclass(frozen=True, slots=True)
class Edge:
    """Transition ``transition`` of task ``source`` starts task ``target``."""

    id: int
    source: str
    transition: int
    target: str
    conditional: bool


@dataclass(frozen=True)
class Node:
    """A task in the compiled graph. ``scope`` is the enclosing parallel task, if any.

    ``queue`` is where the task's attempts go: the task's own ``queue``, else its action's,
    else ``None`` (the deployment's default queue); ``runner`` is its action's runner kind as
    the definition version pinned it (``None`` when unknown). A ``hidden`` node runs another
    task's compensation: it has no edges and starts only when the run is compensated.
    """

    name: str
    spec: TaskSpec
    kind: NodeKind
    scope: str | None
    out_edges: tuple[tuple[int, ...], ...]
    in_edges: tuple[int, ...]
    children: tuple[str, ...] = ()
    entries: tuple[str, ...] = ()
    queue: str | None = None
    runner: RunnerType | None = None
    hidden: bool = False
    #: The rate limit the action itself declares (``rate_limit:`` in its file), pinned.
    action_rate_limit: RateLimitSpec | None = None
    #: The action declares ``side_effects: true`` (pinned): its attempts get an idempotency key.
    side_effects: bool = False

    @property
    def transitions(self) -> tuple[TransitionSpec, ...]:
        return self.spec.next


@dataclass(frozen=True)
class Graph:
    """The compiled, immutable form of one workflow definition."""

    workflow: WorkflowSpec
    nodes: Mapping[str, Node]
    edges: tuple[Edge, ...]
    entries: tuple[str, ...]
    successors: Mapping[str, frozenset[str]] = field(repr=False)
    compensation_of: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return self.workflow.ref

    def node(self, name: str) -> Node:
        return self.nodes[name]

    def reachable_from(self, starts: Iterable[str], *, avoid: str | None = None) -> set[str]:
        """Tasks reachable from ``starts`` (inclusive) without passing through ``avoid``."""
        seen: set[str] = set()
        stack = [s for s in starts if s != avoid]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            stack.extend(t for t in self.successors.get(name, ()) if t != avoid and t not in seen)
        return seen


def node_kind(task: TaskSpec, kind_of: KindOf | None) -> NodeKind:
    """Resolve what ``task`` is, asking the action catalog about its action's runner."""
    if task.type is TaskType.PARALLEL:
        return NodeKind.PARALLEL
    action = task.action or ""
    if action in INQUIRY_ACTIONS:
        return NodeKind.INQUIRY
    if action in EVENT_ACTIONS:
        return NodeKind.EVENT
    runner = kind_of(action) if kind_of is not None and action else None
    if task.type is TaskType.WORKFLOW or runner is RunnerType.WORKFLOW:
        return NodeKind.WORKFLOW
    if runner is RunnerType.INQUIRY:
        return NodeKind.INQUIRY
    return NodeKind.ACTION


def _walk(tasks: Iterable[TaskSpec], scope: str | None) -> Iterator[tuple[TaskSpec, str | None]]:
    for task in tasks:
        yield task, scope
        if task.type is TaskType.PARALLEL:
            yield from _walk(task.tasks, task.name)


def build_graph(
    spec: WorkflowSpec,
    kind_of: KindOf | None = None,
    queue_of: QueueOf | None = None,
    rate_of: RateOf | None = None,
    effects_of: EffectsOf | None = None,
) -> tuple[Graph | None, list[Issue]]:
    """Compile ``spec``; return the graph (``None`` if it cannot be built) and every issue."""
    issues: list[Issue] = []
    loc = spec.source.loc

    def problem(path: Path, message: str) -> None:
        issues.append(Issue(loc(path), message))

    specs: dict[str, TaskSpec] = {}
    scope_of: dict[str, str | None] = {}
    for task, scope in _walk(spec.tasks, None):
        if task.name in specs:
            first = loc(specs[task.name].path)
            problem((*task.path, "name"), f"task '{task.name}' is defined twice (first at {first})")
            continue
        specs[task.name] = task
        scope_of[task.name] = scope
        if task.type is TaskType.PARALLEL and not task.tasks:
            problem(task.path, f"parallel task '{task.name}' has no nested tasks")
        if task.type is not TaskType.PARALLEL and not task.action:
            problem(task.path, f"task '{task.name}' has no action")
    if not spec.tasks:
        problem(("tasks",), "the workflow has no tasks")

    edges: list[Edge] = []
    out_edges: dict[str, list[list[int]]] = {name: [] for name in specs}
    in_edges: dict[str, list[int]] = {name: [] for name in specs}
    for name, task in specs.items():
        for t_index, transition in enumerate(task.next):
            ids: list[int] = []
            for d_index, target in enumerate(transition.do):
                target_path = (*transition.path, "do", d_index)
                if target not in specs:
                    problem(target_path, _unknown_target(name, target, specs))
                    continue
                if scope_of[target] != scope_of[name]:
                    problem(target_path, _cross_scope(name, target, scope_of))
                    continue
                edge = Edge(len(edges), name, t_index, target, transition.when is not None)
                edges.append(edge)
                ids.append(edge.id)
                in_edges[target].append(edge.id)
            out_edges[name].append(ids)

    successors = {
        name: frozenset(edges[i].target for ids in out_edges[name] for i in ids) for name in specs
    }
    children: dict[str | None, list[str]] = {}
    for name, scope in scope_of.items():
        children.setdefault(scope, []).append(name)
    entries_of = {
        scope: tuple(n for n in names if not in_edges[n]) for scope, names in children.items()
    }

    for scope, names in children.items():
        starts = entries_of[scope]
        where: Path = ("tasks",) if scope is None else (*specs[scope].path, "tasks")
        label = "the workflow" if scope is None else f"parallel task '{scope}'"
        if names and not starts:
            problem(where, f"{label} has no task to start with: every task is a transition target")
            continue
        reached = _reach(starts, successors)
        for n in names:
            if n not in reached:
                problem(
                    (*specs[n].path, "name"), f"task '{n}' is unreachable from {_starts(starts)}"
                )

    for cycle in _unconditional_cycles(specs, edges):
        first_task = specs[cycle[0]]
        path = " -> ".join([*cycle, cycle[0]])
        problem(
            (*first_task.path, "name"),
            f"cycle made only of unconditional transitions: {path}; "
            "give one of its transitions a 'when' so the loop can end",
        )

    if any(i.severity == "error" for i in issues) and not specs:
        return None, issues
    nodes = {
        name: Node(
            name=name,
            spec=task,
            kind=node_kind(task, kind_of),
            scope=scope_of[name],
            out_edges=tuple(tuple(ids) for ids in out_edges[name]),
            in_edges=tuple(in_edges[name]),
            children=tuple(children.get(name, ())),
            entries=entries_of.get(name, ()),
            queue=task.queue or (queue_of(task.action) if queue_of and task.action else None),
            runner=kind_of(task.action) if kind_of and task.action else None,
            action_rate_limit=rate_of(task.action) if rate_of and task.action else None,
            side_effects=bool(effects_of and task.action and effects_of(task.action)),
        )
        for name, task in specs.items()
    }
    compensation_of: dict[str, str] = {}
    for name, task in specs.items():
        if task.compensate is None:
            continue
        hidden = name + COMPENSATION_SUFFIX
        undo = TaskSpec(
            name=hidden,
            action=task.compensate.action,
            input=task.compensate.input,
            path=(*task.path, "compensate"),
        )
        action = task.compensate.action
        nodes[hidden] = Node(
            name=hidden,
            spec=undo,
            kind=node_kind(undo, kind_of),
            scope=None,
            out_edges=(),
            in_edges=(),
            queue=queue_of(action) if queue_of else None,
            runner=kind_of(action) if kind_of else None,
            hidden=True,
            side_effects=bool(effects_of and effects_of(action)),
        )
        compensation_of[name] = hidden
    graph = Graph(spec, nodes, tuple(edges), entries_of.get(None, ()), successors, compensation_of)
    return graph, issues


def compile_graph(
    spec: WorkflowSpec,
    kind_of: KindOf | None = None,
    queue_of: QueueOf | None = None,
    rate_of: RateOf | None = None,
    effects_of: EffectsOf | None = None,
) -> Graph:
    """Compile ``spec`` or raise :class:`DefinitionError` with every structural problem."""
    graph, issues = build_graph(spec, kind_of, queue_of, rate_of, effects_of)
    errors = [i for i in issues if i.severity == "error"]
    if errors or graph is None:
        raise DefinitionError(errors)
    return graph


def _reach(starts: Iterable[str], successors: Mapping[str, frozenset[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(starts)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(successors.get(name, ()))
    return seen


def _starts(starts: tuple[str, ...]) -> str:
    return "the start task " + ", ".join(f"'{s}'" for s in starts) if starts else "the start"


def _unknown_target(source: str, target: str, specs: Mapping[str, TaskSpec]) -> str:
    from difflib import get_close_matches

    message = f"task '{source}' transitions to unknown task '{target}'"
    close = get_close_matches(target, list(specs), n=1)
    return message + (f" (did you mean '{close[0]}'?)" if close else "")


def _cross_scope(source: str, target: str, scope_of: Mapping[str, str | None]) -> str:
    def where(name: str) -> str:
        scope = scope_of[name]
        return "the top level" if scope is None else f"parallel task '{scope}'"

    return (
        f"task '{source}' (in {where(source)}) cannot transition to '{target}' "
        f"(in {where(target)}): transitions stay within their block"
    )


def _unconditional_cycles(specs: Mapping[str, TaskSpec], edges: list[Edge]) -> list[list[str]]:
    """Each elementary cycle made only of unconditional edges, reported once per component."""
    graph: dict[str, list[str]] = {name: [] for name in specs}
    for edge in edges:
        if not edge.conditional:
            graph[edge.source].append(edge.target)
    cycles: list[list[str]] = []
    for component in _strongly_connected(graph):
        if len(component) == 1:
            only = component[0]
            if only in graph[only]:
                cycles.append([only])
            continue
        members = set(component)
        start = min(component, key=list(specs).index)
        cycles.append(_cycle_through(start, graph, members))
    return cycles


def _cycle_through(start: str, graph: Mapping[str, list[str]], members: set[str]) -> list[str]:
    path = [start]
    seen = {start}
    current = start
    while True:
        nxt = next(t for t in graph[current] if t in members)
        if nxt == start or nxt in seen:
            return path[path.index(nxt) :] if nxt != start else path
        path.append(nxt)
        seen.add(nxt)
        current = nxt


def _strongly_connected(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative so deep chains do not hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child_i = work.pop()
            if child_i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = graph[node]
            if child_i < len(children):
                work.append((node, child_i + 1))
                child = children[child_i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return result
