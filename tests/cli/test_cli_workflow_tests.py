"""``treadle test PACK``: a pack's workflow tests, run through the pure core.

The examples pack ships ``tests/test_workflows.yaml``; it passes. A pack of the test's
own shows a failing test's differences (exit 1) and a malformed tests file, every problem
named by file, line, column and field, with nothing run (exit 2).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from treadle.common.loader import load_packs
from treadle.scheduler.workflow_tests import read_test_file, run_workflow_tests

from .conftest import Cli

REPO = Path(__file__).resolve().parents[2]
PACK = {
    "pack.yaml": "ref: wft\nversion: '1.0.0'\n",
    "workflows/order.yaml": """\
        ref: wft.order
        parameters:
          qty: {type: integer, required: true}
        tasks:
          - name: reserve
            action: core.echo
            input: {message: "reserve {{ parameters.qty }}"}
            next:
              - when: "{{ succeeded() }}"
                do: [bill]
              - when: "{{ failed() }}"
                do: [apologise]
          - name: bill
            action: core.echo
            input: {message: "bill {{ task.reserve.result.id }}"}
          - name: apologise
            action: core.echo
            input: {message: sorry}
        output_map:
          billed: "{{ task.bill.result }}"
    """,
}
PASSING = """\
- name: reserves then bills
  workflow: wft.order
  parameters: {qty: 2}
  results:
    reserve: {result: {id: r-1}}
    bill: {result: ok}
  expect:
    status: succeeded
    sequence: [reserve, bill]
    inputs: {bill: [{message: "bill r-1"}]}
    output: {billed: ok}
"""
FAILING = """\
- name: apologises when the reservation fails
  workflow: wft.order
  parameters: {qty: 2}
  results:
    reserve: {error: out of stock}
  expect:
    status: failed
    sequence: [reserve, bill]
    tasks: {apologise: null}
"""


def _pack(root: Path, tests: str) -> Path:
    folder = root / "wft"
    for name, text in {**PACK, "tests/test_workflows.yaml": tests}.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def test_the_examples_pack_tests_pass(treadle: Cli) -> None:
    result = treadle("test", REPO / "packs" / "examples", code=0)
    lines = result.stdout.splitlines()
    assert lines[0] == "PASS publishes the sum and its double"
    assert lines[-1] == "5 passed, 0 failed"


def test_a_failing_test_lists_each_difference(treadle: Cli) -> None:
    pack = _pack(treadle.workdir, PASSING + FAILING)
    result = treadle("test", pack, code=1)
    assert result.stdout == (
        "PASS reserves then bills\n"
        f"FAIL apologises when the reservation fails ({pack}/tests/test_workflows.yaml:12:3)\n"
        "  status: expected failed, got succeeded\n"
        '  sequence: expected ["reserve", "bill"], got ["reserve", "apologise"]\n'
        "  tasks.apologise: expected never ran, got succeeded\n"
        "1 passed, 1 failed\n"
    )


BAD = [
    ("{name: x}\n", "1:1: a workflow tests file is a list of tests (each with name, workflow "
     "and expect)"),
    ("- name: a\n  workflow: wft.ordr\n  expect: {}\n",
     "2:3: test 'a': no workflow 'wft.ordr' in the loaded packs (did you mean 'wft.order'?)"),
    ("- name: a\n  workflow: wft.order\n  expect: {}\n",
     "1:3: test 'a': invalid parameters: missing required parameter 'qty'"),
    ("- name: a\n  workflow: wft.order\n  parameters: {qty: 1}\n  results: {reserv: 1}\n"
     "  expect: {}\n",
     "4:13: test 'a': results: the workflow has no task 'reserv' (did you mean 'reserve'?)"),
    ("- name: a\n  workflow: wft.order\n  parameters: {qty: 1}\n  results: {bill: {n: 1}}\n"
     "  expect: {}\n",
     "4:13: test 'a': results.bill: an outcome takes ['error', 'hang', 'result', 'seconds', "
     "'timeout'], not ['n']; write a mapping result as {result: {...}}"),
    ("- name: a\n  workflow: wft.order\n  parameters: {qty: 1}\n  expect: {statu: failed}\n",
     "4:12: unknown field 'statu' in test 'a': expect (did you mean 'status'?)"),
    ("- name: a\n  workflow: wft.order\n  parameters: {qty: 1}\n  expected: {}\n",
     "1:3: test 'a': needs 'expect'"),
    ("- workflow: wft.order\n  parameters: {qty: 1}\n  expect: {}\n",
     "1:3: test 1: needs 'name'"),
    ("- name: a\n  workflow: wft.order\n  parameters: {qty: 1}\n  expect: "
     "{tasks: {billl: null}}\n",
     "4:20: test 'a': expect.tasks: the workflow has no task 'billl' (did you mean 'bill'?)"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD, ids=[str(n) for n in range(len(BAD))])
def test_a_bad_tests_file_is_named_by_line_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    pack = _pack(tmp_path, text)
    catalog = load_packs([REPO / "packs", pack])
    file = str(pack / "tests" / "test_workflows.yaml")
    tests, issues = read_test_file(text, file, catalog)
    assert tests == []
    assert [str(issue) for issue in issues if "warning" not in str(issue)][:1] == [
        f"{file}:{message}"
    ]


def test_a_bad_tests_file_is_exit_2_and_runs_nothing(treadle: Cli) -> None:
    pack = _pack(treadle.workdir, PASSING + "- name: reserves then bills\n  workflow: x\n")
    result = treadle("test", pack, code=2)
    assert result.stdout == ""
    file = f"{pack}/tests/test_workflows.yaml"
    assert f"{file}:12:3: test 'reserves then bills': another test is named" in result.stderr
    assert f"{file}:13:3: test 'reserves then bills': no workflow 'x' in the loaded packs" in (
        result.stderr
    )


def test_a_run_that_fails_shows_its_error(tmp_path: Path) -> None:
    loop = """\
        ref: wft.loop
        tasks:
          - name: start
            action: core.noop
            next:
              - do: [again]
          - name: again
            action: core.noop
            next:
              - when: "{{ succeeded() }}"
                do: [again]
    """
    pack = _pack(tmp_path, "")
    (pack / "workflows" / "loop.yaml").write_text(textwrap.dedent(loop), encoding="utf-8")
    catalog = load_packs([REPO / "packs", pack])
    text = "- name: loops\n  workflow: wft.loop\n  expect: {status: succeeded}\n"
    tests, issues = read_test_file(text, "t.yaml", catalog)
    assert issues == []
    [result] = run_workflow_tests(tests)
    assert not result.passed
    assert result.problems == (
        "status: expected succeeded, got failed (LimitExceeded: the run exceeded the maximum "
        "of 1000 task executions (starting task 'again'); raise limits.max_task_executions or "
        "bound the loop)",
    )
