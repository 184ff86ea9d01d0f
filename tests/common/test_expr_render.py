"""Rendering workflow values: types kept, mixed text, undefined values, data-first lookups."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from treadle.common.errors import ExpressionError
from treadle.common.expr import TemplateEngine, expression_source, is_template


class LazyNamespace(Mapping[str, Any]):
    """Like the scheduler's lazy views: computes values on access, not a dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self.reads: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.reads.append(key)
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def secret(self) -> str:
        return "internal method"


@pytest.fixture(scope="module")
def engine() -> TemplateEngine:
    return TemplateEngine()


@pytest.fixture
def context() -> dict[str, Any]:
    return {
        "parameters": {"message": "hello", "regions": ["us", "eu", "ap"], "count": 3},
        "workflow": {"processed_message": "HELLO", "rollback_initiated": False},
        "task": {
            "deploy": {
                "results": [{"health_url": "http://a"}, {"health_url": "http://b"}],
                "result": {"items": ["x", "y"], "keys": "k", "count": 7, "get": "g"},
            },
        },
        "system": {"timestamp": 1000},
        "item": {"name": "one"},
        "succeeded": lambda: True,
        "failed": lambda: False,
    }


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ parameters.count }}", 3),
        ("{{ parameters.count > 2 }}", True),
        ("{{ parameters.regions }}", ["us", "eu", "ap"]),
        ("{{ [1, 2] }}", [1, 2]),
        ("{{ 3 }}", 3),
        ("{{ 1.5 }}", 1.5),
        ("{{ none }}", None),
        ("{{ 'a' }}", "a"),
        ("{{ {'k': [true, none]} }}", {"k": [True, None]}),
        ("{{ '42' }}", "42"),
        ("{{ system.timestamp - 400 }}", 600),
        ("{{ succeeded() }}", True),
        ("  {{ parameters.count }}\n", 3),
        ("{{\n  parameters.count\n}}", 3),
        ("{{- parameters.count -}}", 3),
    ],
)
def test_single_expression_keeps_its_type(
    engine: TemplateEngine, context: dict[str, Any], template: str, expected: Any
) -> None:
    result = engine.render(template, context)
    assert result == expected
    assert type(result) is type(expected)


def test_mixed_text_renders_to_a_string(engine: TemplateEngine, context: dict[str, Any]) -> None:
    assert (
        engine.render("Workflow complete. Result: {{ workflow.processed_message }}", context)
        == "Workflow complete. Result: HELLO"
    )
    assert engine.render("{{ parameters.count }}{{ parameters.count }}", context) == "33"
    assert engine.render("n={{ parameters.count }}\n", context) == "n=3\n"


def test_mixed_text_prints_data_the_json_way(
    engine: TemplateEngine, context: dict[str, Any]
) -> None:
    rendered = engine.render(
        "{{ parameters.regions }} {{ true }} {{ false }} [{{ none }}] {{ {'a': 1} }}", context
    )
    assert rendered == '["us","eu","ap"] true false [] {"a":1}'
    urls = "{{ task.deploy.results | map(attribute='health_url') }} {{ range(2) }}"
    assert engine.render(urls, context) == '["http://a","http://b"] [0,1]'


def test_plain_strings_are_returned_as_is(engine: TemplateEngine) -> None:
    text = "no templates here { or } here"
    assert engine.render(text, {}) is text


def test_containers_are_rendered_recursively_without_touching_keys(
    engine: TemplateEngine, context: dict[str, Any]
) -> None:
    value = {
        "{{ parameters.message }}": ["{{ parameters.count }}", "plain", 5, None],
        "nested": {"deep": ("{{ parameters.message | upper }}",)},
    }
    snapshot = repr(value)
    rendered = engine.render(value, context)
    assert rendered == {
        "{{ parameters.message }}": [3, "plain", 5, None],
        "nested": {"deep": ["HELLO"]},
    }
    assert repr(value) == snapshot


def test_rendered_values_do_not_share_containers_with_the_context(
    engine: TemplateEngine, context: dict[str, Any]
) -> None:
    regions = engine.render("{{ parameters.regions }}", context)
    regions.append("changed")
    assert context["parameters"]["regions"] == ["us", "eu", "ap"]


def test_undefined_chains_to_none_in_a_single_expression(
    engine: TemplateEngine, context: dict[str, Any]
) -> None:
    assert engine.render("{{ task.missing.result.value }}", context) is None
    assert engine.render("{{ nothing_here }}", context) is None
    assert engine.render("{{ parameters.regions[10] }}", context) is None
    assert engine.render("{{ [parameters.nope, 1] }}", context) == [None, 1]


def test_undefined_chains_to_empty_text_in_mixed_text(
    engine: TemplateEngine, context: dict[str, Any]
) -> None:
    assert engine.render("a{{ task.missing.result.value }}b", context) == "ab"


def test_undefined_works_with_tests_and_defaults(
    engine: TemplateEngine, context: dict[str, Any]
) -> None:
    assert engine.render("{{ task.missing.result is defined }}", context) is False
    assert engine.render("{{ task.missing.result | default('fallback') }}", context) == "fallback"
    assert engine.render("{{ task.missing.result | length }}", context) == 0
    assert engine.render("{{ workflow.nope == true }}", context) is False


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ task.missing.result.n > 0 }}", "'missing' is undefined"),
        ("{{ nothing_here + 1 }}", "'nothing_here' is undefined"),
        ("{{ not_a_function() }}", "'not_a_function' is undefined"),
    ],
)
def test_using_an_undefined_value_is_an_error(
    engine: TemplateEngine, context: dict[str, Any], template: str, reason: str
) -> None:
    with pytest.raises(ExpressionError) as caught:
        engine.render(template, context)
    assert str(caught.value) == f'cannot render "{template}": {reason}'
    assert caught.value.template == template


def test_type_errors_name_the_expression_and_the_reason(engine: TemplateEngine) -> None:
    with pytest.raises(ExpressionError) as caught:
        engine.render("{{ a > 1 }}", {"a": None})
    assert str(caught.value) == (
        "cannot render \"{{ a > 1 }}\": '>' not supported between 'NoneType' and 'int'"
    )


def test_mapping_keys_win_over_dict_methods(
    engine: TemplateEngine, context: dict[str, Any]
) -> None:
    result = "task.deploy.result"
    assert engine.render(f"{{{{ {result}.items }}}}", context) == ["x", "y"]
    assert engine.render(f"{{{{ {result}.keys }}}}", context) == "k"
    assert engine.render(f"{{{{ {result}.count }}}}", context) == 7
    assert engine.render(f"{{{{ {result}.get }}}}", context) == "g"
    assert engine.render("{{ parameters.items() | list | length }}", context) == 3


def test_custom_mappings_work_like_dicts(engine: TemplateEngine) -> None:
    inner = LazyNamespace({"items": [1, 2], "name": "n", "values": "data"})
    namespace = LazyNamespace({"child": inner, "n": 2})
    context = {"ns": namespace}
    assert engine.render("{{ ns.child.items }}", context) == [1, 2]
    assert engine.render("{{ ns.child.values }}", context) == "data"
    assert engine.render("{{ ns['child'].name }}", context) == "n"
    assert engine.render("{{ ns | length }}", context) == 2
    assert engine.render("{{ length(ns.child) }}", context) == 3
    assert engine.render("{{ 'child' in ns }}", context) is True
    assert engine.render("{{ ns | list }}", context) == ["child", "n"]
    assert engine.render("{% for k in ns %}{{ k }};{% endfor %}", context) == "child;n;"
    assert engine.render("{{ ns.child.name | upper }}", context) == "N"
    assert engine.render("{{ ns.child | to_json }}", context) == (
        '{"items":[1,2],"name":"n","values":"data"}'
    )
    assert engine.render("{{ ns }}", context) == {
        "child": {"items": [1, 2], "name": "n", "values": "data"},
        "n": 2,
    }
    assert engine.render("x {{ ns.child }}", context) == (
        'x {"items":[1,2],"name":"n","values":"data"}'
    )
    assert engine.render("{{ ns.missing.deeper }}", context) is None


def test_the_context_itself_may_be_a_custom_mapping(engine: TemplateEngine) -> None:
    context = LazyNamespace({"a": [1, 2], "b": {"c": 3}})
    assert engine.render("{{ length(a) + b.c }}", context) == 5
    assert engine.evaluate("b.c == 3", context) is True
    assert engine.render("{{ missing }}", context) is None


def test_custom_mapping_methods_are_not_reachable(engine: TemplateEngine) -> None:
    namespace = LazyNamespace({"a": 1})
    assert engine.render("{{ ns.secret }}", {"ns": namespace}) is None


def test_context_callables_and_helpers(engine: TemplateEngine, context: dict[str, Any]) -> None:
    assert engine.render("{{ succeeded() and not failed() }}", context) is True
    assert engine.render("{{ length(parameters.regions) }}", context) == 3
    assert engine.render("{{ length(none) }}", context) == 0
    assert engine.render("{{ length(x) }}", {"length": lambda _: "overridden"}) == "overridden"


def test_generators_and_markup_become_plain_values(
    engine: TemplateEngine, context: dict[str, Any]
) -> None:
    urls = engine.render("{{ task.deploy.results | map(attribute='health_url') }}", context)
    assert urls == ["http://a", "http://b"]
    escaped = engine.render("{{ '<b>' | e }}", context)
    assert escaped == "&lt;b&gt;"
    assert type(escaped) is str
    assert engine.render("{{ range(3) }}", context) == [0, 1, 2]


def test_conformance_expressions(engine: TemplateEngine, context: dict[str, Any]) -> None:
    context["workflow"]["rollback_initiated"] = True
    assert engine.render("{{ parameters.regions | join(', ') }}", context) == "us, eu, ap"
    assert engine.render("{{ parameters.regions | first }}", context) == "us"
    assert engine.render("{{ parameters.regions | slice(start=1) }}", context) == ["eu", "ap"]
    assert (
        engine.render("{{ workflow.rollback_initiated ? 'rolled_back' : 'success' }}", context)
        == "rolled_back"
    )
    assert engine.render(
        "{{ task.deploy.results | map(attribute='health_url') | list }}", context
    ) == ["http://a", "http://b"]


def test_evaluate_accepts_bare_expressions_and_single_templates(
    engine: TemplateEngine, context: dict[str, Any]
) -> None:
    assert engine.evaluate("parameters.count > 1", context) is True
    assert engine.evaluate("{{ parameters.regions }}", context) == ["us", "eu", "ap"]
    assert engine.evaluate("parameters.count > 5 ? 'big' : 'small'", context) == "small"
    assert engine.evaluate("missing.thing", context) is None


def test_evaluate_refuses_mixed_text(engine: TemplateEngine) -> None:
    with pytest.raises(ExpressionError, match="must be one"):
        engine.evaluate("count is {{ count }}", {"count": 1})


def test_evaluate_reports_bad_expressions(engine: TemplateEngine) -> None:
    with pytest.raises(ExpressionError, match=r'^invalid expression "a >": '):
        engine.evaluate("a >", {})
    with pytest.raises(ExpressionError, match="unexpected 'b' after the expression"):
        engine.evaluate("a b", {})
    with pytest.raises(ExpressionError, match="empty"):
        engine.evaluate("  ", {})


def test_truthy(engine: TemplateEngine, context: dict[str, Any]) -> None:
    assert engine.truthy(None, context) is True
    assert engine.truthy("{{ succeeded() }}", context) is True
    assert engine.truthy("{{ failed() }}", context) is False
    assert engine.truthy("parameters.regions", context) is True
    assert engine.truthy("{{ task.missing.result }}", context) is False
    assert engine.truthy("{{ task.deploy.results | length > 1 }}", context) is True


def test_text_helpers_are_reexported() -> None:
    assert is_template("a {{ b }}")
    assert not is_template("a b")
    assert expression_source("  {{ a > 1 }} ") == "a > 1"
    assert expression_source("x {{ a }}") is None


def test_compiled_templates_are_cached(engine: TemplateEngine) -> None:
    engine.render("{{ cached_value }}", {"cached_value": 1})
    before = engine._template.cache_info().hits
    assert engine.render("{{ cached_value }}", {"cached_value": 2}) == 2
    assert engine._template.cache_info().hits == before + 1
