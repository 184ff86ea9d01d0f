"""The graph compiler: what each task is, how transitions become edges, and the structural
checks not already covered by ``tests/common/test_validate.py`` (which covers unknown
targets, unreachable tasks and unconditional self-loops)."""

from __future__ import annotations

import textwrap

import pytest

from treadle.common.errors import DefinitionError
from treadle.common.graph import Graph, NodeKind, build_graph, compile_graph
from treadle.common.loader import load_workflow_text
from treadle.common.spec import RunnerType, WorkflowSpec


def spec_of(text: str) -> WorkflowSpec:
    return load_workflow_text(textwrap.dedent(text), "wf.yaml")


def problems(text: str) -> list[str]:
    _, issues = build_graph(spec_of(text))
    return [f"{i.loc.line}:{i.loc.col}: {i.message}" for i in issues]


def compiled(text: str, kinds: dict[str, RunnerType] | None = None) -> Graph:
    return compile_graph(spec_of(text), (kinds or {}).get)


def test_node_kinds_come_from_the_type_and_the_action_catalog() -> None:
    graph = compiled(
        """\
        ref: test.kinds
        tasks:
          - {name: plain, action: demo.run}
          - {name: ask, action: core.ask}
          - {name: inquiry, action: core.inquiry}
          - {name: custom_ask, action: demo.approve}
          - {name: by_catalog, action: demo.flow}
          - {name: by_type, type: workflow, action: demo.other}
          - name: block
            type: parallel
            tasks: [{name: inner, action: demo.run}]
        """,
        {
            "demo.run": RunnerType.PYTHON,
            "demo.flow": RunnerType.WORKFLOW,
            "demo.approve": RunnerType.INQUIRY,
        },
    )
    kinds = {name: node.kind for name, node in graph.nodes.items()}
    assert kinds == {
        "plain": NodeKind.ACTION,
        "ask": NodeKind.INQUIRY,
        "inquiry": NodeKind.INQUIRY,
        "custom_ask": NodeKind.INQUIRY,
        "by_catalog": NodeKind.WORKFLOW,
        "by_type": NodeKind.WORKFLOW,
        "block": NodeKind.PARALLEL,
        "inner": NodeKind.ACTION,
    }
    assert graph.nodes["inner"].scope == "block"
    assert graph.nodes["plain"].scope is None


def test_transitions_become_numbered_edges() -> None:
    graph = compiled(
        """\
        ref: test.edges
        tasks:
          - name: start
            action: demo.run
            next:
              - do: [a, b]
              - when: "{{ failed() }}"
                do: [b]
              - publish: [{x: 1}]
          - {name: a, action: demo.run}
          - {name: b, action: demo.run, join: all}
        """
    )
    start = graph.node("start")
    assert start.out_edges == ((0, 1), (2,), ())
    assert [(e.source, e.transition, e.target, e.conditional) for e in graph.edges] == [
        ("start", 0, "a", False),
        ("start", 0, "b", False),
        ("start", 1, "b", True),
    ]
    assert graph.node("b").in_edges == (1, 2)
    assert graph.node("a").in_edges == (0,)
    assert graph.entries == ("start",)
    assert graph.successors["start"] == frozenset({"a", "b"})


def test_a_parallel_block_has_its_own_entries() -> None:
    graph = compiled(
        """\
        ref: test.block
        tasks:
          - name: block
            type: parallel
            tasks:
              - {name: one, action: demo.run, next: [{do: [three]}]}
              - {name: two, action: demo.run}
              - {name: three, action: demo.run}
            next: [{do: [after]}]
          - {name: after, action: demo.run}
        """
    )
    block = graph.node("block")
    assert block.children == ("one", "two", "three")
    assert block.entries == ("one", "two")


def test_reachable_from_can_avoid_a_task() -> None:
    graph = compiled(
        """\
        ref: test.reach
        tasks:
          - {name: a, action: demo.run, next: [{do: [b, c]}]}
          - {name: b, action: demo.run, next: [{do: [d]}]}
          - {name: c, action: demo.run}
          - {name: d, action: demo.run}
        """
    )
    assert graph.reachable_from(["a"]) == {"a", "b", "c", "d"}
    assert graph.reachable_from(["a"], avoid="b") == {"a", "c"}
    assert graph.reachable_from(["b"], avoid="b") == set()


def test_duplicate_names_missing_actions_and_empty_blocks() -> None:
    assert problems(
        """\
        ref: test.names
        tasks:
          - {name: x, action: demo.run}
          - {name: x, action: demo.run}
          - name: empty
            type: parallel
          - name: bare
          - name: block
            type: parallel
            tasks:
              - {name: x, action: demo.run}
        """
    ) == [
        "4:6: task 'x' is defined twice (first at wf.yaml:3:5)",
        "5:5: parallel task 'empty' has no nested tasks",
        "7:5: task 'bare' has no action",
        "11:10: task 'x' is defined twice (first at wf.yaml:3:5)",
    ]


def test_a_workflow_without_tasks_cannot_be_built() -> None:
    graph, issues = build_graph(spec_of("ref: test.empty\ntasks: []\n"))
    assert graph is None
    assert [i.message for i in issues] == ["the workflow has no tasks"]


def test_transitions_stay_within_their_block() -> None:
    assert problems(
        """\
        ref: test.scopes
        tasks:
          - name: outside
            action: demo.run
            next: [{do: [inside]}]
          - name: block
            type: parallel
            tasks:
              - {name: inside, action: demo.run, next: [{do: [after]}]}
          - {name: after, action: demo.run}
        """
    ) == [
        "5:18: task 'outside' (in the top level) cannot transition to 'inside' "
        "(in parallel task 'block'): transitions stay within their block",
        "9:55: task 'inside' (in parallel task 'block') cannot transition to 'after' "
        "(in the top level): transitions stay within their block",
    ]


def test_every_task_a_target_leaves_nothing_to_start_with() -> None:
    found = problems(
        """\
        ref: test.no_start
        tasks:
          - {name: a, action: demo.run, next: [{when: "{{ true }}", do: [b]}]}
          - {name: b, action: demo.run, next: [{when: "{{ true }}", do: [a]}]}
        """
    )
    assert found == [
        "2:1: the workflow has no task to start with: every task is a transition target"
    ]
    found = problems(
        """\
        ref: test.block_no_start
        tasks:
          - name: block
            type: parallel
            tasks:
              - {name: a, action: demo.run, next: [{when: "{{ true }}", do: [b]}]}
              - {name: b, action: demo.run, next: [{when: "{{ true }}", do: [a]}]}
        """
    )
    assert found == [
        "5:5: parallel task 'block' has no task to start with: every task is a transition target"
    ]


def test_an_unconditional_cycle_is_reported_once_with_its_path() -> None:
    found = problems(
        """\
        ref: test.cycle
        tasks:
          - {name: start, action: demo.run, next: [{do: [a]}]}
          - {name: a, action: demo.run, next: [{do: [b]}]}
          - {name: b, action: demo.run, next: [{do: [c]}]}
          - {name: c, action: demo.run, next: [{do: [a]}]}
        """
    )
    assert found == [
        "4:6: cycle made only of unconditional transitions: a -> b -> c -> a; "
        "give one of its transitions a 'when' so the loop can end"
    ]


def test_a_cycle_with_one_conditional_transition_compiles() -> None:
    graph = compiled(
        """\
        ref: test.loop
        tasks:
          - {name: start, action: demo.run, next: [{do: [a]}]}
          - {name: a, action: demo.run, next: [{do: [b]}]}
          - {name: b, action: demo.run, on_success: [a]}
        """
    )
    assert graph.reachable_from(["b"]) == {"a", "b"}


def test_compile_graph_raises_with_every_error() -> None:
    with pytest.raises(DefinitionError) as caught:
        compiled(
            """\
            ref: test.bad
            tasks:
              - {name: a, action: demo.run, next: [{do: [nowhere]}]}
              - {name: a, action: demo.run}
            """
        )
    messages = [i.message for i in caught.value.issues]
    assert sorted(messages) == [
        "task 'a' is defined twice (first at wf.yaml:3:5)",
        "task 'a' transitions to unknown task 'nowhere'",
    ]
