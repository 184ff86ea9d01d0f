"""The validator: every problem in a workflow, each at its line and column, all at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from treadle.common.catalog import Catalog
from treadle.common.loader import load_workflow_text
from treadle.common.source import Issue, Severity
from treadle.common.spec import ActionSpec, ParameterSpec, RunnerType
from treadle.common.validate import validate_paths, validate_workflow

DATA = Path(__file__).resolve().parent.parent / "data" / "loader"


def spec_of(text: str):
    return load_workflow_text(textwrap.dedent(text), "wf.yaml")


def check(text: str, catalog: Catalog | None = None, *, strict: bool = False) -> list[str]:
    issues = validate_workflow(spec_of(text), catalog, strict=strict)
    return [_show(i) for i in issues]


def _show(issue: Issue) -> str:
    prefix = "warning: " if issue.severity is Severity.WARNING else ""
    return f"{issue.loc.line}:{issue.loc.col}: {prefix}{issue.message}"


def param(name: str, *, required: bool = False, default: object = None) -> ParameterSpec:
    return ParameterSpec(
        name=name,
        schema_={"type": "string"},
        required=required,
        has_default=default is not None,
        default=default,
    )


CATALOG = Catalog(
    actions={
        "demo.send": ActionSpec(
            ref="demo.send",
            parameters=(param("to", required=True), param("body"), param("retries", default="1")),
        ),
        "demo.free": ActionSpec(ref="demo.free"),
        "demo.script": ActionSpec(ref="demo.script", runner_type=RunnerType.PYTHON),
    }
)


def test_a_valid_workflow_has_no_issues() -> None:
    assert check(
        """\
            ref: demo.ok
            parameters:
              who: {type: string}
            vars:
              - greeting: "hi {{ parameters.who }}"
            tasks:
              - name: each
                action: demo.send
                with_items: "{{ parameters.who | list }}"
                when: "{{ index < 10 }}"
                input:
                  to: "{{ item }}"
                  body: "{% for c in item %}{{ c }}{% endfor %}{{ loop_free | default(1) }}"
                next:
                  - when: "{{ succeeded() and length(task.each.results) > 0 }}"
                    publish:
                      - stamp: "{{ now() }} {{ uuid() }} {{ system.run_id }} {{ kv.x }}"
                    do: [done]
              - name: done
                action: demo.free
                input:
                  x: "{{ inquiry.each.response }} {{ pack.config.a }} {{ range(3) }}"
                  y: "{{ keystore.k }} {{ config.y }}"
            output_map:
              out: "{{ workflow.greeting ~ vars.greeting ~ variables.greeting }}"
            """,
        CATALOG,
    ) == ["13:14: unknown name 'loop_free' in task 'each'"]


def test_structural_issues_come_from_the_graph() -> None:
    found = check(
        """\
        ref: demo.graph
        tasks:
          - name: start
            action: demo.free
            next:
              - do: [middel]
          - name: middle
            action: demo.free
          - name: island
            action: demo.free
            next: [{do: [island]}]
        """
    )
    assert found == [
        "6:14: task 'start' transitions to unknown task 'middel' (did you mean 'middle'?)",
        "9:5: cycle made only of unconditional transitions: island -> island; "
        "give one of its transitions a 'when' so the loop can end",
        "9:5: task 'island' is unreachable from the start task 'start', 'middle'",
    ]


def test_template_syntax_errors_point_into_multi_line_values() -> None:
    found = check(
        """\
        ref: demo.syntax
        tasks:
          - name: t
            action: demo.free
            input:
              one: "{{ a + }}"
              many: |
                first line
                second {{ oops( }}
            next:
              - when: "{{ succeeded( }}"
        """
    )
    assert len(found) == 3
    assert found[0].startswith("6:13: template error in task 't': ")
    assert found[1].startswith("9:9: template error in task 't': ")  # the second line of the block
    assert found[2].startswith("11:16: template error in task 't': ")


def test_unknown_names_parameters_and_tasks() -> None:
    found = check(
        """\
        ref: demo.names
        parameters:
          count: {type: integer}
        tasks:
          - name: first
            action: demo.free
            input:
              a: "{{ paramters.count }}"
              b: "{{ parameters.cuont }}"
              c: "{{ task.frist.result }}"
              d: "{{ item }}"
            with_items: "{{ index }}"
        """
    )
    assert found == [
        "8:11: unknown name 'paramters' in task 'first' (did you mean 'parameters'?)",
        "9:11: unknown parameter 'cuont' in task 'first' (did you mean 'count'?)",
        "10:11: unknown task 'frist' in task 'first' (did you mean 'first'?)",
        "12:18: 'index' in task 'first' is only defined in the 'input' and 'when' of a task "
        "with 'with_items'",
    ]


def test_item_outside_with_items() -> None:
    found = check(
        """\
        ref: demo.items
        tasks:
          - name: plain
            action: demo.free
            input: {x: "{{ item }}"}
            next:
              - publish: [{last: "{{ index }}"}]
        output_map:
          y: "{{ item }}"
        """
    )
    assert [f.split(": ", 1)[0] for f in found] == ["5:17", "7:27", "9:7"]
    assert all("is only defined in the 'input' and 'when'" in f for f in found)


def test_a_condition_repeated_by_a_decision_chain_is_reported_once() -> None:
    found = check(
        """\
        ref: demo.chain
        tasks:
          - name: t
            action: demo.free
            decision:
              - when: "{{ parameters.mode == 'a' }}"
                next: a
              - default: b
          - {name: a, action: demo.free}
          - {name: b, action: demo.free}
        """
    )
    assert found == ["6:16: unknown parameter 'mode' in task 't'"]


def test_values_that_make_no_sense_together() -> None:
    found = check(
        """\
        ref: demo.values
        tasks:
          - name: t
            action: demo.free
            batch_size: 2
            concurrency: 3
            retry: {count: 1, delay: 10, max_delay: 5}
            next: [{do: [j]}]
          - name: j
            action: demo.free
            join: 2
        """
    )
    assert found == [
        "5:5: warning: 'batch_size' of task 't' has no effect without 'with_items'",
        "6:5: warning: 'concurrency' of task 't' has no effect without 'with_items'",
        "7:34: warning: 'retry.max_delay' of task 't' is shorter than 'retry.delay'",
        "11:5: task 'j' joins 2 transitions but only 1 lead to it; it would never start",
    ]


ACTIONS = """\
ref: demo.actions
tasks:
  - name: send
    action: demo.send
    input:
      to: someone
      bodi: hi
    next: [{do: [lost, free, ask]}]
  - name: lost
    action: demo.snd
  - name: free
    action: demo.free
    input: {anything: 1}
  - name: ask
    action: core.ask
    input: {prompt: ok?}
    next: [{do: [partial]}]
  - name: partial
    action: demo.send
    compensate: {action: demo.sned}
"""


def test_action_refs_and_inputs() -> None:
    assert check(ACTIONS, CATALOG) == [
        "7:7: task 'send' gives input 'bodi' that 'demo.send' does not declare"
        " (did you mean 'body'?)",
        "10:5: warning: unknown action 'demo.snd' in task 'lost' (did you mean 'demo.send'?)",
        "19:5: task 'partial' does not give the required input 'to' of 'demo.send'",
        "20:18: warning: unknown action 'demo.sned' in task 'partial' (did you mean 'demo.send'?)",
    ]


def test_strict_makes_unknown_actions_errors() -> None:
    found = check(ACTIONS, CATALOG, strict=True)
    assert "10:5: unknown action 'demo.snd' in task 'lost' (did you mean 'demo.send'?)" in found


def test_without_a_catalog_actions_are_not_checked() -> None:
    assert check(ACTIONS) == []


def test_workflow_refs_are_checked_against_the_child_parameters() -> None:
    child = spec_of(
        """\
        ref: demo.child
        parameters:
          n: {type: integer, required: true}
        tasks: [{name: t, action: demo.free}]
        """
    )
    catalog = Catalog(actions=dict(CATALOG.actions), workflows={"demo.child": child})
    found = check(
        """\
        ref: demo.parent
        tasks:
          - name: call
            type: workflow
            action: demo.child
            input: {m: 1}
            next: [{do: [wrong]}]
          - name: wrong
            type: workflow
            action: demo.script
        """,
        catalog,
    )
    assert found == [
        "6:5: task 'call' does not give the required input 'n' of 'demo.child'",
        "6:13: task 'call' gives input 'm' that 'demo.child' does not declare",
        "9:5: task 'wrong' has type workflow but 'demo.script' is a python action",
    ]


def test_issues_are_sorted_by_location() -> None:
    issues = validate_workflow(spec_of(ACTIONS), CATALOG)
    keys = [(i.loc.line, i.loc.col) for i in issues]
    assert keys == sorted(keys)


# -- validate_paths --------------------------------------------------------------------------


def test_collect_all_across_loader_and_validator(tmp_path: Path) -> None:
    path = tmp_path / "five.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            ref: demo.five
            parameters:
              n: {type: integer}
            tasks:
              - name: a
                action: demo.free
                timeout: soon
                colour: red
                input:
                  x: "{{ parameters.m }}"
                  y: "{{ 1 + }}"
                next: [{do: [b]}]
            """
        )
    )
    errors = [i for i in validate_paths([path]) if i.severity is Severity.ERROR]
    assert [(i.loc.line, i.loc.col, i.message.split(":")[0]) for i in errors] == [
        (7, 14, "'timeout' of task 'a'"),
        (8, 5, "unknown field 'colour' in task 'a'"),
        (10, 11, "unknown parameter 'm' in task 'a'"),
        (11, 11, "template error in task 'a'"),
        (12, 18, "task 'a' transitions to unknown task 'b'"),
    ]


def test_validate_paths_reports_missing_paths(tmp_path: Path) -> None:
    [issue] = validate_paths([tmp_path / "nope.yaml"])
    assert str(issue) == f"{tmp_path / 'nope.yaml'}: no such file or folder"


def test_validate_paths_on_a_pack_folder_uses_its_actions() -> None:
    issues = validate_paths([DATA / "packs" / "demo"], strict=True)
    assert issues == []


def test_validate_paths_on_a_workflow_file_with_pack_paths(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "ref: mine.flow\ntasks:\n  - name: t\n"
        "    action: demo.greet\n    input: {who: x, shot: 1}\n"
    )
    assert [str(i).split(": ", 1)[1] for i in validate_paths([flow])] == [
        "warning: unknown action 'demo.greet' in task 't'"
    ]
    issues = validate_paths([flow], pack_paths=[DATA / "packs"])
    assert [i.message for i in issues] == [
        "task 't' gives input 'shot' that 'demo.greet' does not declare (did you mean 'shout'?)"
    ]


def test_validate_paths_on_a_split_layout_action_file() -> None:
    action_file = DATA / "packs" / "demo" / "actions" / "linked.yaml"
    issues = validate_paths([action_file], pack_paths=[DATA / "packs" / "demo"])
    assert issues == []


@pytest.mark.parametrize("name", ["pack.yaml"])
def test_validate_paths_accepts_a_pack_file(name: str) -> None:
    assert validate_paths([DATA / "packs" / "demo" / name]) == []


def test_validate_paths_on_a_folder_of_workflow_files(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text("ref: x.one\ntasks: [{name: t, action: core.noop}]\n")
    (tmp_path / "two.yml").write_text(
        "ref: x.two\ntasks: [{name: t, action: core.noop, retyr: 1}]\n"
    )
    (tmp_path / "notes.txt").write_text("not yaml")
    [issue] = validate_paths([tmp_path])
    assert issue.loc.file == str(tmp_path / "two.yml")
    assert issue.message == "unknown field 'retyr' in task 't' (did you mean 'retry'?)"
    (tmp_path / "empty").mkdir()
    [issue] = validate_paths([tmp_path / "empty"])
    assert issue.message == "no pack.yaml and no workflow files in this folder"
