"""The plan sandbox's checks: pure functions of a compiled graph, a policy and values.

* :func:`check_start` — before a run starts: forbidden actions, writes that declare no
  side effects, the definition's literal inputs (when the policy says so) and the run's
  parameters. ``treadle validate --policy`` and the API run the same checks without
  parameters (:func:`check_definition`).
* :func:`check_dispatch` — what the scheduler core asks of each attempt's rendered input
  just before it dispatches it. Only what the templates brought in counts: a value whose
  template text itself holds ``|`` (``"grep {{ x }} | wc -l"``) is flagged when the
  rendered value holds more matches than that text, so a template's own shell pipe or
  SQL is never mistaken for data.

Injection patterns are scoped by runner (``PatternRule.runners``): parameters are checked
with the patterns that apply to every action, inputs with those of their action's runner.
A finding never holds the value that matched, only the pattern.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from treadle.common.expr.text import is_template
from treadle.common.graph import Graph, Node, NodeKind
from treadle.common.sandbox_policy import PatternClass, PatternRule, SandboxPolicy, SideEffectRule
from treadle.common.sandbox_report import REASON_OF_CLASS, Finding, Reason, SandboxReport
from treadle.common.source import Path
from treadle.common.spec import ActionSpec

__all__ = ["check_definition", "check_dispatch", "check_parameters", "check_start"]

#: The input field an HTTP action's method is in.
METHOD: Final = "method"
_TEMPLATE_PARTS: Final = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)

#: An action's declared parameters, where the caller has the action files.
ActionOf = Callable[[str], ActionSpec | None]


def check_start(
    graph: Graph,
    policy: SandboxPolicy,
    parameters: Mapping[str, Any],
    *,
    action_of: ActionOf | None = None,
) -> SandboxReport:
    """Everything a start is refused for: the definition's and the parameters' findings."""
    return check_definition(graph, policy, action_of=action_of).merged(
        check_parameters(parameters, policy)
    )


def check_definition(
    graph: Graph, policy: SandboxPolicy, *, action_of: ActionOf | None = None
) -> SandboxReport:
    """Forbidden actions, undeclared side effects and injection in literal inputs."""
    violations: list[Finding] = []
    warnings: list[Finding] = []
    for node in graph.nodes.values():
        action = node.spec.action
        if not action:
            continue
        where = _locator(graph, node)
        forbidden = _forbidden(node, policy, where)
        if forbidden is not None:
            violations.append(forbidden)
        if node.kind is not NodeKind.ACTION:
            continue
        method = _literal_method(node, action_of)
        effect = _side_effects(node, policy, method, where)
        if effect is not None:
            strict = policy.undeclared_side_effects is SideEffectRule.VIOLATION
            (violations if strict else warnings).append(effect)
        if policy.literal_inputs:
            violations.extend(_literal_findings(node, policy, where))
    return SandboxReport.of(violations, warnings)


def check_parameters(parameters: Mapping[str, Any], policy: SandboxPolicy) -> SandboxReport:
    """A run's parameters against the patterns that apply to every action's input."""
    rules = [rule for rule in policy.patterns if rule.everywhere]
    found: list[Finding] = []
    for path, text in _texts(parameters, ("parameters",)):
        for rule in rules:
            if rule.regex.search(text):
                found.append(_injection(rule, None, path, None, "parameter"))
    return SandboxReport.of(_first_per_field(found))


def check_dispatch(node: Node, rendered: Mapping[str, Any], policy: SandboxPolicy) -> SandboxReport:
    """An attempt's rendered input (``node``'s template rendered): what the templates
    brought in, the literal parts (for runs never checked at start: child runs), the
    forbidden actions and, with the rendered method, undeclared side effects."""
    violations: list[Finding] = []
    forbidden = _forbidden(node, policy, None)
    if forbidden is not None:
        violations.append(forbidden)
    method = rendered.get(METHOD)
    effect = _side_effects(node, policy, method if isinstance(method, str) else None, None)
    if effect is not None and policy.undeclared_side_effects is SideEffectRule.VIOLATION:
        violations.append(effect)
    rules = [rule for rule in policy.patterns if rule.applies_to(node.runner)]
    found: list[Finding] = []
    for path, text, static in _rendered_texts(node.spec.input, rendered):
        if static is None and not policy.literal_inputs:
            continue
        for rule in rules:
            if static is None:
                literal = rule.pattern_class is not PatternClass.TEMPLATE
                hit = literal and rule.regex.search(text) is not None
            else:
                hit = _count(rule, text) > _count(rule, static)
            if hit:
                what = "literal input" if static is None else "rendered input"
                found.append(_injection(rule, node, path, None, what))
    violations.extend(_first_per_field(found))
    return SandboxReport.of(violations)


# -- pieces ---------------------------------------------------------------------------------


Locator = Callable[[Path], str | None]


def _forbidden(node: Node, policy: SandboxPolicy, where: Locator | None) -> Finding | None:
    action = node.spec.action or ""
    if not policy.forbids(action):
        return None
    return Finding(
        reason=Reason.FORBIDDEN_ACTION,
        message=f"task '{_task(node)}' calls '{action}', which the sandbox policy forbids",
        task=_task(node),
        action=action,
        field="action",
        location=where(("action",)) if where else None,
    )


def _side_effects(
    node: Node,
    policy: SandboxPolicy,
    method: str | None,
    where: Locator | None,
) -> Finding | None:
    """A finding (reason set; its severity is the policy's) for a write that declares no
    side effects; ``None`` when declared, not a write, or the rule is ``ignore``."""
    action = node.spec.action or ""
    if node.side_effects or policy.undeclared_side_effects is SideEffectRule.IGNORE:
        return None
    if policy.makes_requests(action, node.runner):
        if method is None or is_template(method) or method.upper() not in policy.writing_methods:
            return None
        what = f"sends {method.upper()} requests"
        field: Path = ("input", METHOD)
    elif policy.writes(action):
        what = "writes"
        field = ("action",)
    else:
        return None
    return Finding(
        reason=Reason.UNDECLARED_SIDE_EFFECTS,
        message=f"task '{_task(node)}' calls '{action}', which {what} but does not declare "
        "'side_effects: true' (its attempts get no idempotency key)",
        task=_task(node),
        action=action,
        field=_dotted(field),
        location=where(field) if where else None,
    )


def _literal_method(node: Node, action_of: ActionOf | None) -> str | None:
    """The method the task's input gives, else the action's default (when known)."""
    given = node.spec.input.get(METHOD)
    if isinstance(given, str):
        return given
    action = action_of(node.spec.action or "") if action_of is not None else None
    if action is not None:
        for parameter in action.parameters:
            if parameter.name == METHOD and isinstance(parameter.default, str):
                return parameter.default
    return None


def _literal_findings(node: Node, policy: SandboxPolicy, where: Locator) -> list[Finding]:
    rules = [
        rule
        for rule in policy.patterns
        if rule.applies_to(node.runner) and rule.pattern_class is not PatternClass.TEMPLATE
    ]
    found: list[Finding] = []
    for path, text in _texts(node.spec.input, ("input",)):
        if is_template(text):
            continue  # what it renders to is checked at dispatch
        for rule in rules:
            if rule.regex.search(text):
                found.append(_injection(rule, node, path, where(path), "literal input"))
    return _first_per_field(found)


def _injection(
    rule: PatternRule, node: Node | None, path: Path, location: str | None, what: str
) -> Finding:
    reason = REASON_OF_CLASS[rule.pattern_class]
    dotted = _dotted(path)
    shown = _dotted(path[1:])  # without "input" or "parameters": the subject says which
    subject = f"task '{node.name}': {what} '{shown}'" if node is not None else f"{what} '{shown}'"
    found = rule.label or f"the pattern {rule.pattern!r}"
    return Finding(
        reason=reason,
        message=f"{subject} looks like {reason.value.replace('_', ' ')} ({found})",
        task=node.name if node is not None else None,
        action=node.spec.action if node is not None else None,
        field=dotted,
        pattern_class=rule.pattern_class,
        pattern=rule.pattern,
        location=location,
    )


def _first_per_field(found: list[Finding]) -> list[Finding]:
    """One finding per field and pattern class (the first pattern that matched)."""
    seen: set[tuple[str | None, str | None, PatternClass | None]] = set()
    kept: list[Finding] = []
    for finding in found:
        key = (finding.task, finding.field, finding.pattern_class)
        if key not in seen:
            seen.add(key)
            kept.append(finding)
    return kept


def _count(rule: PatternRule, text: str) -> int:
    return sum(1 for _ in rule.regex.finditer(text))


def _texts(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    """Every text in ``value`` (nested objects and lists), with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _texts(item, (*path, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _texts(item, (*path, index))


def _rendered_texts(raw: Any, rendered: Any) -> Iterator[tuple[Path, str, str | None]]:
    """Each rendered text with its path and the template text it came from (``None``:
    it was written as it is, a literal; ``""``: all of it came from a template)."""
    yield from _paired(raw, rendered, ("input",))


def _paired(raw: Any, rendered: Any, path: Path) -> Iterator[tuple[Path, str, str | None]]:
    if isinstance(raw, str) and is_template(raw):
        static = _TEMPLATE_PARTS.sub("", raw)
        for where, text in _texts(rendered, path):
            yield where, text, static if where == path else ""
        return
    if isinstance(rendered, str):
        yield path, rendered, (None if rendered == raw else "")
    elif isinstance(rendered, Mapping):
        for key, item in rendered.items():
            inner = raw.get(key) if isinstance(raw, Mapping) else None
            yield from _paired(inner, item, (*path, str(key)))
    elif isinstance(rendered, list | tuple):
        for index, item in enumerate(rendered):
            inner = raw[index] if isinstance(raw, list | tuple) and index < len(raw) else None
            yield from _paired(inner, item, (*path, index))


def _locator(graph: Graph, node: Node) -> Locator:
    source = graph.workflow.source

    def where(path: Path) -> str | None:
        loc = source.loc((*node.spec.path, *path))
        return str(loc) if loc.line > 0 else None

    return where


def _task(node: Node) -> str:
    return node.name


def _dotted(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
