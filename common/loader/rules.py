"""A pack's ``rules/*.yaml`` to :class:`~treadle.common.rules.RuleSpec`, every problem located.

A rule file holds one or more YAML documents (split by ``---``), each one rule in Attune's
format; a document of comments only is skipped. Problems are reported like a workflow's,
with the file, line and field (``rules/x.yaml:14:5: the core.crontimer parameter
'expression': ...``), through the same :class:`~treadle.common.loader.reader.Reader`; a
document with an error gives no rule, the others in the file still load.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

from treadle.common.errors import ParameterError
from treadle.common.expr import TemplateEngine
from treadle.common.loader.reader import Reader
from treadle.common.loader.yaml_source import Document, read_yaml_documents
from treadle.common.rules import (
    EVENT_TRIGGER_FIELDS,
    RuleAction,
    RuleSpec,
    RuleTrigger,
    timer_schedule,
)
from treadle.common.source import Issue, Path

__all__ = ["RULE_FIELDS", "read_rule", "read_rule_file"]

RULE_FIELDS: Final = ("name", "ref", "description", "enabled", "trigger", "action", "criteria")
#: Attune metadata Treadle accepts and does not use.
RULE_IGNORED: Final = ("pack", "label", "tags")
_FIELD: Final = re.compile(r"^'([a-z_]+)': (.*)$", re.DOTALL)
_ENGINE: Final = TemplateEngine()


def read_rule_file(path: str, pack: str) -> tuple[list[RuleSpec], list[Issue]]:
    """Every rule of one file of pack ``pack``, and every problem found in it."""
    rules: list[RuleSpec] = []
    issues: list[Issue] = []
    for document in read_yaml_documents(path):
        rule, found = read_rule(document, pack)
        issues.extend(found)
        if rule is not None:
            rules.append(rule)
    return rules, issues


def read_rule(document: Document, pack: str) -> tuple[RuleSpec | None, list[Issue]]:
    """One rule document; ``None`` (with the issues) when it has an error."""
    reader = Reader(document)
    data = document.data
    if not isinstance(data, dict):
        if data is not None:
            reader.error((), "a rule must be a mapping with 'name', 'trigger' and 'action'")
        return None, reader.sorted_issues()
    reader.check_fields(data, (), "the rule", RULE_FIELDS, ignored=RULE_IGNORED)
    name = reader.text(data.get("name"), ("name",), "the rule 'name'")
    if not name:
        reader.error((), "a rule needs a 'name'")
    ref = reader.text(data.get("ref"), ("ref",), "the rule 'ref'") or f"{pack}.{name}"
    description = reader.text(data.get("description"), ("description",), "'description'")
    enabled = reader.boolean(data.get("enabled"), ("enabled",), "the rule 'enabled'")
    trigger = _trigger(reader, data.get("trigger"))
    action = _action(reader, data.get("action"))
    criteria = _criteria(reader, data.get("criteria"))
    if reader.has_errors or not name or trigger is None or action is None:
        return None, reader.sorted_issues()
    rule = RuleSpec(
        name=name,
        ref=ref,
        pack=pack,
        description=description,
        enabled=True if enabled is None else enabled,
        trigger=trigger,
        action=action,
        criteria=criteria,
        source=reader.source_map(),
    )
    return rule, reader.sorted_issues()


def _trigger(reader: Reader, value: Any) -> RuleTrigger | None:
    path: Path = ("trigger",)
    if value is None:
        reader.error((), "a rule needs a 'trigger' ({type, parameters})")
        return None
    given = reader.mapping(value, path, "the rule 'trigger'")
    if given is None:
        return None
    reader.check_fields(given, path, "the rule's trigger", ("type", "parameters"))
    kind = reader.text(given.get("type"), (*path, "type"), "the trigger 'type'")
    if not kind:
        reader.error(path, "the trigger needs a 'type' (core.crontimer, an event type ...)")
        return None
    where: Path = (*path, "parameters")
    parameters = reader.mapping(given.get("parameters"), where, "the trigger 'parameters'") or {}
    trigger = RuleTrigger(type=kind, parameters=dict(parameters))
    timer = trigger.timer
    if timer is None:
        if kind.startswith("core.") and kind.endswith("timer"):
            known = "core.crontimer, core.intervaltimer, core.datetimetimer"
            reader.error((*path, "type"), f"unknown timer {kind!r} (known: {known})", at_value=True)
            return None
        reader.check_fields(parameters, where, f"the {kind} trigger", EVENT_TRIGGER_FIELDS)
        reader.text(parameters.get("subject"), (*where, "subject"), "the trigger 'subject'")
        return trigger
    reader.check_fields(parameters, where, f"the {kind} parameters", timer.fields)
    try:
        timer_schedule(trigger)
    except ParameterError as exc:
        for problem in exc.problems:
            matched = _FIELD.match(problem)
            field, text = matched.groups() if matched else ("", problem)
            at: Path = (*where, field) if field and field in parameters else where
            label = f"the {kind} parameter '{field}'" if field else f"the {kind} trigger"
            reader.error(at, f"{label}: {text}", at_value=bool(field and field in parameters))
        return None
    return trigger


def _action(reader: Reader, value: Any) -> RuleAction | None:
    path: Path = ("action",)
    if value is None:
        reader.error((), "a rule needs an 'action' ({ref, parameters})")
        return None
    given = reader.mapping(value, path, "the rule 'action'")
    if given is None:
        return None
    reader.check_fields(given, path, "the rule's action", ("ref", "parameters"))
    ref = reader.text(given.get("ref"), (*path, "ref"), "the action 'ref'")
    if not ref:
        reader.error(path, "the action needs a 'ref' (a workflow or an action)")
    where: Path = (*path, "parameters")
    parameters = reader.mapping(given.get("parameters"), where, "the action 'parameters'") or {}
    for at, text in _strings(parameters, where):
        for problem in _ENGINE.check(text):
            reader.error(at, f"the action parameter: {problem.message}", at_value=True)
    return RuleAction(ref=ref, parameters=dict(parameters)) if ref else None


def _criteria(reader: Reader, value: Any) -> tuple[str, ...]:
    path: Path = ("criteria",)
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        reader.error(path, "'criteria' must be an expression or a list of expressions")
        return ()
    found: list[str] = []
    for index, item in enumerate(items):
        at: Path = path if isinstance(value, str) else (*path, index)
        if not isinstance(item, str) or not item.strip():
            reader.error(at, f"a criterion must be a template expression, not {item!r}")
            continue
        for problem in _ENGINE.check(item, as_expression=True):
            reader.error(at, f"the criterion: {problem.message}", at_value=True)
        found.append(item)
    return tuple(found)


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))
