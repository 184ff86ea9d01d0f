"""YAML with locations: data, key and value positions, and problems reported as issues."""

from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest

from treadle.common.loader import VALUE, parse_duration, parse_yaml
from treadle.common.loader.durations import DurationError
from treadle.common.source import Loc


def parse(text: str):
    return parse_yaml(textwrap.dedent(text), "wf.yaml")


def test_data_and_key_locations() -> None:
    doc = parse(
        """\
        ref: a.b
        tasks:
          - name: one
            retry:
              count: 2
        """
    )
    assert doc.ok
    assert doc.data == {"ref": "a.b", "tasks": [{"name": "one", "retry": {"count": 2}}]}
    assert doc.loc(("ref",)) == Loc("wf.yaml", 1, 1)
    assert doc.loc(("tasks", 0)) == Loc("wf.yaml", 3, 5)
    assert doc.loc(("tasks", 0, "retry", "count")) == Loc("wf.yaml", 5, 7)
    # an unrecorded path falls back to its nearest ancestor
    assert doc.loc(("tasks", 0, "retry", "count", "nope")) == Loc("wf.yaml", 5, 7)


def test_value_locations_point_at_the_text() -> None:
    doc = parse(
        """\
        plain: abc
        quoted: "x {{ y }}"
        block: |
          first
          second
        """
    )
    assert doc.locations[("plain", VALUE)] == Loc("wf.yaml", 1, 8)
    assert doc.locations[("quoted", VALUE)] == Loc("wf.yaml", 2, 10)  # after the quote
    assert doc.locations[("block", VALUE)] == Loc("wf.yaml", 4, 3)  # the line after '|'


def test_syntax_error_is_an_issue_at_the_problem_mark() -> None:
    doc = parse(
        """\
        ref: a.b
        tasks:
          - name: one
           bad: indentation
        """
    )
    assert doc.data is None
    [issue] = doc.issues
    assert issue.loc.file == "wf.yaml"
    assert issue.loc.line == 4
    assert issue.message.startswith("YAML syntax error:")


def test_duplicate_keys_are_errors_naming_the_first() -> None:
    doc = parse(
        """\
        ref: a.b
        label: x
        ref: c.d
        """
    )
    [issue] = doc.issues
    assert issue.loc == Loc("wf.yaml", 3, 1)
    assert issue.message == "duplicate key 'ref' (first at line 1)"
    assert doc.data["ref"] == "a.b"


def test_empty_file() -> None:
    [issue] = parse("# nothing here\n").issues
    assert issue.message == "the file is empty"


def test_dates_stay_text_and_tags_are_refused() -> None:
    doc = parse(
        """\
        when: 2024-01-02
        odd: !python/name:os.system x
        """
    )
    assert doc.data["when"] == "2024-01-02"
    [issue] = doc.issues
    assert issue.loc.line == 2
    assert "not supported" in issue.message


def test_merge_keys_and_aliases() -> None:
    doc = parse(
        """\
        base: &base {count: 2, delay: 1}
        retry:
          <<: *base
          delay: 5
        """
    )
    assert doc.ok
    assert doc.data["retry"] == {"delay": 5, "count": 2}


def test_recursive_alias_is_refused() -> None:
    doc = parse("a: &x [1, *x]\n")
    assert doc.data is None
    assert "contains it" in doc.issues[0].message


def test_alias_bombs_are_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    doc = parse_yaml("\n".join(lines), "bomb.yaml")
    assert doc.data is None
    assert "too large" in doc.issues[0].message


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30),
        (1.5, 1.5),
        ("500ms", 0.5),
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("45", 45),
        (0, 0),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (-1, "cannot be negative"),
        ("-5s", "cannot be negative"),
        ("5 minutes", "expected a duration"),
        ("soon", "expected a duration"),
        (True, "expected a duration"),
        ([1], "expected a duration"),
        (10**12, "longer than 10 years"),
    ],
)
def test_bad_durations(value: object, fragment: str) -> None:
    with pytest.raises(DurationError, match=fragment):
        parse_duration(value)
