"""``treadle test PACK`` with the budget keys of the scenario files: a budget given at
start, the workspace's ceiling, answers to the run's budget inquiry, and controls (a
resume with a new budget among them).

Each key has a test that passes and one that fails, printed with its differences as a
user sees them (exit 1); a key that is not what the scenario files take is named by file,
line, column, test and key, and nothing runs (exit 2).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from treadle.common.loader import load_packs
from treadle.scheduler.workflow_tests import read_test_file

from .conftest import Cli

REPO = Path(__file__).resolve().parents[2]
STEPS = """\
tasks:
  - name: a
    action: core.echo
    input: {message: a}
    next: [{do: [b]}]
  - name: b
    action: core.echo
    input: {message: b}
    next: [{do: [c]}]
  - name: c
    action: core.echo
    input: {message: c}
"""
PACK = {
    "pack.yaml": "ref: wfb\nversion: '1.0.0'\n",
    # a and b report 3 USD each: past 5 USD, c is not dispatched
    "workflows/spend.yaml": "ref: wfb.spend\nbudget: {cost_usd: 5}\n" + STEPS,
    # past half of 10 USD, the run asks before c
    "workflows/ask.yaml": "ref: wfb.ask\nbudget: {cost_usd: 10, soft_ratio: 0.5}\n" + STEPS,
}
COSTS = "  results: {a: {result: {cost_usd: 3}}, b: {result: {cost_usd: 3}}}\n"


def _pack(root: Path, tests: str) -> Path:
    folder = root / "wfb"
    for name, text in {**PACK, "tests/test_workflows.yaml": tests}.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def _test(name: str, workflow: str, keys: str, expect: str) -> str:
    return f"- name: {name}\n  workflow: {workflow}\n{COSTS}{keys}  expect: {expect}\n"


def _run(treadle: Cli, *tests: str) -> tuple[Path, str]:
    pack = _pack(treadle.workdir, "".join(tests))
    result = treadle("test", pack, code=1)
    return pack / "tests" / "test_workflows.yaml", result.stdout


def test_a_budget_given_at_start(treadle: Cli) -> None:
    file, out = _run(
        treadle,
        _test("a start budget lets it finish", "wfb.spend", "  budget: {cost_usd: 10}\n",
              "{status: succeeded, budget: {cost_usd: 10.0, spent_usd: 6.0, stop: null}}"),
        _test("without one the declared budget stops it", "wfb.spend", "",
              "{status: succeeded, tasks: {c: succeeded}}"),
    )  # fmt: skip
    assert out == (
        "PASS a start budget lets it finish\n"
        f"FAIL without one the declared budget stops it ({file}:6:3)\n"
        "  status: expected succeeded, got paused\n"
        "  tasks.c: expected succeeded, got running\n"
        "1 passed, 1 failed\n"
    )


def test_a_budget_ceiling(treadle: Cli) -> None:
    file, out = _run(
        treadle,
        _test("the ceiling caps the start's budget", "wfb.spend",
              "  budget: {cost_usd: 10}\n  budget_ceiling: {cost_usd: 4}\n",
              "{status: paused, budget: {cost_usd: 4.0, stop: cost_usd}}"),
        _test("the ceiling wins over the start", "wfb.spend",
              "  budget: {cost_usd: 10}\n  budget_ceiling: {cost_usd: 4}\n",
              "{status: succeeded, budget: {cost_usd: 10.0}}"),
    )  # fmt: skip
    assert out == (
        "PASS the ceiling caps the start's budget\n"
        f"FAIL the ceiling wins over the start ({file}:7:3)\n"
        "  status: expected succeeded, got paused\n"
        "  budget.cost_usd: expected 10.0, got 4.0\n"
        "1 passed, 1 failed\n"
    )


def test_answers_to_the_budget_inquiry(treadle: Cli) -> None:
    file, out = _run(
        treadle,
        _test("continue goes on to the end", "wfb.ask", "  budget_answers: [{continue: true}]\n",
              "{status: succeeded, sequence: [a, b, c], commands: {open_inquiry: 1}}"),
        _test("declining cancels the run", "wfb.ask", "  budget_answers: [{continue: false}]\n",
              "{status: succeeded}"),
        _test("unanswered it waits", "wfb.ask", "", "{status: succeeded}"),
    )  # fmt: skip
    assert out == (
        "PASS continue goes on to the end\n"
        f"FAIL declining cancels the run ({file}:6:3)\n"
        "  status: expected succeeded, got canceled (BudgetDeclined: 60% of the cost budget "
        "used (6.00 of 10.00 USD): rehearsal declined to continue)\n"
        f"FAIL unanswered it waits ({file}:11:3)\n"
        "  status: expected succeeded, got paused\n"
        "1 passed, 2 failed\n"
    )


def test_a_resume_with_a_new_budget_and_other_controls(treadle: Cli) -> None:
    file, out = _run(
        treadle,
        _test("a higher limit lets it finish", "wfb.spend",
              "  controls: [{at: 60, do: resume, budget: {cost_usd: 20}}]\n",
              "{status: succeeded, sequence: [a, b, c], "
              "statuses: [running, pausing, paused, running, succeeded], clock_seconds: 60, "
              "budget: {cost_usd: 20.0, stop: null}}"),
        _test("a limit still reached stops it again", "wfb.spend",
              "  controls: [{at: 60, do: resume, budget: {cost_usd: 5.5}}]\n",
              "{status: succeeded}"),
        _test("a cancel at a time", "wfb.spend",
              "  controls: [{at: 60, do: cancel}]\n", "{status: paused}"),
    )  # fmt: skip
    assert out == (
        "PASS a higher limit lets it finish\n"
        f"FAIL a limit still reached stops it again ({file}:6:3)\n"
        "  status: expected succeeded, got paused\n"
        f"FAIL a cancel at a time ({file}:11:3)\n"
        "  status: expected paused, got canceled (Canceled: canceled on request)\n"
        "1 passed, 2 failed\n"
    )


HEAD = "- name: t\n  workflow: wfb.spend\n"
BAD = [
    ("  budget: {cost_usd: -1}\n",
     "3:12: test 't': budget: cost_usd: Input should be greater than or equal to 0"),
    ("  budget: {tokens: 3}\n",
     "3:12: test 't': budget: tokens: not a budget limit; use one of cost_usd, wall_time, "
     "attempts, items, soft_ratio, step_cost_usd"),
    ("  budget_ceiling: 5\n",
     "3:3: test 't': budget_ceiling: a budget is a mapping of limits, not 5"),
    ("  budget_ceiling: {wall_time: soon}\n",
     "3:20: test 't': budget_ceiling: wall_time: expected a duration: a number of seconds or "
     "text like '500ms', '30s', '5m', '2h' or '1d' (got 'soon')"),
    ("  budget_answers: {continue: true}\n",
     "3:3: test 't': budget_answers must be a list of answers, each {continue: true} or "
     "{continue: false}"),
    ("  budget_answers: [{continue: true}, ok]\n",
     "3:38: test 't': budget_answers[1]: the run's budget inquiry takes {continue: true} or "
     "{continue: false}, not \"ok\""),
    ("  controls: {at: 1, do: pause}\n",
     "3:3: test 't': controls must be a list, each {at, do} or {at, event}"),
    ("  controls: [{do: resume}]\n",
     "3:14: test 't': controls[0] needs 'at' (the seconds after the start it happens at)"),
    ("  controls: [{at: -5, do: pause}]\n",
     "3:15: test 't': controls[0].at must be a number of seconds >= 0, not -5"),
    ("  controls: [{at: 1, do: pasue}]\n",
     "3:26: test 't': controls[0].do must be one of pause, resume, cancel, retry, compensate, "
     "not 'pasue' (did you mean 'pause'?)"),
    ("  controls: [{at: 1}]\n",
     "3:14: test 't': controls[0] needs one of 'do' (pause, resume, cancel, retry, "
     "compensate) or 'event' (an outside event)"),
    ("  controls: [{at: 1, do: pause, budget: {cost_usd: 9}}]\n",
     "3:33: test 't': controls[0].budget: only a resume (do: resume) sets new budget limits"),
    ("  controls: [{at: 1, do: resume, budget: {cost_usd: lots}}]\n",
     "3:43: test 't': controls[0].budget: cost_usd: Input should be a valid number, unable "
     "to parse string as a number"),
    ("  controls: [{at: 1, do: retry, task: bb}]\n",
     "3:33: test 't': controls[0].task: the workflow has no task 'bb' (did you mean 'b'?)"),
    ("  controls: [{at: 1, event: {data: 1}}]\n",
     "3:22: test 't': controls[0].event needs a 'type': the event type, as text"),
    ("  controls: [{at: 1, do: pause, wen: 2}]\n",
     "3:33: unknown field 'wen' in test 't': controls[0]"),
]  # fmt: skip


@pytest.mark.parametrize(("keys", "message"), BAD, ids=[str(n) for n in range(len(BAD))])
def test_a_bad_budget_key_is_named_by_file_line_test_and_key(
    tmp_path: Path, keys: str, message: str
) -> None:
    text = HEAD + keys + "  expect: {}\n"
    pack = _pack(tmp_path, text)
    catalog = load_packs([REPO / "packs", pack])
    file = str(pack / "tests" / "test_workflows.yaml")
    tests, issues = read_test_file(text, file, catalog)
    assert tests == []
    assert [str(issue) for issue in issues] == [f"{file}:{message}"]


def test_a_bad_budget_key_is_exit_2_and_runs_nothing(treadle: Cli) -> None:
    good = _test("fine", "wfb.spend", "  budget: {cost_usd: 10}\n", "{status: succeeded}")
    pack = _pack(treadle.workdir, good + HEAD + "  budget_answers: [yes]\n  expect: {}\n")
    result = treadle("test", pack, code=2)
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"{pack}/tests/test_workflows.yaml:8:20: test 't': budget_answers[0]: the run's budget "
        "inquiry takes {continue: true} or {continue: false}, not true\n"
    )
