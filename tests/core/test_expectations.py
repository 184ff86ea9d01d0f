"""Each ``expect`` key of scenario files and workflow tests can fail, and says how.

One rehearsed run (a retried task, a with_items task, a published variable, an output);
for every key, a right expectation gives no difference and a wrong one gives exactly the
message a user would read.
"""

from __future__ import annotations

from typing import Any

import pytest

from treadle.common.graph import compile_graph
from treadle.common.loader import load_workflow_text
from treadle.scheduler.rehearsal import Rehearsal
from treadle.scheduler.workflow_tests import EXPECT_KEYS, RunScript, differences, rehearse_script

FLOW = """\
ref: t.exp
vars: {n: null}
tasks:
  - name: fetch
    action: x.fetch
    retry: {count: 1, delay: 2}
    next:
      - when: "{{ succeeded() }}"
        publish: [{n: "{{ task.fetch.result.n }}"}]
        do: [each]
      - when: "{{ failed() }}"
        do: [never]
  - name: each
    action: x.each
    with_items: "{{ [1, 2] }}"
    input: {i: "{{ item }}"}
  - name: never
    action: x.never
output_map: {n: "{{ workflow.n }}"}
"""


@pytest.fixture(scope="module")
def record() -> Rehearsal:
    graph = compile_graph(load_workflow_text(FLOW, "flow.yaml"))
    results = {"fetch": [{"error": "boom"}, {"result": {"n": 3}}]}
    return rehearse_script(graph, RunScript(results=results))


CASES: list[tuple[str, Any, Any, str]] = [
    ("status", "succeeded", "failed", "status: expected failed, got succeeded"),
    ("sequence", ["fetch", "each"], ["each"], 'sequence: expected ["each"], got ["fetch", "each"]'),
    ("statuses", ["running", "succeeded"], ["running"],
     'statuses: expected ["running"], got ["running", "succeeded"]'),
    ("tasks", {"never": None}, {"never": "succeeded"},
     "tasks.never: expected succeeded, got never ran"),
    ("attempts", {"fetch": 2}, {"fetch": 1}, "attempts.fetch: expected 1, got 2"),
    ("results", {"fetch": {"n": 3}}, {"fetch": {"n": 4}},
     "results.fetch.n: expected 4, got 3"),
    ("task_errors", {"fetch": None}, {"fetch": {"type": "X"}},
     'task_errors.fetch: expected {"type": "X"}, got none'),
    ("output", {"n": 3}, {"n": 3, "m": 1}, "output.m: expected 1, got nothing"),
    ("error", None, {"contains": "x"}, 'error: expected {"contains": "x"}, got none'),
    ("vars", {"n": 3}, {"n": 2}, "vars.n: expected 2, got 3"),
    ("dispatched", 4, 3, "dispatched: expected 3, got 4"),
    ("inputs", {"each": [{"i": 1}, {"i": 2}]}, {"each": [{"i": 1}]},
     'inputs.each: expected [{"i": 1}], got [{"i": 1}, {"i": 2}]'),
    ("commands", {"dispatch_task": 4}, {"dispatch_task": 1},
     "commands.dispatch_task: expected 1, got 4"),
    ("clock_seconds", 2, 3, "clock_seconds: expected 3, got 2"),
    ("budget", None, {"spent_usd": 1},
     'budget: expected {"spent_usd": 1}, the run has no budget'),
]  # fmt: skip


def test_every_key_has_a_case() -> None:
    assert {key for key, *_ in CASES} == EXPECT_KEYS


@pytest.mark.parametrize(("key", "right", "wrong", "message"), CASES, ids=[c[0] for c in CASES])
def test_a_wrong_expectation_says_what_was_expected_and_what_happened(
    record: Rehearsal, key: str, right: Any, wrong: Any, message: str
) -> None:
    assert differences(record, {key: right}) == []
    assert differences(record, {key: wrong}) == [message]
