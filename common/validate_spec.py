"""The checks of one workflow spec against a catalog, behind ``validate_workflow``.

:class:`WorkflowCheck` compiles the graph (which reports structural problems: unknown
targets, unreachable tasks, unconditional cycles...) and then checks what the graph does
not: template syntax, the names templates read (``paramters.x``, ``task.missing.result``,
``item`` outside ``with_items``, ``event`` outside event waits and triggers), values that
make no sense together, and the actions tasks call (unknown refs, inputs the action does
not declare, required inputs not given). These checks need nothing but the spec and the
catalog; reading files and packs to find specs lives in :mod:`treadle.common.validate`,
which is the entry point callers import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, Final

from treadle.common.catalog import Catalog
from treadle.common.expr import TemplateEngine, is_template
from treadle.common.graph import EVENT_ACTIONS, INQUIRY_ACTIONS, Graph, build_graph
from treadle.common.guard_checks import escalation_templates, guard_problems
from treadle.common.loader.reader import suggestion
from treadle.common.loader.yaml_source import VALUE
from treadle.common.source import Issue, Loc, Path, Severity
from treadle.common.spec import ParameterSpec, RateLimitSpec, TaskSpec, TaskType, WorkflowSpec

__all__ = ["JINJA_GLOBALS", "KNOWN_NAMES", "WorkflowCheck", "sorted_issues"]

#: Names a template may start with: the context namespaces and the helper functions.
KNOWN_NAMES: Final = frozenset(
    {
        "parameters", "workflow", "vars", "variables", "task", "config", "pack", "keystore",
        "kv", "item", "index", "system", "inquiry", "succeeded", "failed", "timed_out",
        "result", "now", "uuid", "length",
    }
)  # fmt: skip
#: Jinja's own globals (and constants some users write as names).
JINJA_GLOBALS: Final = frozenset(
    {"range", "dict", "lipsum", "cycler", "joiner", "namespace",
     "true", "false", "none", "True", "False", "None"}
)  # fmt: skip
_ITEM_NAMES: Final = frozenset({"item", "index"})
#: The arriving event, in scope in event-wait filters and in event triggers.
_EVENT_NAME: Final = "event"


@dataclass(frozen=True)
class _Field:
    """One template-bearing value: where it is, what it is, and whether ``item`` is in scope."""

    path: Path
    text: str
    owner: str
    items_in_scope: bool = False
    condition: bool = False
    event_in_scope: bool = False
    event_only: bool = False


def _queue_of(catalog: Catalog) -> Callable[[str], str | None]:
    def queue_of(ref: str) -> str | None:
        action = catalog.actions.get(ref)
        return None if action is None else action.queue

    return queue_of


def _rate_of(catalog: Catalog) -> Callable[[str], RateLimitSpec | None]:
    def rate_of(ref: str) -> RateLimitSpec | None:
        action = catalog.actions.get(ref)
        return None if action is None else action.rate_limit

    return rate_of


def _effects_of(catalog: Catalog) -> Callable[[str], bool]:
    def effects_of(ref: str) -> bool:
        action = catalog.actions.get(ref)
        return action is not None and action.side_effects

    return effects_of


class WorkflowCheck:
    """The checks of :func:`~treadle.common.validate.validate_workflow` for one spec:
    ``run()`` returns its issues, sorted, and leaves the compiled graph in ``graph``."""

    def __init__(self, spec: WorkflowSpec, catalog: Catalog | None, strict: bool) -> None:
        self.spec = spec
        self.catalog = catalog
        self.strict = strict
        self.issues: list[Issue] = []
        self.tasks = list(_walk(spec.tasks))
        self.task_names = {task.name for task in self.tasks}
        self.parameter_names = {p.name for p in spec.parameters}
        self.engine = _engine()
        self._seen_conditions: set[tuple[str, str]] = set()
        self.graph: Graph | None = None

    def run(self) -> list[Issue]:
        catalog = self.catalog
        kind_of = catalog.kind_of if catalog is not None else None
        queue_of = None if catalog is None else _queue_of(catalog)
        rate_of = None if catalog is None else _rate_of(catalog)
        effects_of = None if catalog is None else _effects_of(catalog)
        graph, structural = build_graph(self.spec, kind_of, queue_of, rate_of, effects_of)
        self.graph = graph
        self.issues.extend(structural)
        for field in _template_fields(self.spec):
            self._check_template(field)
        declared = None if self.catalog is None else self._declared
        for task in self.tasks:
            self._check_values(task, graph)
            if self.catalog is not None:
                self._check_action(task)
            for problem in guard_problems(task, declared):
                if problem.severity is Severity.ERROR:
                    self._error(problem.path, problem.message)
                else:
                    self._warning(problem.path, problem.message)
        return sorted_issues(self.issues)

    # -- reporting -------------------------------------------------------------------------

    def _error(self, path: Path, message: str, *, loc: Loc | None = None) -> None:
        self.issues.append(Issue(loc or self.spec.source.loc(path), message))

    def _warning(self, path: Path, message: str) -> None:
        self.issues.append(Issue(self.spec.source.loc(path), message, Severity.WARNING))

    def _value_loc(self, path: Path) -> Loc:
        found = self.spec.source.locations.get((*path, VALUE))
        return found if found is not None else self.spec.source.loc(path)

    # -- templates -------------------------------------------------------------------------

    def _check_template(self, field: _Field) -> None:
        base = self._value_loc(field.path)
        problems = list(self.engine.check(field.text))
        for problem in problems:
            message = f"template error in {field.owner}: {problem.message}"
            if field.condition:
                # legacy conditions are combined text: point at the condition, not a column
                self._once(field, message, base)
                continue
            line = base.line + max(problem.line, 1) - 1 if base.line else 0
            col = base.col if base.line else 0
            if problem.col is not None and base.line:
                col = (base.col + problem.col - 1) if problem.line <= 1 else problem.col
            self.issues.append(Issue(Loc(base.file, line, col), message))
        if problems:
            return
        for name in sorted(self.engine.names(field.text)):
            unknown = self._name_problem(name, field)
            if unknown is not None:
                if field.condition:
                    self._once(field, unknown, base)
                else:
                    self.issues.append(Issue(base, unknown))

    def _once(self, field: _Field, message: str, loc: Loc) -> None:
        """Report a problem in a condition once per task: legacy chains repeat conditions."""
        key = (field.owner, message)
        if key not in self._seen_conditions:
            self._seen_conditions.add(key)
            self.issues.append(Issue(loc, message))

    def _name_problem(self, name: tuple[str, ...], field: _Field) -> str | None:
        root = name[0]
        where = f" in {field.owner}"
        if root == _EVENT_NAME and (field.event_in_scope or field.event_only):
            return None
        if field.event_only and root not in JINJA_GLOBALS:
            return f"'{root}'{where} is not defined: a trigger's templates see only 'event'"
        if root == _EVENT_NAME:
            return (
                f"'{root}'{where} is only defined in the 'filter' of an event wait and in a trigger"
            )
        if root not in KNOWN_NAMES and root not in JINJA_GLOBALS:
            return f"unknown name '{root}'{where}" + suggestion(root, KNOWN_NAMES)
        if root in _ITEM_NAMES and not field.items_in_scope:
            return (
                f"'{root}'{where} is only defined in the 'input' and 'when' of a task "
                "with 'with_items'"
            )
        if len(name) < 2:
            return None
        if root == "parameters" and name[1] not in self.parameter_names:
            return f"unknown parameter '{name[1]}'{where}" + suggestion(
                name[1], self.parameter_names
            )
        if root == "task" and name[1] not in self.task_names:
            return f"unknown task '{name[1]}'{where}" + suggestion(name[1], self.task_names)
        return None

    # -- values ----------------------------------------------------------------------------

    def _check_values(self, task: TaskSpec, graph: Graph | None) -> None:
        what = f"task '{task.name}'"
        if task.with_items is None:
            for key in ("batch_size", "concurrency"):
                if getattr(task, key) is not None:
                    self._warning(
                        (*task.path, key), f"'{key}' of {what} has no effect without 'with_items'"
                    )
        retry = task.retry
        if retry is not None and retry.max_delay is not None and retry.max_delay < retry.delay:
            self._warning(
                (*task.path, "retry", "max_delay"),
                f"'retry.max_delay' of {what} is shorter than 'retry.delay'",
            )
        if isinstance(task.join, int) and graph is not None and task.name in graph.nodes:
            inbound = len(graph.nodes[task.name].in_edges)
            if task.join > inbound:
                self._error(
                    (*task.path, "join"),
                    f"{what} joins {task.join} transitions but only {inbound} lead to it; "
                    "it would never start",
                )

    # -- actions ---------------------------------------------------------------------------

    def _check_action(self, task: TaskSpec) -> None:
        if task.type is not TaskType.PARALLEL and task.action:
            self._check_call(task, task.action, task.input, task.path)
            runner = self.catalog.kind_of(task.action) if self.catalog else None
            if task.type is TaskType.WORKFLOW and runner not in (None, "workflow"):
                self._error(
                    (*task.path, "type"),
                    f"task '{task.name}' has type workflow but '{task.action}' is "
                    f"a {runner} action",
                )
        if task.compensate is not None:
            compensate = task.compensate
            base = (*task.path, "compensate")
            self._check_call(task, compensate.action, compensate.input, base)

    def _check_call(self, task: TaskSpec, ref: str, given: dict[str, Any], base: Path) -> None:
        """``ref`` exists, and ``given`` fits its declared parameters (``base`` holds both)."""
        assert self.catalog is not None
        if is_template(ref):
            return
        params = self._declared(ref)
        if params is None:
            if ref in INQUIRY_ACTIONS or ref in EVENT_ACTIONS:
                return
            known = [*self.catalog.actions, *self.catalog.workflows]
            message = f"unknown action '{ref}' in task '{task.name}'" + suggestion(ref, known)
            if self.strict:
                self._error((*base, "action"), message)
            else:
                self._warning((*base, "action"), message)
            return
        if not params:
            return
        declared = {p.name for p in params}
        for key in given:
            if key not in declared:
                self._error(
                    (*base, "input", key),
                    f"task '{task.name}' gives input '{key}' that '{ref}' does not declare"
                    + suggestion(key, declared),
                )
        for param in params:
            if param.required and not param.has_default and param.name not in given:
                self._error(
                    (*base, "input") if given else (*base, "action"),
                    f"task '{task.name}' does not give the required input '{param.name}' "
                    f"of '{ref}'",
                )

    def _declared(self, ref: str) -> tuple[ParameterSpec, ...] | None:
        assert self.catalog is not None
        if ref in self.catalog.workflows:
            return self.catalog.workflows[ref].parameters
        if ref in self.catalog.actions:
            return self.catalog.actions[ref].parameters
        return None


@cache
def _engine() -> TemplateEngine:
    """One engine for all checks: it caches compiled templates."""
    return TemplateEngine()


def _walk(tasks: Iterable[TaskSpec]) -> Iterator[TaskSpec]:
    for task in tasks:
        yield task
        yield from _walk(task.tasks)


def _template_fields(spec: WorkflowSpec) -> Iterator[_Field]:
    """Every template in ``spec`` that is evaluated at run time, with its path."""
    for index, assignment in enumerate(spec.vars):
        yield from _values(
            assignment.value, ("vars", index), f"workflow variable '{assignment.name}'"
        )
    yield from _values(spec.output_map, ("output_map",), "'output_map'")
    listed = [(("triggers", i), t) for i, t in enumerate(spec.triggers)]
    for path, trigger in [(("trigger",), spec.trigger), *listed]:
        if trigger is None or trigger.is_schedule:
            continue  # a schedule's parameters are passed as written
        owner = "the trigger"
        for key, value in (("filter", trigger.filter), ("parameters", trigger.parameters)):
            yield from _event_values(value, (*path, key), owner, only=True)
    for task in _walk(spec.tasks):
        owner = f"task '{task.name}'"
        items = task.with_items is not None
        if task.action in EVENT_ACTIONS and isinstance(task.input.get("filter"), str):
            # core.wait_for_event: its filter is evaluated per arriving event
            rest = {key: value for key, value in task.input.items() if key != "filter"}
            yield from _values(rest, (*task.path, "input"), owner, items=items)
            yield from _event_values(task.input["filter"], (*task.path, "input", "filter"), owner)
        else:
            yield from _values(task.input, (*task.path, "input"), owner, items=items)
        if task.when is not None:
            yield _Field(
                (*task.path, "when"), task.when, owner, items_in_scope=items, condition=True
            )
        if isinstance(task.with_items, str):
            yield _Field((*task.path, "with_items"), task.with_items, owner)
        else:
            yield from _values(task.with_items, (*task.path, "with_items"), owner)
        yield from _wait_fields(task, owner)
        if task.compensate is not None:
            path = (*task.path, "compensate", "input")
            yield from _values(task.compensate.input, path, owner, items=items)
        for path, value in escalation_templates(task):
            yield from _values(value, path, owner, items=items)
        for transition in task.next:
            if transition.when is not None:
                yield _Field((*transition.path, "when"), transition.when, owner, condition=True)
            for index, publish in enumerate(transition.publish):
                yield from _values(publish.value, (*transition.path, "publish", index), owner)


def _wait_fields(task: TaskSpec, owner: str) -> Iterator[_Field]:
    wait = task.wait_for
    if wait is None:
        return
    base = (*task.path, "wait_for")
    if isinstance(wait.inquiry, str):
        yield from _values(wait.inquiry, (*base, "inquiry"), owner)
    elif wait.inquiry is not None:
        yield from _values(wait.inquiry.prompt, (*base, "inquiry", "prompt"), owner)
        yield from _values(wait.inquiry.assigned_to, (*base, "inquiry", "assigned_to"), owner)
    if wait.event is not None:
        yield from _values(wait.event.subject, (*base, "event", "subject"), owner)
        yield from _event_values(wait.event.filter, (*base, "event", "filter"), owner)


def _event_values(value: Any, path: Path, owner: str, *, only: bool = False) -> Iterator[_Field]:
    """Templates that see the arriving ``event`` (with ``only``: nothing else)."""
    for field in _values(value, path, owner):
        yield replace(field, event_in_scope=True, event_only=only)


def _values(value: Any, path: Path, owner: str, *, items: bool = False) -> Iterator[_Field]:
    """The templates inside a (possibly nested) value."""
    if isinstance(value, str):
        if is_template(value):
            yield _Field(path, value, owner, items_in_scope=items)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _values(item, (*path, key), owner, items=items)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _values(item, (*path, index), owner, items=items)


def sorted_issues(issues: Iterable[Issue]) -> list[Issue]:
    """``issues`` without repeats, by file, line, column and message."""
    unique = dict.fromkeys(issues)
    return sorted(unique, key=lambda i: (i.loc.file, i.loc.line, i.loc.col, i.message))
