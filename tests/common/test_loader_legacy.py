"""Legacy Attune transition fields converted to ``next``: one test per form."""

from __future__ import annotations

import textwrap

import pytest

from treadle.common.loader import load_workflow_text, read_workflow_text
from treadle.common.spec import TaskSpec

Row = tuple[str | None, tuple[str, ...]]


def task(body: str, *, others: tuple[str, ...] = ("a", "b", "c")) -> TaskSpec:
    """Load ``body`` as the first task (named ``t``) of a workflow with tasks ``others``."""
    indented = textwrap.indent(textwrap.dedent(body), "    ")
    rest = "".join(f"  - name: {n}\n    action: core.noop\n" for n in others)
    text = f"ref: demo.legacy\ntasks:\n  - name: t\n    action: core.noop\n{indented}{rest}"
    return load_workflow_text(text, "wf.yaml").tasks[0]


def rows(spec: TaskSpec) -> list[Row]:
    return [(t.when, t.do) for t in spec.next]


def test_on_success_name() -> None:
    spec = task("on_success: a\n")
    assert rows(spec) == [("{{ succeeded() }}", ("a",))]
    assert spec.next[0].path == ("tasks", 0, "on_success")


@pytest.mark.parametrize(
    ("key", "status"),
    [("on_failure", "{{ failed() }}"), ("on_timeout", "{{ timed_out() }}"), ("on_complete", None)],
)
def test_status_keys(key: str, status: str | None) -> None:
    spec = task(f"{key}: a\n")
    assert rows(spec) == [(status, ("a",))]
    assert spec.next[0].path == ("tasks", 0, key)


def test_on_success_list_of_names() -> None:
    spec = task("on_success: [a, b]\n")
    assert rows(spec) == [("{{ succeeded() }}", ("a",)), ("{{ succeeded() }}", ("b",))]
    assert [t.path for t in spec.next] == [
        ("tasks", 0, "on_success", 0),
        ("tasks", 0, "on_success", 1),
    ]


def test_on_success_list_of_conditions_mixed_with_names() -> None:
    spec = task(
        """\
        on_success:
          - when: "{{ result().count > 0 }}"
            do: a
          - b
          - when: parameters.flag
            do: [b, c]
        """
    )
    assert rows(spec) == [
        ("{{ succeeded() and (result().count > 0) }}", ("a",)),
        ("{{ succeeded() }}", ("b",)),
        ("{{ succeeded() and (parameters.flag) }}", ("b", "c")),
    ]


def test_on_complete_entries_keep_only_their_condition() -> None:
    spec = task(
        """\
        on_complete:
          - when: "{{ parameters.x }}"
            do: a
        """
    )
    assert rows(spec) == [("{{ parameters.x }}", ("a",))]


def test_decision_is_first_match() -> None:
    spec = task(
        """\
        decision:
          - when: "{{ c1 }}"
            next: a
          - when: "{{ c2 }}"
            next: b
          - default: c
        """
    )
    assert rows(spec) == [
        ("{{ succeeded() and (c1) }}", ("a",)),
        ("{{ succeeded() and not (c1) and (c2) }}", ("b",)),
        ("{{ succeeded() and not (c1) and not (c2) }}", ("c",)),
    ]
    assert [t.path for t in spec.next] == [("tasks", 0, "decision", i) for i in range(3)]


def test_task_publish_comes_before_legacy_keys_and_after_next() -> None:
    spec = task(
        """\
        on_failure: c
        publish:
          - total: "{{ result().total }}"
        next:
          - when: "{{ succeeded() }}"
            do: [a]
        on_success: b
        """
    )
    assert rows(spec) == [
        ("{{ succeeded() }}", ("a",)),  # the task's own next
        ("{{ succeeded() }}", ()),  # task-level publish, no targets
        ("{{ failed() }}", ("c",)),  # legacy keys in file order
        ("{{ succeeded() }}", ("b",)),
    ]
    publish = spec.next[1]
    assert [(p.name, p.value) for p in publish.publish] == [("total", "{{ result().total }}")]
    assert publish.path == ("tasks", 0, "publish")


def test_publish_as_mapping_and_list() -> None:
    spec = task(
        """\
        next:
          - publish: {x: 1, y: "{{ 2 }}"}
            do: a
          - publish: [{z: 3}]
        """
    )
    assert [[(p.name, p.value) for p in t.publish] for t in spec.next] == [
        [("x", 1), ("y", "{{ 2 }}")],
        [("z", 3)],
    ]
    assert rows(spec) == [(None, ("a",)), (None, ())]


def test_nested_decision_entries_in_a_do_list() -> None:
    spec = task(
        """\
        on_failure:
          - when: "{{ parameters.force }}"
            do:
              - when: "{{ n1 }}"
                next: a
              - when: "{{ n2 }}"
                next: b
          - when: "{{ not parameters.force }}"
            do: c
        """
    )
    assert rows(spec) == [
        ("{{ failed() and (parameters.force) and (n1) }}", ("a",)),
        ("{{ failed() and (parameters.force) and not (n1) and (n2) }}", ("b",)),
        ("{{ failed() and (not parameters.force) }}", ("c",)),
    ]
    assert spec.next[1].path == ("tasks", 0, "on_failure", 0, "do", 1)


def test_bare_expression_and_boolean_conditions() -> None:
    spec = task(
        """\
        next:
          - when: succeeded() and parameters.go
            do: a
          - when: true
            do: b
        """
    )
    assert rows(spec) == [
        ("{{ succeeded() and parameters.go }}", ("a",)),
        ("{{ true }}", ("b",)),
    ]


def test_targets_point_at_where_they_were_written() -> None:
    text = textwrap.dedent(
        """\
        ref: demo.where
        tasks:
          - name: t
            action: core.noop
            on_success: missing_one
            decision:
              - when: "{{ x }}"
                next: missing_two
            on_failure:
              - a
              - missing_three
          - name: a
            action: core.noop
        """
    )
    spec = load_workflow_text(text, "wf.yaml")
    where = {t.do[0]: spec.source.loc((*t.path, "do", 0)) for t in spec.tasks[0].next}
    assert (where["missing_one"].line, where["missing_one"].col) == (5, 17)
    assert (where["missing_two"].line, where["missing_two"].col) == (8, 15)
    assert (where["missing_three"].line, where["missing_three"].col) == (11, 9)


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        ("on_success: {when: '{{ a }}', do: a, then: b}\n", 5, "unknown field 'then'"),
        ("on_success:\n  - when: 'x {{ a }}'\n    do: a\n", 6, "must be a single {{ expression }}"),
        ("on_failure: 3\n", 5, "'on_failure' of task 't' must be a task name"),
        ("decision: {when: x, next: a}\n", 5, "'decision' of task 't' must be a list"),
        ("decision:\n  - default: a\n  - when: x\n    next: b\n", 7, "can never be chosen"),
        ("decision:\n  - default: a\n    when: x\n", 7, "a 'default' entry takes no 'when'"),
        ("next:\n  - when: x\n    do: a\n    next: b\n", 8, "unknown field 'next' in a transition"),
        ("on_success:\n  - when: x\n    do: a\n    next: b\n", 8, "in 'do' or in 'next', not both"),
        ("next: {do: a}\n", 5, "'next' of task 't' must be a list"),
        ("next:\n  - do: [a, 3]\n", 6, "a transition target must be a task name, not 3"),
        ("publish: [{a: 1, b: 2}]\n", 5, "must be one 'name: value' pair"),
    ],
)
def test_bad_transition_shapes(body: str, line: int, fragment: str) -> None:
    indented = textwrap.indent(body, "    ")
    rest = "  - name: a\n    action: core.noop\n  - name: b\n    action: core.noop\n"
    text = f"ref: demo.bad\ntasks:\n  - name: t\n    action: core.noop\n{indented}{rest}"
    _, issues = read_workflow_text(text, "wf.yaml")
    assert len(issues) == 1, [str(i) for i in issues]
    assert issues[0].loc.line == line, str(issues[0])
    assert fragment in issues[0].message
