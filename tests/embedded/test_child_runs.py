"""A workflow used as an action starts a child run; its output_map is the task's result."""

from __future__ import annotations

from typing import Any

from treadle.scheduler.service.controls import Control, apply_control

CHILD = """\
ref: tests.child
parameters:
  n: {type: integer, required: true}
tasks:
  - name: say
    action: core.echo
    input: {message: "child got {{ parameters.n }}"}
output_map:
  doubled: "{{ parameters.n * 2 }}"
  said: "{{ task.say.result.message }}"
"""

PARENT = """\
ref: tests.parent
tasks:
  - name: call_child
    action: tests.child
    input: {n: 21}
    next:
      - when: "{{ succeeded() }}"
        do: [after]
  - name: after
    action: core.echo
    input: {message: "child doubled to {{ task.call_child.result.doubled }}"}
output_map:
  from_child: "{{ task.call_child.result }}"
  after: "{{ task.after.result.message }}"
"""

FAILING_CHILD = """\
ref: tests.failing_child
tasks:
  - name: break_down
    action: core.fail
    input: {message: the child broke}
"""

FAILING_PARENT = """\
ref: tests.failing_parent
tasks:
  - name: call_child
    action: tests.failing_child
    next:
      - when: "{{ succeeded() }}"
        do: [never]
  - name: never
    action: core.noop
"""


def test_the_child_output_map_is_the_task_result(harness: Any) -> None:
    harness.workflow(CHILD)
    parent = harness.workflow(PARENT)
    runner = harness.runner()
    run_id, followed = harness.run(runner, parent)
    assert followed.state.status == "succeeded"

    document = harness.document(runner, run_id)
    assert document["output"] == {
        "from_child": {"doubled": 42, "said": "child got 21"},
        "after": "child doubled to 42",
    }
    call = harness.task(document, "call_child")
    assert call["result"] == {"doubled": 42, "said": "child got 21"}
    child_id = call["child_run"]

    child = harness.document(runner, child_id)
    assert child["workflow"] == "tests.child"
    assert child["parent_run"] == run_id
    assert child["status"] == "succeeded"
    assert child["parameters"] == {"n": 21}
    assert child["output"] == call["result"]


def test_a_failing_child_fails_the_task_and_the_run(harness: Any) -> None:
    harness.workflow(FAILING_CHILD)
    parent = harness.workflow(FAILING_PARENT)
    runner = harness.runner()
    run_id, followed = harness.run(runner, parent)
    assert followed.state.status == "failed"

    document = harness.document(runner, run_id)
    call = harness.task(document, "call_child")
    assert call["status"] == "failed"
    child_id = call["child_run"]
    assert call["error"]["type"] == "ChildRunFailed"
    assert call["error"]["message"].startswith(f"child run {child_id} ended failed")
    assert "the child broke" in call["error"]["message"]
    assert [t["name"] for t in document["tasks"]] == ["call_child"]
    assert "'call_child'" in document["error"]["message"]
    assert harness.document(runner, child_id)["status"] == "failed"


def test_a_child_with_bad_parameters_fails_the_task_without_starting(harness: Any) -> None:
    harness.workflow(CHILD)
    parent = harness.workflow(PARENT.replace("{n: 21}", "{n: twenty-one}"))
    runner = harness.runner()
    run_id, followed = harness.run(runner, parent)
    assert followed.state.status == "failed"
    call = harness.task(harness.document(runner, run_id), "call_child")
    assert call["error"]["type"] == "InvalidInput"
    assert "parameter 'n'" in call["error"]["message"]
    with runner.store.unit_of_work() as uow:
        assert uow.child_runs(run_id) == []


def test_a_child_workflow_that_cannot_compile_fails_the_task(harness: Any) -> None:
    """A pack workflow with a dangling transition loads (only validation reports it); a
    parent calling it gets a failed task naming the problem, not a crashed loop."""
    harness.workflow(
        """\
        ref: tests.dangling_child
        tasks:
          - name: first
            action: core.noop
            next: [{do: [nowhere]}]
        """
    )
    parent = harness.workflow(
        """\
        ref: tests.calls_dangling
        tasks:
          - name: call_child
            action: tests.dangling_child
        """
    )
    runner = harness.runner()
    run_id, followed = harness.run(runner, parent)
    assert followed.state.status == "failed"
    call = harness.task(harness.document(runner, run_id), "call_child")
    assert call["error"] == {
        "type": "InvalidWorkflow",
        "message": "<test>:5:18: task 'first' transitions to unknown task 'nowhere'",
    }
    with runner.store.unit_of_work() as uow:
        assert uow.child_runs(run_id) == []
        assert uow.list_definition_versions("tests.dangling_child") == []


def test_canceling_a_parent_cancels_its_running_child(harness: Any) -> None:
    runner = harness.runner()
    harness.workflow(
        """
        ref: tests.slow_child
        tasks:
          - {name: later, action: core.noop, delay: 3600}
        """
    )
    parent = harness.workflow(
        """
        ref: tests.parent_of_slow
        tasks:
          - {name: call, action: tests.slow_child}
        """
    )
    run_id = runner.start(parent, {})
    runner.relay.drain()  # starts the child, which waits on its delay
    (child_id,) = runner.relay.child_runs_started
    canceled = apply_control(runner.runs, run_id, Control.CANCEL, reason="not needed any more")
    assert canceled.status.value == "canceled"
    assert canceled.error == {"type": "Canceled", "message": "not needed any more"}
    runner.relay.drain()  # carries the cancellation to the child
    child = runner.runs.load(child_id)
    assert child.status.value == "canceled"
    assert child.error == {"type": "Canceled", "message": f"its parent run {run_id} canceled it"}
    assert not child.timers
    assert harness.document(runner, run_id)["tasks"][0]["status"] == "canceled"
