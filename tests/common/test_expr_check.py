"""What the validator learns from a template without running it: problems and names read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from treadle.common.errors import ExpressionError
from treadle.common.expr import TemplateEngine, TemplateProblem, is_template

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "attune"


@pytest.fixture(scope="module")
def engine() -> TemplateEngine:
    return TemplateEngine()


def test_valid_templates_have_no_problems(engine: TemplateEngine) -> None:
    assert engine.check("{{ a.b | length > 0 }}") == []
    assert engine.check("plain text") == []
    assert engine.check("{% for x in xs %}{{ x }}{% endfor %}") == []


def test_problems_point_at_the_line_inside_the_template(engine: TemplateEngine) -> None:
    template = "first line\n{% if ok %}\n  value: {{ a + }}\n{% endif %}\n"
    problems = engine.check(template)
    assert len(problems) == 1
    assert problems[0].line == 3
    assert problems[0].col is None


def test_unknown_filters_are_reported_with_a_suggestion(engine: TemplateEngine) -> None:
    problems = engine.check("a\nb\n{{ items | lenght }}")
    assert problems == [
        TemplateProblem("unknown filter 'lenght' (did you mean 'length'?)", 3, None)
    ]


def test_unclosed_blocks_are_reported(engine: TemplateEngine) -> None:
    problems = engine.check("{% if a %}\nyes\n")
    assert len(problems) == 1
    assert "endif" in problems[0].message


def test_check_as_expression(engine: TemplateEngine) -> None:
    assert engine.check("a >", as_expression=True)[0].line == 1
    assert engine.check("a > 1", as_expression=True) == []
    assert engine.check("a\n and", as_expression=True)[0].line == 2
    problems = engine.check("x {{ a }}", as_expression=True)
    assert "must be one {{ expression }}" in problems[0].message


def test_problem_text(engine: TemplateEngine) -> None:
    assert str(TemplateProblem("bad", 2)) == "bad (line 2)"
    assert str(TemplateProblem("bad", 2, 5)) == "bad (line 2, col 5)"


def test_rendering_a_broken_template_names_it(engine: TemplateEngine) -> None:
    with pytest.raises(ExpressionError) as caught:
        engine.render({"k": ["ok", "{{ a + }}"]}, {})
    assert str(caught.value).startswith('invalid template "{{ a + }}": ')
    assert "(line 1)" in str(caught.value)
    assert caught.value.template == "{{ a + }}"


def test_long_templates_are_shortened_in_messages(engine: TemplateEngine) -> None:
    template = "{{ nope() }}" + "x" * 500
    with pytest.raises(ExpressionError) as caught:
        engine.render(template, {})
    assert len(str(caught.value)) < 300
    assert caught.value.template == template


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ task.x.result.y | length }}", {("task", "x", "result", "y")}),
        ("{{ succeeded() }}", {("succeeded",)}),
        ("{{ task['x'].result }}", {("task", "x", "result")}),
        ("{{ task.x.results[0].url }}", {("task", "x", "results")}),
        ("{{ a[b].c }}", {("a",), ("b",)}),
        (
            "{{ paramters.name }} and {{ parameters.name }}",
            {("paramters", "name"), ("parameters", "name")},
        ),
        ("{{ x ? y.z : 'w' }}", {("x",), ("y", "z")}),
        (
            "{% for r in parameters.regions %}{{ r.name }}{{ loop.index }}{% endfor %}",
            {("parameters", "regions")},
        ),
        ("{% set n = parameters.n %}{{ n + 1 }}", {("parameters", "n")}),
        ("{{ length(items) }} {{ range(3) }}", {("items",)}),
        ("{{ 'parameters.not_a_name' }}", set()),
        ("{# workflow.comment #}", set()),
        ("plain", set()),
        ("{{ xs | map(attribute='health_url') | list }}", {("xs",)}),
        ("{{ (a or b).c }}", {("a",), ("b",)}),
    ],
)
def test_names_read_by_a_template(
    engine: TemplateEngine, template: str, expected: set[tuple[str, ...]]
) -> None:
    assert engine.names(template) == expected


def test_names_of_bare_expressions(engine: TemplateEngine) -> None:
    assert engine.names("task.a.status == 'ok'", as_expression=True) == {("task", "a", "status")}
    assert engine.names("task.a.status == 'ok'") == set()


def test_names_of_a_broken_template_raise(engine: TemplateEngine) -> None:
    with pytest.raises(ExpressionError, match="invalid template"):
        engine.names("{{ a + }}")


def test_global_names(engine: TemplateEngine) -> None:
    assert {"length", "range", "dict", "namespace"} <= engine.global_names
    assert "lipsum" not in engine.global_names
    assert {"to_json", "from_json", "slice", "map", "regex_replace"} <= engine.filter_names
    assert not any(name.startswith("treadle") for name in engine.filter_names)


def _templates(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node] if is_template(node) else []
    if isinstance(node, dict):
        return [text for value in node.values() for text in _templates(value)]
    if isinstance(node, list):
        return [text for value in node for text in _templates(value)]
    return []


def test_every_template_in_the_attune_fixtures_compiles(engine: TemplateEngine) -> None:
    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance fixtures not found at {CONFORMANCE}")
    templates = [
        text
        for path in sorted(CONFORMANCE.rglob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        for text in _templates(document)
    ]
    assert len(templates) > 50
    problems = {text: engine.check(text) for text in templates if engine.check(text)}
    assert problems == {}
