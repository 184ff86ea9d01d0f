"""Attune workflow files that are wrong: every error reported with its line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from treadle.common.errors import DefinitionError
from treadle.common.loader import load_workflow_file
from treadle.common.source import Issue, Severity

from .workflow_text import MINIMAL, load, one_problem, problems

# -- errors ----------------------------------------------------------------------------------


def test_unknown_fields_suggest_the_closest_name_at_the_key() -> None:
    found = problems(
        """\
        ref: demo.typos
        taks: []
        tasks:
          - name: x
            action: core.noop
            retyr: {count: 1}
            retry: {cout: 1}
            next:
              - when: "{{ succeeded() }}"
                doo: [x]
        """
    )
    assert found == [
        "2:1: unknown field 'taks' in the workflow (did you mean 'tasks'?)",
        "6:5: unknown field 'retyr' in task 'x' (did you mean 'retry'?)",
        "7:13: unknown field 'cout' in the retry of task 'x' (did you mean 'count'?)",
        "10:9: unknown field 'doo' in a transition of task 'x' (did you mean 'do'?)",
    ]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("timeout", "-5", "4:14: 'timeout' of task 'x': a duration cannot be negative (got -5)"),
        ("delay", "soon", "4:12: 'delay' of task 'x': expected a duration"),
        ("batch_size", "0", "4:17: 'batch_size' of task 'x' must be a positive integer, not 0"),
        ("concurrency", "two", "4:18: 'concurrency' of task 'x' must be a positive integer"),
        ("join", "any", "4:11: 'join' of task 'x' must be 'all' or a positive number, not 'any'"),
        ("join", "0", "4:11: 'join' of task 'x' must be 'all' or a positive number, not 0"),
        ("type", "paralel", "4:11: 'type' of task 'x' must be one of action, parallel, workflow"),
        (
            "with_items",
            "'a {{ b }}'",
            "4:18: 'with_items' of task 'x' must be one {{ expression }}",
        ),
        ("input", "[1]", "4:5: 'input' of task 'x' must be a mapping, not a list"),
        ("when", "'{{ a }} and {{ b }}'", "4:12: a condition must be a single {{ expression }}"),
    ],
)
def test_bad_task_values(field: str, value: str, expected: str) -> None:
    text = f"ref: demo.bad\ntasks:\n  - name: x\n    {field}: {value}\n    action: core.noop\n"
    found = problems(text)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found[0]


@pytest.mark.parametrize(
    ("retry", "expected"),
    [
        ("{count: -1}", "'retry.count' of task 'x' must be an integer >= 0, not -1"),
        (
            "{backoff: exponentail}",
            "must be one of constant, linear, exponential, not 'exponentail'",
        ),
        ("{delay: -2}", "'retry.delay' of task 'x': a duration cannot be negative"),
        ("{max_delay: forever}", "'retry.max_delay' of task 'x': expected a duration"),
        ("3", "'retry' of task 'x' must be a mapping, not the number 3"),
    ],
)
def test_bad_retry_values(retry: str, expected: str) -> None:
    text = f"ref: demo.bad\ntasks:\n  - name: x\n    action: core.noop\n    retry: {retry}\n"
    assert expected in one_problem(text)


def test_parallel_and_action_rules() -> None:
    found = problems(
        """\
        ref: demo.par
        tasks:
          - name: p
            type: parallel
            action: core.noop
            with_items: [1]
            tasks: [{name: a, action: core.noop}]
          - name: q
            action: core.noop
            tasks: [{name: b, action: core.noop}]
        """
    )
    assert found == [
        "5:5: parallel task 'p' runs its nested 'tasks'; it takes no 'action'",
        "6:5: 'with_items' does not apply to parallel task 'p'",
        "10:5: nested 'tasks' need 'type: parallel' on task 'q'",
    ]


def test_iterate_cache_has_its_own_message() -> None:
    message = one_problem(
        """\
        ref: demo.cache
        tasks:
          - name: batch
            action: core.noop
            iterate_cache: {namespace: users}
        """
    )
    assert message == (
        "5:5: `iterate_cache` (Attune's data-cache iterator) is not supported by Treadle; "
        "iterate a list with `with_items` instead"
    )


def test_orquesta_is_one_error_at_tasks() -> None:
    message = one_problem(
        """\
        version: 1.0
        input:
          - who
        tasks:
          greet:
            action: core.echo
            next:
              - do: bye
        """
    )
    assert message.startswith(
        "4:1: this looks like a StackStorm Orquesta workflow (tasks are a mapping"
    )
    assert "Attune dialect" in message


def test_structural_yaml_problems() -> None:
    assert one_problem("- just\n- a list\n") == (
        "1:1: a workflow file must be a mapping with 'ref' and 'tasks'"
    )
    assert one_problem("ref: a.b\n") == "1:1: the workflow has no 'tasks'"
    assert one_problem("ref: a.b\ntasks: {}\n").startswith("2:1: this looks like a StackStorm")
    assert (
        one_problem("ref: a.b\ntasks: nope\n")
        == "2:1: 'tasks' must be a list of tasks, each with a 'name'"
    )
    assert one_problem("ref: a.b\ntasks:\n  - action: core.noop\n") == (
        "3:5: every task needs a 'name' (text)"
    )


def test_collects_every_problem_in_the_file() -> None:
    found = problems(
        """\
        ref: demo.five
        parameters:
          n: {type: integr}
        tasks:
          - name: a
            action: core.noop
            timeout: soon
            retry: {count: 1, backof: linear}
            join: none
            colour: red
        """
    )
    assert [f.split(":")[0] for f in found] == ["3", "7", "8", "9", "10"]
    assert len(found) == 5


def test_raising_loader_carries_every_error() -> None:
    with pytest.raises(DefinitionError) as caught:
        load(
            """\
            ref: demo.raise
            tasks:
              - name: a
                action: core.noop
                timeout: soon
                retyr: 1
            """
        )
    assert [(i.loc.line, i.severity) for i in caught.value.issues] == [
        (5, Severity.ERROR),
        (6, Severity.ERROR),
    ]
    assert "wf.yaml:5:" in str(caught.value)


def test_load_workflow_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(MINIMAL)
    assert load_workflow_file(path).ref == "demo.minimal"
    path.write_text(MINIMAL + "    bogus: 1\n")
    with pytest.raises(DefinitionError) as caught:
        load_workflow_file(path)
    [issue] = caught.value.issues
    assert isinstance(issue, Issue)
    assert issue.loc.file == str(path)
    assert issue.loc.line == 5


def test_missing_file_is_a_definition_error(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="cannot read the file"):
        load_workflow_file(tmp_path / "absent.yaml")
