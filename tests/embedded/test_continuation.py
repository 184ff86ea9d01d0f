"""A run waiting on a person survives its process: another runner continues it later."""

from __future__ import annotations

from typing import Any

import pytest

from treadle.common.errors import ConflictError, ParameterError


def test_a_second_runner_continues_a_run_the_first_left_waiting(harness: Any) -> None:
    spec = harness.catalog.workflow("examples.inquiry")
    first = harness.runner()
    run_id, followed = harness.run(first, spec, {"version": "9.9.9"})
    assert followed.waiting
    assert followed.state.status == "running"
    [inquiry] = harness.document(first, run_id)["inquiries"]
    assert inquiry["prompt"] == "Deploy version 9.9.9 to production?"
    first.close()

    second = harness.runner()  # same database, nothing in memory
    with pytest.raises(ParameterError):
        second.respond(inquiry["id"], {"comment": "approved missing"}, "ops")
    assert harness.document(second, run_id)["inquiries"][0]["status"] == "pending"

    answered = second.respond(inquiry["id"], {"approved": True}, "ops")
    assert answered.run_id == run_id
    result = second.follow(run_id)
    assert not result.waiting
    assert result.state.status == "succeeded"
    document = harness.document(second, run_id)
    assert document["output"] == {"decision": "approved"}
    assert [t["name"] for t in document["tasks"]] == ["ask_approval", "deploy"]
    assert harness.task(document, "deploy")["result"] == {"message": "Deploying 9.9.9"}

    with pytest.raises(ConflictError):
        second.respond(inquiry["id"], {"approved": False}, "ops")


def test_after_a_restart_the_timers_of_child_runs_still_move_the_run_on(harness: Any) -> None:
    """The answer goes to a child run, whose next task has a delay: following the parent
    from a new runner must wait for the child's timer, not stop as if nothing could move."""
    harness.workflow(
        """\
        ref: tests.asking_child
        tasks:
          - name: ask
            action: core.ask
            input: {prompt: "go on?", schema: {type: object}}
            next:
              - when: "{{ succeeded() }}"
                do: [later]
          - name: later
            action: core.echo
            delay: 0.1
            input: {message: "went on"}
        output_map:
          said: "{{ task.later.result.message }}"
        """
    )
    parent = harness.workflow(
        """\
        ref: tests.asking_parent
        tasks:
          - name: call
            action: tests.asking_child
        output_map:
          child: "{{ task.call.result }}"
        """
    )
    first = harness.runner()
    run_id, followed = harness.run(first, parent)
    assert followed.waiting
    with first.store.unit_of_work() as uow:
        [inquiry] = uow.list_inquiries()
    first.close()

    second = harness.runner()
    second.respond(inquiry.id, {}, "ops")
    result = second.follow(run_id)
    assert (result.state.status, result.waiting) == ("succeeded", False)
    assert result.state.output == {"child": {"said": "went on"}}
