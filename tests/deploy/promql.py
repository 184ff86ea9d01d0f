"""The metric names a PromQL expression reads: a small tokenizer, enough for the alert rules
and the dashboard's queries, not a PromQL parser.

A name is an identifier that is not a function or aggregation called with ``(``, not a
keyword or set operator, and not inside a label matcher ``{...}``, a range or subquery
``[...]``, a string, or the label list of ``by``/``without``/``on``/``ignoring``/
``group_left``/``group_right``. ``{__name__="x"}`` names ``x``. Grafana's variables
(``$workflow``, ``$__rate_interval``) are skipped.
"""

from __future__ import annotations

import re

#: PromQL's functions (Prometheus 2.42).
# fmt: off
FUNCTIONS = frozenset((
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
    "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
    "delta", "deriv", "end", "exp", "floor", "histogram_count", "histogram_fraction",
    "histogram_quantile", "histogram_sum", "holt_winters", "hour", "idelta", "increase",
    "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
    "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
    "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar",
    "sgn", "sin", "sinh", "sort", "sort_desc", "sqrt", "start", "stddev_over_time",
    "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
))
#: Aggregation operators: ``sum by (x) (...)`` or ``sum (...) by (x)``.
AGGREGATIONS = frozenset((
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
))
# fmt: on
#: Keywords whose next parenthesised group is a list of label names.
LABEL_LISTS = frozenset(["by", "without", "on", "ignoring", "group_left", "group_right"])
#: Other words that are never metrics.
KEYWORDS = frozenset(["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"])

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<variable>\$\{?\w+\}?)
  | (?P<number>(?:0x[0-9a-fA-F]+|\d[\w.]*|\.\d[\w.]*))
  | (?P<identifier>[A-Za-z_:][\w:]*)
  | (?P<open>[({\[])
  | (?P<close>[)}\]])
  | (?P<operator>==|!=|=~|!~|>=|<=|[-+*/%^<>=,@])
    """,
    re.VERBOSE,
)
_PAIRS = {"(": ")", "{": "}", "[": "]"}
_MATCH_OPS = frozenset(("=", "!=", "=~", "!~"))


class PromQLSyntaxError(ValueError):
    """The expression has a character or a bracket this tokenizer cannot place."""


def _tokens(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(expr):
        match = _TOKEN.match(expr, position)
        if match is None:
            raise PromQLSyntaxError(f"unexpected {expr[position]!r} at {position} in {expr!r}")
        kind = match.lastgroup
        assert kind is not None
        if kind not in ("space", "comment"):
            tokens.append((kind, match.group()))
        position = match.end()
    return tokens


def _skip_group(tokens: list[tuple[str, str]], start: int, expr: str) -> int:
    """The index just past the bracketed group opening at ``start``."""
    stack: list[str] = []
    for index in range(start, len(tokens)):
        kind, text = tokens[index]
        if kind == "open":
            stack.append(_PAIRS[text])
        elif kind == "close":
            if not stack or stack.pop() != text:
                raise PromQLSyntaxError(f"unbalanced {text!r} in {expr!r}")
            if not stack:
                return index + 1
    raise PromQLSyntaxError(f"unclosed bracket in {expr!r}")


def _check_balanced(tokens: list[tuple[str, str]], expr: str) -> None:
    stack: list[str] = []
    for kind, text in tokens:
        if kind == "open":
            stack.append(_PAIRS[text])
        elif kind == "close" and (not stack or stack.pop() != text):
            raise PromQLSyntaxError(f"unbalanced {text!r} in {expr!r}")
    if stack:
        raise PromQLSyntaxError(f"unclosed bracket in {expr!r}")


def _matched_labels(tokens: list[tuple[str, str]], start: int, end: int) -> frozenset[str]:
    """The label names of the matchers ``tokens[start:end]``."""
    return frozenset(
        text
        for index, (kind, text) in enumerate(tokens[start:end], start)
        if kind == "identifier" and index + 1 < end and tokens[index + 1][1] in _MATCH_OPS
    )


def _names_in_matchers(tokens: list[tuple[str, str]], start: int, end: int) -> set[str]:
    """``__name__="x"`` inside the label matchers ``tokens[start:end]``."""
    names = set()
    for index in range(start, end - 2):
        (kind, text), (_, op), (value_kind, value) = tokens[index : index + 3]
        if kind == "identifier" and text == "__name__" and op == "=" and value_kind == "string":
            names.add(value[1:-1])
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` reads."""
    return {name for name, _labels in selectors(expr)}


def selectors(expr: str) -> set[tuple[str, frozenset[str]]]:
    """Each series selector of ``expr``: the metric name and the label names it matches on."""
    tokens = _tokens(expr)
    names: set[tuple[str, frozenset[str]]] = set()
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if kind == "open" and text == "{":
            end = _skip_group(tokens, index, expr)
            for name in _names_in_matchers(tokens, index + 1, end - 1):
                names.add((name, _matched_labels(tokens, index + 1, end - 1) - {"__name__"}))
            index = end
            continue
        if kind == "open" and text == "[":
            index = _skip_group(tokens, index, expr)
            continue
        if kind == "identifier":
            lowered = text.lower()
            if lowered in LABEL_LISTS and following == "(":
                index = _skip_group(tokens, index + 1, expr)
                continue
            is_call = following == "(" or (lowered in AGGREGATIONS and following in LABEL_LISTS)
            if (lowered in FUNCTIONS or lowered in AGGREGATIONS) and is_call:
                index += 1
                continue
            if lowered not in KEYWORDS and lowered not in LABEL_LISTS:
                labels: frozenset[str] = frozenset()
                if following == "{":
                    end = _skip_group(tokens, index + 1, expr)
                    labels = _matched_labels(tokens, index + 2, end - 1)
                    index = end
                    names.add((text, labels))
                    continue
                names.add((text, labels))
        index += 1
    _check_balanced(tokens, expr)
    return names
