"""workflows/v1 expressions (``deal_value_usd >= 50000``) as Treadle template expressions.

A v1 expression is a small C-like language: names with dotted paths, numbers, quoted
strings, comparisons, arithmetic, ``&&``/``||``/``!`` (or ``and``/``or``/``not``),
``true``/``false``/``null`` and parentheses. Translating it means re-spelling the operators
for Jinja and replacing every *name* with what it stands for in Treadle, which depends on
where the expression is written; the caller passes a :data:`Resolver` for that:

* in a step or edge condition, ``qualify_lead.output.deal_value_usd`` is the output of step
  ``qualify-lead`` (step ids with ``_`` for ``-``): ``task['qualify-lead'].result.deal_value_usd``;
* in a BRANCH step's edge conditions, the name the step's own ``condition_expr`` ends with
  (``deal_value_usd``) is that value;
* in a trigger's ``filter_expr``, names are fields of the event's data:
  ``snapshot.lifecycle_stage`` is ``event.data.snapshot.lifecycle_stage``.

Function and method calls are not part of the language Treadle translates; they are
refused with a message rather than passed through to Jinja, where they would mean
something else or nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

from treadle.common.dialects.shared import quoted, task_expression

#: Given a dotted name (``("qualify_lead", "output", "x")``), the template expression it
#: stands for, or ``None`` when the name is unknown where the expression is written.
Resolver = Callable[[Sequence[str]], str | None]

_TOKEN: Final = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>==|!=|>=|<=|&&|\|\||[<>!()+\-*/%,\[\]])
    """,
    re.VERBOSE,
)
_WORDS: Final = {
    "true": "true",
    "false": "false",
    "null": "none",
    "none": "none",
    "and": "and",
    "or": "or",
    "not": "not",
    "in": "in",
}
_OPERATORS: Final = {"&&": "and", "||": "or", "!": "not"}


class ExpressionProblem(ValueError):
    """The expression cannot be translated; the message says why."""


def translate(expression: str, resolve: Resolver) -> str:
    """The Jinja expression ``expression`` stands for (raises :class:`ExpressionProblem`)."""
    if not isinstance(expression, str) or not expression.strip():
        raise ExpressionProblem("the expression is empty")
    out: list[str] = []
    position = 0
    text = expression.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ExpressionProblem(f"unexpected {text[position]!r} at column {position + 1}")
        position = match.end()
        kind = match.lastgroup
        token = match.group()
        if kind == "space":
            continue
        if kind == "string":
            out.append(quoted(_unquote(token)))
        elif kind == "number":
            out.append(token)
        elif kind == "op":
            out.append(_OPERATORS.get(token, token))
        else:
            rest = text[position:].lstrip()
            if rest.startswith("("):
                raise ExpressionProblem(
                    f"'{token}(...)': function and method calls are not supported"
                )
            out.append(_name(token, resolve))
    return _join(out)


def names_in(expression: str) -> list[tuple[str, ...]]:
    """The dotted names ``expression`` reads (keywords left out); ``[]`` if it does not lex."""
    found: list[tuple[str, ...]] = []

    def record(parts: Sequence[str]) -> str:
        found.append(tuple(parts))
        return "x"

    try:
        translate(expression, record)
    except ExpressionProblem:
        return []
    return found


def _name(token: str, resolve: Resolver) -> str:
    parts = [part.strip() for part in token.split(".")]
    if len(parts) == 1 and parts[0].lower() in _WORDS:
        return _WORDS[parts[0].lower()]
    resolved = resolve(parts)
    if resolved is None:
        raise ExpressionProblem(f"unknown name '{'.'.join(parts)}'")
    return resolved


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _join(tokens: list[str]) -> str:
    """Tokens with single spaces, except inside brackets, before ``,``/``)`` and subscripts."""
    text = ""
    for part in tokens:
        subscript = part == "[" and bool(text) and (text[-1].isalnum() or text[-1] in ")]'_")
        if not text or text.endswith(("(", "[")) or part in (")", "]", ",") or subscript:
            text += part
        else:
            text += " " + part
    return text


def step_output_resolver(
    step_ids: Sequence[str], *, values: dict[str, str] | None = None
) -> Resolver:
    """Names as step outputs (``<step id, '-' as '_'>.output.<path>``) and named values.

    ``values`` maps a bare name to the template expression it stands for (a BRANCH step's
    value); a longer name starting with it reads inside the value.
    """
    by_name: dict[str, str] = {}
    for step_id in step_ids:
        by_name.setdefault(step_id.replace("-", "_"), step_id)
    for step_id in step_ids:
        by_name[step_id] = step_id
    named = dict(values or {})

    def resolve(parts: Sequence[str]) -> str | None:
        head = parts[0]
        if head in named:
            return named[head] + "".join(f".{part}" for part in parts[1:])
        step = by_name.get(head)
        if step is None or len(parts) < 2 or parts[1] != "output":
            return None
        return task_expression(step) + ".result" + "".join(f".{part}" for part in parts[2:])

    return resolve


def event_data_resolver(parts: Sequence[str]) -> str:
    """Names in a trigger filter: fields of the event's data."""
    return "event.data." + ".".join(parts)
