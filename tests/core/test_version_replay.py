"""Replaying a recorded run against a new version: each kind of change, reported precisely.

The recorded run is rehearsed on the pure core (scripted results, a fake clock); its event
log is then fed to a changed definition, as ``treadle replay`` does with a stored run or a
golden record. Every test names the step, what differs, and the recorded and new values.
"""

from __future__ import annotations

from typing import Any

from treadle.common.graph import Graph, compile_graph
from treadle.common.loader import load_workflow_text
from treadle.scheduler.rehearsal import EPOCH, Rehearsal, rehearse, scripted
from treadle.scheduler.version_replay import Change, Divergence, ReplayReport, replay_against

FLOW = """\
ref: t.orders
vars: {total: null}
tasks:
  - name: fetch
    action: x.fetch
    input: {id: 7}
    retry: {count: 2, delay: 5}
    next:
      - when: "{{ succeeded() }}"
        publish:
          - total: "{{ task.fetch.result.amount }}"
        do: [lines]
  - name: lines
    action: x.line
    with_items: "{{ task.fetch.result.lines }}"
    input: {line: "line {{ item }}"}
    next:
      - do: [notify]
  - name: notify
    action: x.mail
    input: {body: "total {{ workflow.total }}"}
output_map:
  total: "{{ workflow.total }}"
"""
RESULTS: dict[str, Any] = {
    "fetch": [{"error": "timeout"}, {"result": {"amount": 12, "lines": ["a", "b"]}}],
    "lines": {"items": [{"result": "A"}, {"result": "B"}]},
    "notify": {"result": {"sent": True}},
}


def _graph(text: str) -> Graph:
    return compile_graph(load_workflow_text(text, "flow.yaml"))


def _recorded() -> tuple[Graph, Rehearsal]:
    graph = _graph(FLOW)
    record = rehearse(graph, script=scripted(RESULTS))
    assert record.status.value == "succeeded"
    assert record.sequence == ["fetch", "lines", "notify"]
    return graph, record


def _against(text: str) -> ReplayReport:
    graph, record = _recorded()
    return replay_against(graph, _graph(text), "r-rehearsal", EPOCH, record.events)


def _lines(report: ReplayReport) -> list[str]:
    return [str(d) for d in report.divergences]


def test_the_same_version_is_identical() -> None:
    report = _against(FLOW)
    assert report.identical
    assert (report.steps_recorded, report.steps_new) == (3, 3)


def test_a_renamed_task_is_removed_under_its_old_name_and_new_under_the_other() -> None:
    renamed = FLOW.replace("name: notify", "name: mail_out").replace("[notify]", "[mail_out]")
    report = _against(renamed)
    assert _lines(report) == [
        "mail_out: added: the new version runs it (x.mail); the record has no result for it,"
        " so its branch of the replay ends here",
        "notify: removed: the recorded run ran it (x.mail, succeeded); the new version does not",
        'run status: recorded "succeeded", new "running"',
    ]


def test_an_added_task_is_new_and_ends_its_branch() -> None:
    added = FLOW.replace(
        "      - do: [notify]\n",
        "      - do: [audit]\n  - name: audit\n    action: x.audit\n    input: {n: 1}\n"
        "    next:\n      - do: [notify]\n",
    )
    report = _against(added)
    assert report.divergences == (
        Divergence(
            "audit",
            Change.ADDED,
            "the new version runs it (x.audit); the record has no result for it, so its "
            "branch of the replay ends here",
            None,
            "running",
        ),
        Divergence(
            "notify",
            Change.REMOVED,
            "the recorded run ran it (x.mail, succeeded); the new version does not",
            "succeeded",
            None,
        ),
        Divergence("run", Change.RUN, "status", "succeeded", "running"),
    )


def test_a_changed_input_template_is_named_per_item_with_both_values() -> None:
    changed = FLOW.replace('input: {line: "line {{ item }}"}', 'input: {line: "L-{{ item }}"}')
    assert _lines(_against(changed)) == [
        'lines: input line (item 0, attempt 1): recorded "line a", new "L-a"',
        'lines: input line (item 1, attempt 1): recorded "line b", new "L-b"',
    ]


def test_a_changed_publish_is_named_and_followed_into_later_inputs() -> None:
    changed = FLOW.replace(
        'total: "{{ task.fetch.result.amount }}"', 'total: "{{ task.fetch.result.amount * 2 }}"'
    )
    assert _lines(_against(changed)) == [
        "fetch: published total: recorded 12, new 24",
        'notify: input body (attempt 1): recorded "total 12", new "total 24"',
        'run output: recorded {"total":12}, new {"total":24}',
    ]


def test_a_changed_action_and_a_retry_the_record_never_made() -> None:
    """Fewer retries: attempt 2's recorded result is never asked for, the task fails."""
    changed = FLOW.replace("action: x.fetch", "action: x.fetch2").replace(
        "retry: {count: 2, delay: 5}", "retry: {count: 0}"
    )
    assert _lines(_against(changed)) == [
        'fetch: action: recorded "x.fetch", new "x.fetch2"',
        "fetch: published total: recorded 12, new (absent)",
        'fetch: status: recorded "succeeded", new "failed"',
        "lines: removed: the recorded run ran it (x.line, succeeded); the new version does not",
        "notify: removed: the recorded run ran it (x.mail, succeeded); the new version does not",
        'run status: recorded "succeeded", new "failed"',
        'run output: recorded {"total":12}, new null',
    ]


def test_more_retries_than_recorded_make_a_new_call() -> None:
    graph = _graph(FLOW)
    always_failing = rehearse(graph, script=scripted({"fetch": {"error": "down"}}))
    assert always_failing.status.value == "failed"
    more = FLOW.replace("retry: {count: 2, delay: 5}", "retry: {count: 3, delay: 5}")
    report = replay_against(graph, _graph(more), "r-rehearsal", EPOCH, always_failing.events)
    assert _lines(report) == [
        "fetch: new call: (attempt 4): the record has no result for this call, so its branch "
        "of the replay ends here",
        'run status: recorded "failed", new "running"',
    ]
