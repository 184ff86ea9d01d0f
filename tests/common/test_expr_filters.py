"""The filters Treadle adds or changes, as a workflow author uses them."""

from __future__ import annotations

from typing import Any

import pytest

from treadle.common.errors import ExpressionError
from treadle.common.expr import TemplateEngine
from treadle.common.expr import filters as filter_module


@pytest.fixture(scope="module")
def engine() -> TemplateEngine:
    return TemplateEngine()


def render(engine: TemplateEngine, template: str, **context: Any) -> Any:
    return engine.render(template, context)


def test_from_json(engine: TemplateEngine) -> None:
    assert render(engine, "{{ text | from_json }}", text='{"a": [1, 2]}') == {"a": [1, 2]}
    assert render(engine, "{{ missing | from_json }}") is None
    with pytest.raises(ExpressionError, match=r"from_json: invalid JSON"):
        render(engine, "{{ 'nope' | from_json }}")
    with pytest.raises(ExpressionError, match="from_json expects JSON text, got a list"):
        render(engine, "{{ [1] | from_json }}")


def test_to_json_is_compact_in_insertion_order_and_keeps_unicode(engine: TemplateEngine) -> None:
    data = {"z": 1, "a": ["é", None, True]}
    assert render(engine, "{{ data | to_json }}", data=data) == '{"z":1,"a":["é",null,true]}'
    assert render(engine, "{{ data | to_json(indent=2) }}", data={"a": 1}) == '{\n  "a": 1\n}'
    assert render(engine, "{{ missing | to_json }}") == "null"


def test_slice_with_start_and_end_cuts_lists_and_text(engine: TemplateEngine) -> None:
    regions = ["us", "eu", "ap", "sa"]
    assert render(engine, "{{ r | slice(start=1) }}", r=regions) == ["eu", "ap", "sa"]
    assert render(engine, "{{ r | slice(end=2) }}", r=regions) == ["us", "eu"]
    assert render(engine, "{{ r | slice(start=1, end=-1) }}", r=regions) == ["eu", "ap"]
    assert render(engine, "{{ 'abcdef' | slice(start=2, end=4) }}") == "cd"
    assert render(engine, "{{ missing | slice(start=1) }}") == []


def test_slice_with_a_count_keeps_jinja_meaning(engine: TemplateEngine) -> None:
    assert render(engine, "{{ [1, 2, 3, 4, 5] | slice(2) }}") == [[1, 2, 3], [4, 5]]
    assert render(engine, "{{ [1, 2, 3] | slice(2, 0) }}") == [[1, 2], [3, 0]]
    with pytest.raises(ExpressionError, match="either a number of groups"):
        render(engine, "{{ [1] | slice(2, start=1) }}")
    with pytest.raises(ExpressionError, match="at least 1"):
        render(engine, "{{ [1] | slice(0) }}")


def test_batch(engine: TemplateEngine) -> None:
    assert render(engine, "{{ [1, 2, 3] | batch(2) }}") == [[1, 2], [3]]
    assert render(engine, "{{ [1, 2, 3] | batch(2, 0) }}") == [[1, 2], [3, 0]]


def test_regex_replace(engine: TemplateEngine) -> None:
    assert render(engine, r"{{ 'v1.2.3' | regex_replace('\\.', '-') }}") == "v1-2-3"
    assert render(engine, r"{{ 'ab12' | regex_replace('([a-z]+)(\\d+)', '\\2\\1') }}") == "12ab"
    assert render(engine, "{{ 'ABC' | regex_replace('b', 'x', ignorecase=true) }}") == "AxC"
    assert render(engine, "{{ 'aaa' | regex_replace('a', 'b', count=1) }}") == "baa"
    assert render(engine, "{{ missing | regex_replace('a', 'b') }}") == ""
    with pytest.raises(ExpressionError, match="regex_replace expects text, got a dict"):
        render(engine, "{{ {} | regex_replace('a', 'b') }}")


def test_regex_search_returns_a_bool(engine: TemplateEngine) -> None:
    assert render(engine, "{{ 'error: disk full' | regex_search('^error') }}") is True
    assert render(engine, "{{ 'all good' | regex_search('^error') }}") is False
    assert render(engine, "{{ 'ERROR' | regex_search('error', ignorecase=true) }}") is True
    assert render(engine, "{{ 'a\nerror' | regex_search('^error', multiline=true) }}") is True
    assert render(engine, "{{ missing | regex_search('x') }}") is False
    with pytest.raises(ExpressionError, match="cannot render"):
        render(engine, "{{ 'x' | regex_search('(') }}")


def test_keys_values_items_as_lists(engine: TemplateEngine) -> None:
    data = {"b": 1, "a": 2}
    assert render(engine, "{{ d | keys }}", d=data) == ["b", "a"]
    assert render(engine, "{{ d | values }}", d=data) == [1, 2]
    assert render(engine, "{{ d | items }}", d=data) == [["b", 1], ["a", 2]]
    assert render(engine, "{% for k, v in d | items %}{{ k }}={{ v }};{% endfor %}", d=data) == (
        "b=1;a=2;"
    )
    assert render(engine, "{{ missing | keys }}") == []
    with pytest.raises(ExpressionError, match="keys expects a mapping, got a list"):
        render(engine, "{{ [1] | keys }}")


def test_unique_keeps_first_seen_order_and_handles_unhashable_items(
    engine: TemplateEngine,
) -> None:
    assert render(engine, "{{ ['b', 'a', 'b', 'B'] | unique }}") == ["b", "a", "B"]
    assert render(engine, "{{ ['b', 'B'] | unique(case_sensitive=false) }}") == ["b"]
    items = [{"id": 1}, {"id": 1}, {"id": 2}]
    assert render(engine, "{{ x | unique }}", x=items) == [{"id": 1}, {"id": 2}]
    rows = [{"n": "a", "v": 1}, {"n": "a", "v": 2}]
    assert render(engine, "{{ x | unique(attribute='n') }}", x=rows) == [rows[0]]


def test_flatten(engine: TemplateEngine) -> None:
    assert render(engine, "{{ [1, [2, [3, [4]]], 'ab'] | flatten }}") == [1, 2, 3, 4, "ab"]
    assert render(engine, "{{ [1, [2, [3]]] | flatten(levels=1) }}") == [1, 2, [3]]
    assert render(engine, "{{ missing | flatten }}") == []


def test_length_counts_missing_values_as_empty(engine: TemplateEngine) -> None:
    assert render(engine, "{{ [1, 2] | length }}") == 2
    assert render(engine, "{{ none | length }}") == 0
    assert render(engine, "{{ 'abc' | count }}") == 3
    with pytest.raises(ExpressionError, match="has no len"):
        render(engine, "{{ 5 | length }}")


def test_jinja_builtins_still_work(engine: TemplateEngine) -> None:
    assert render(engine, "{{ [3, 1, 2] | sort | last }}") == 3
    assert render(engine, "{{ x | default('d') }}") == "d"
    assert render(engine, "{{ [{'a': 1}, {'a': 2}] | map(attribute='a') | sum }}") == 3
    assert render(engine, "{{ ['a', 'b'] | join }}") == "ab"


def test_random_is_removed_so_runs_replay(engine: TemplateEngine) -> None:
    assert engine.check("{{ [1, 2] | random }}")[0].message.startswith("unknown filter 'random'")
    assert engine.render("{{ lipsum }}", {}) is None


def test_every_custom_filter_documents_itself() -> None:
    for name, function in filter_module.FILTERS.items():
        assert function.__doc__, f"filter {name} has no docstring"
        assert function.__doc__.strip().splitlines()[0].endswith("."), name
