"""Tera's ``a ? b : c`` in workflow templates, rewritten to Jinja before compiling."""

from __future__ import annotations

from typing import Any

import pytest

from treadle.common.expr import TemplateEngine
from treadle.common.expr.tera import TernaryError, rewrite_expression, rewrite_template


@pytest.fixture(scope="module")
def engine() -> TemplateEngine:
    return TemplateEngine()


@pytest.mark.parametrize(
    ("template", "flag", "expected"),
    [
        ("{{ flag ? 'rolled_back' : 'success' }}", True, "rolled_back"),
        ("{{ flag ? 'rolled_back' : 'success' }}", False, "success"),
        ("{{ flag ? 'a?b' : 'c:d' }}", False, "c:d"),
        ('{{ flag ? "what?" : "x ? y : z" }}', True, "what?"),
        ("{{ flag ? [1, 2][0:1] : {'k': 1} }}", True, [1]),
        ("{{ flag ? [1, 2][0:1] : {'k': 1} }}", False, {"k": 1}),
        ("{{ {'k': flag ? 1 : 2, 'j': [1, 2, 3][1:]} }}", False, {"k": 2, "j": [2, 3]}),
        ("{{ [flag ? 1 : 2, 3] }}", True, [1, 3]),
        ("{{ (flag ? 'x' : 'y') | upper }}", True, "X"),
        ("{{ flag\n  ? 'multi'\n  : 'line' }}", True, "multi"),
        ("{{- flag ? 1 : 2 -}}", False, 2),
    ],
)
def test_conditional_values(
    engine: TemplateEngine, template: str, flag: bool, expected: Any
) -> None:
    assert engine.render(template, {"flag": flag}) == expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [(1, "one"), (2, "two"), (3, "many")],
)
def test_nested_conditionals_on_the_right(engine: TemplateEngine, n: int, expected: str) -> None:
    template = "{{ n == 1 ? 'one' : n == 2 ? 'two' : 'many' }}"
    assert engine.render(template, {"n": n}) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(True, True, "both"), (True, False, "a only"), (False, True, "not a")],
)
def test_nested_conditionals_in_the_middle(
    engine: TemplateEngine, a: bool, b: bool, expected: str
) -> None:
    assert engine.render("{{ a ? b ? 'both' : 'a only' : 'not a' }}", {"a": a, "b": b}) == expected
    assert (
        engine.render("{{ a ? (b ? 'both' : 'a only') : 'not a' }}", {"a": a, "b": b}) == expected
    )


def test_conditionals_in_mixed_text_and_arguments(engine: TemplateEngine) -> None:
    template = "status: {{ ok ? 'up' : 'down' }}, {{ [1, 2] | join(ok ? '+' : '-') }}"
    assert engine.render(template, {"ok": True}) == "status: up, 1+2"


def test_bare_expressions_are_rewritten(engine: TemplateEngine) -> None:
    assert engine.evaluate("n > 1 ? 'big' : 'small'", {"n": 5}) == "big"
    assert rewrite_expression("a ? b : c") == "(b if a else c)"


def test_text_outside_expressions_is_left_alone() -> None:
    template = "Why? {# a ? b #}{% raw %}{{ a ? b : c }}{% endraw %} {{ a ? b : c }}"
    assert rewrite_template(template) == (
        "Why? {# a ? b #}{% raw %}{{ a ? b : c }}{% endraw %} {{ (b if a else c) }}"
    )


def test_rewrite_keeps_line_breaks() -> None:
    template = "{{ a\n ? b\n : c }}\n{{ x ? y : z }}"
    assert rewrite_template(template).count("\n") == template.count("\n")


def test_question_mark_without_colon_is_a_problem_at_its_line(engine: TemplateEngine) -> None:
    with pytest.raises(TernaryError):
        rewrite_template("{{ a ? b }}")
    problems = engine.check("first line\nsecond {{ a ? b }}")
    assert len(problems) == 1
    assert problems[0].line == 2
    assert problems[0].col == 13
    assert "without a matching ':'" in problems[0].message
