"""Retry delays, task timeouts and task delays are scheduler timers firing on real time.

The durations are short (tenths of a second); the tests assert what happened, and that a
timer fired for it, not how long it took.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from treadle.scheduler.core.events import TimerFired


def timers_fired(harness: Any, runner: Any, run_id: str) -> list[str]:
    return [
        e.event.timer_id for e in harness.events(runner, run_id) if isinstance(e.event, TimerFired)
    ]


def test_a_retry_waits_on_a_timer_then_succeeds(harness: Any, tmp_path: Path) -> None:
    spec = harness.workflow(
        """\
        ref: tests.retry
        parameters:
          counter_dir: {type: string}
        tasks:
          - name: flaky
            action: examples.flaky
            input:
              key: "{{ system.run_id }}"
              failures: 2
              counter_dir: "{{ parameters.counter_dir }}"
            retry: {count: 3, delay: 0.05}
        output_map:
          calls: "{{ task.flaky.result.calls }}"
        """
    )
    runner = harness.runner()
    run_id, followed = harness.run(runner, spec, {"counter_dir": str(tmp_path)})
    assert followed.state.status == "succeeded"
    document = harness.document(runner, run_id)
    assert document["output"] == {"calls": 3}
    flaky = harness.task(document, "flaky")
    assert (flaky["status"], flaky["attempts"]) == ("succeeded", 3)
    fired = timers_fired(harness, runner, run_id)
    assert len(fired) == 2
    assert all(timer.endswith("/retry") for timer in fired)


def test_a_task_timeout_ends_it_timed_out_and_fires_the_timed_out_transition(
    harness: Any,
) -> None:
    spec = harness.workflow(
        """\
        ref: tests.timeout
        vars:
          outcome: pending
        tasks:
          - name: slow
            action: core.sleep
            input: {seconds: 2}
            timeout: 0.2
            next:
              - when: "{{ succeeded() }}"
                publish: [{outcome: finished}]
              - when: "{{ failed() }}"
                publish: [{outcome: failed}]
              - when: "{{ timed_out() }}"
                publish: [{outcome: timed out}]
                do: [handle]
          - name: handle
            action: core.echo
            input: {message: "slow was {{ task.slow.status }}"}
        output_map:
          outcome: "{{ workflow.outcome }}"
          message: "{{ task.handle.result.message }}"
        """
    )
    runner = harness.runner()
    run_id, followed = harness.run(runner, spec)
    assert followed.state.status == "succeeded"  # the timeout was handled
    document = harness.document(runner, run_id)
    assert document["output"] == {"outcome": "timed out", "message": "slow was timed_out"}
    slow = harness.task(document, "slow")
    assert slow["status"] == "timed_out"
    assert slow["result"] is None
    assert any(timer.endswith("/timeout") for timer in timers_fired(harness, runner, run_id))


def test_a_delayed_task_starts_when_its_timer_fires(harness: Any) -> None:
    spec = harness.workflow(
        """\
        ref: tests.delay
        tasks:
          - name: first
            action: core.echo
            input: {message: one}
            next:
              - when: "{{ succeeded() }}"
                do: [later]
          - name: later
            action: core.echo
            delay: 0.1
            input: {message: "after {{ task.first.result.message }}"}
        output_map:
          later: "{{ task.later.result.message }}"
        """
    )
    runner = harness.runner()
    run_id, followed = harness.run(runner, spec)
    assert followed.state.status == "succeeded"
    document = harness.document(runner, run_id)
    assert document["output"] == {"later": "after one"}
    later = harness.task(document, "later")
    assert (later["status"], later["attempts"]) == ("succeeded", 1)
    fired = timers_fired(harness, runner, run_id)
    assert len(fired) == 1
    assert fired[0].endswith("/delay")
