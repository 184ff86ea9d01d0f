"""Worker results delivered twice, or for an attempt that was superseded, change nothing.

These tests hand results to the run service themselves (as a broker redelivering would)
instead of letting the thread pool run the attempts, so they decide what arrives when.
"""

from __future__ import annotations

from typing import Any

from treadle.common.messages import ErrorInfo, TaskResult
from treadle.common.statuses import AttemptStatus
from treadle.scheduler.core.events import TaskSucceeded
from treadle.scheduler.service.timers import fire_due_timers


def succeeded(attempt_id: str, message: str) -> TaskResult:
    return TaskResult(
        attempt_id=attempt_id,
        outcome=AttemptStatus.SUCCEEDED,
        result={"message": message},
        worker="test-worker",
    )


def attempts_of(runner: Any, run_id: str) -> list[Any]:
    with runner.store.unit_of_work() as uow:
        return uow.list_attempts(run_id)


def test_the_same_result_twice_is_recorded_once(harness: Any) -> None:
    runner = harness.runner()
    run_id = runner.start(harness.catalog.workflow("examples.hello_world"), {})
    [attempt] = attempts_of(runner, run_id)
    result = succeeded(attempt.attempt_id, "from the test")

    runner.runs.apply_results([result])
    runner.runs.apply_results([result])  # redelivered
    runner.runs.apply_results([result, result])  # and twice in one batch

    [recorded] = attempts_of(runner, run_id)
    assert recorded.status == "succeeded"
    assert recorded.worker == "test-worker"
    successes = [
        e.event
        for e in harness.events(runner, run_id)
        if isinstance(e.event, TaskSucceeded) and e.event.attempt_id == attempt.attempt_id
    ]
    assert len(successes) == 1
    document = harness.document(runner, run_id)
    assert document["status"] == "succeeded"
    assert document["output"] == {"greeting": "from the test"}
    assert harness.task(document, "say_hello")["attempts"] == 1


def test_a_result_for_a_superseded_attempt_is_ignored(harness: Any, manual_clock: Any) -> None:
    spec = harness.workflow(
        """\
        ref: tests.superseded
        tasks:
          - name: call
            action: core.echo
            input: {message: fresh}
            timeout: 5
            retry: {count: 1}
        output_map:
          said: "{{ task.call.result.message }}"
        """
    )
    runner = harness.runner(clock=manual_clock)
    run_id = runner.start(spec, {})
    [first] = attempts_of(runner, run_id)

    manual_clock.advance(6)  # the first attempt runs past its timeout: the retry replaces it
    fire_due_timers(runner.store, runner.runs, clock=manual_clock)
    first_now, second = attempts_of(runner, run_id)
    assert first_now.attempt_id == first.attempt_id
    assert first_now.status == "canceled"
    assert second.status == "queued"
    logged = len(harness.events(runner, run_id))
    before = harness.document(runner, run_id)

    # the first attempt's worker finally answers: through the store, and straight to the core
    runner.runs.apply_results([succeeded(first.attempt_id, "late")])
    late = TaskSucceeded(attempt_id=first.attempt_id, result={"message": "late"})
    with runner.store.unit_of_work() as uow:
        runner.runs.apply_in(uow, [(run_id, late)])
    assert len(harness.events(runner, run_id)) == logged
    assert harness.document(runner, run_id) == before
    assert attempts_of(runner, run_id)[0].status == "canceled"

    runner.runs.apply_results([succeeded(second.attempt_id, "on time")])
    document = harness.document(runner, run_id)
    assert document["status"] == "succeeded"
    assert document["output"] == {"said": "on time"}
    assert harness.task(document, "call")["attempts"] == 2


def test_a_failure_for_a_finished_attempt_does_not_undo_its_success(harness: Any) -> None:
    runner = harness.runner()
    run_id = runner.start(harness.catalog.workflow("examples.hello_world"), {})
    [attempt] = attempts_of(runner, run_id)
    runner.runs.apply_results([succeeded(attempt.attempt_id, "done")])
    late_failure = TaskResult(
        attempt_id=attempt.attempt_id,
        outcome=AttemptStatus.FAILED,
        error=ErrorInfo(type="WorkerLost", message="redelivered after a crash"),
    )
    runner.runs.apply_results([late_failure])
    assert attempts_of(runner, run_id)[0].status == "succeeded"
    document = harness.document(runner, run_id)
    assert (document["status"], document["output"]) == ("succeeded", {"greeting": "done"})
