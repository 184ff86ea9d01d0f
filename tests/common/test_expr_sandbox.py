"""Templates cannot reach Python internals, change data, or exhaust memory or CPU."""

from __future__ import annotations

import time
from typing import Any

import pytest

from treadle.common.errors import ExpressionError
from treadle.common.expr import TemplateEngine, guards


@pytest.fixture(scope="module")
def engine() -> TemplateEngine:
    return TemplateEngine()


def refused(engine: TemplateEngine, template: str, **context: Any) -> str:
    started = time.perf_counter()
    with pytest.raises(ExpressionError) as caught:
        engine.render(template, context)
    assert time.perf_counter() - started < 1.0, "the limit must fail fast"
    assert caught.value.template == template
    return str(caught.value)


@pytest.mark.parametrize(
    ("template", "name"),
    [
        ("{{ ''.__class__ }}", "__class__"),
        ("{{ ''.__class__.__mro__ }}", "__class__"),
        ("x {{ ''.__class__ }}", "__class__"),
        ("{{ x._private }}", "_private"),
        ("{{ x['_private'] }}", "_private"),
        ("{{ missing._private }}", "_private"),
        ("{{ [1]._x }}", "_x"),
        ("{{ f.__globals__ }}", "__globals__"),
    ],
)
def test_private_names_are_refused(engine: TemplateEngine, template: str, name: str) -> None:
    message = refused(engine, template, x={"_private": 1}, f=lambda: None)
    assert message.endswith(f"access to '{name}' is not allowed")


def test_data_cannot_be_changed(engine: TemplateEngine) -> None:
    data = {"items": [1]}
    assert "access to 'append' is not allowed" in refused(
        engine, "{{ d['items'].append(2) }}", d=data
    )
    assert "'update' is undefined" in refused(engine, "{{ d.update({'x': 1}) }}", d=data)
    assert "access to 'pop' is not allowed" in refused(engine, "{{ d['items'].pop() }}", d=data)
    assert data == {"items": [1]}


@pytest.mark.parametrize(
    "template",
    [
        "{% include 'x.yaml' %}",
        "{% import 'm' as m %}",
        "{% extends 'base' %}",
        "{% macro m() %}{% endmacro %}",
    ],
)
def test_loader_and_macro_tags_are_refused(engine: TemplateEngine, template: str) -> None:
    problems = engine.check(template)
    assert len(problems) == 1
    assert "is not supported in workflow templates" in problems[0].message


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ 'a' * 100000000 }}", "repeating text with '*' would be 100,000,000 characters"),
        ("{{ 100000000 * 'a' }}", "repeating text with '*'"),
        ("{{ [0] * 100000000 }}", "repeating a list with '*' would be 100,000,000 items"),
        ("{{ 2 ** 100000000 }}", "the result of '**' would have about 100,000,000 bits"),
        ("{{ 2 ** 10000000 }}", "the result of '**'"),
        ("{{ (10 ** 3000) * (10 ** 3000) }}", "the result of '*'"),
        ("{{ '%099999999d' % 1 }}", "a '%' formatted field"),
        ("{{ '%*d' % (5, 1) }}", "'*' field widths are not allowed"),
        ("{{ '{:>99999999}'.format(1) }}", "a formatted field"),
        ("{{ 'x'.center(100000000) }}", "the result of 'center'"),
        ("{{ 'x'.zfill(100000000) }}", "the result of 'zfill'"),
        ("{{ ('x' * 10000).replace('', 'y' * 10000) }}", "the result of 'replace'"),
        ("{{ ('x' * 1000000).join(['a'] * 100000) }}", "the joined text"),
        ("{{ 'x' | center(100000000) }}", "the centered text"),
        ("{{ ('a\n' * 1000) | indent(100000) }}", "the indented text"),
        ("{{ '%099999999d' | format(1) }}", "a '%' formatted field"),
        ("{{ [1] | batch(100000000, 0) }}", "batch(n, fill_with)"),
        ("{{ [1] | slice(100000000) }}", "slice(n)"),
        ("{{ range(100000000) }}", "Range too big"),
        ("{{ (['x' * 10000000] * 100) | join }}", "the joined text"),
    ],
)
def test_huge_results_fail_fast(engine: TemplateEngine, template: str, reason: str) -> None:
    assert reason in refused(engine, template)


def test_doubling_in_a_loop_is_stopped(engine: TemplateEngine) -> None:
    concat = (
        "{% set ns = namespace(s='x') %}"
        "{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}"
    )
    assert "the result of '~'" in refused(engine, concat)
    plus = (
        "{% set ns = namespace(s='x') %}"
        "{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}"
    )
    assert "joining text with '+'" in refused(engine, plus)
    lists = (
        "{% set ns = namespace(s=[1]) %}"
        "{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}"
    )
    assert "joining lists with '+'" in refused(engine, lists)


def test_loops_are_bounded(engine: TemplateEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guards, "MAX_LOOP_STEPS", 1000)
    nested = "{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}"
    assert "loops ran more than 1,000 iterations" in refused(engine, nested)
    assert engine.render("{% for i in range(10) %}{{ i }}{% endfor %}", {}) == "0123456789"


def test_rendered_text_is_bounded() -> None:
    engine = TemplateEngine(max_output_bytes=1000)
    message = refused(engine, "{% for i in range(100) %}{{ 'x' * 20 }}{% endfor %}")
    assert "the rendered text is longer than the limit of 1,000 bytes" in message
    assert "the rendered text (in bytes)" in refused(engine, "{{ s }}", s="é" * 600)
    assert "would be 2,000 characters" in refused(engine, "{{ 'x' * 2000 }}")
    assert engine.render("{{ 'x' * 100 }}", {}) == "x" * 100


def test_ordinary_arithmetic_still_works(engine: TemplateEngine) -> None:
    assert engine.render("{{ 2 ** 10 * 3 }}", {}) == 3072
    assert engine.render("{{ 'ab' * 3 }}", {}) == "ababab"
    assert engine.render("{{ [1] * 3 + [2] }}", {}) == [1, 1, 1, 2]
    assert engine.render("{{ '%05.1f' % 3.14159 }}", {}) == "003.1"
    assert engine.render("{{ '{:>4}'.format(7) }}", {}) == "   7"
    assert engine.render("{{ 7 % 3 }}", {}) == 1
    assert engine.render("{{ 'a' ~ 1 ~ none }}", {}) == "a1None"


def test_division_by_zero_is_an_expression_error(engine: TemplateEngine) -> None:
    assert refused(engine, "{{ 1 / 0 }}").endswith(": division by zero")
