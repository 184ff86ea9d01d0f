"""The embedded thread pool starts waiting dispatches by priority (9 first), then arrival."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from treadle.common.catalog import Catalog
from treadle.common.messages import TaskDispatch, TaskResult
from treadle.common.statuses import AttemptStatus
from treadle.embedded.pool import LocalPublisher
from treadle.scheduler.core.commands import CancelTask, DispatchTask
from treadle.worker.execute import ActionLookup, RunnerSettings


class Recorder:
    """Stands in for the worker's ``execute``: records the order attempts start in; the
    attempt named ``gate`` holds its thread until the test opens it."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.gate_entered = threading.Event()
        self.gate = threading.Event()

    def __call__(
        self, dispatch: TaskDispatch, actions: ActionLookup, settings: RunnerSettings
    ) -> TaskResult:
        self.started.append(dispatch.attempt_id)
        if dispatch.attempt_id == "gate":
            self.gate_entered.set()
            assert self.gate.wait(10), "the test never opened the gate"
        return TaskResult(attempt_id=dispatch.attempt_id, outcome=AttemptStatus.SUCCEEDED)


def dispatch(attempt_id: str, priority: int) -> DispatchTask:
    return DispatchTask(
        TaskDispatch(
            attempt_id=attempt_id, run_id="r", task="t", execution=1, attempt=1,
            action_ref="core.noop", input={},
        ),
        priority=priority,
    )  # fmt: skip


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def pool(recorder: Recorder) -> Iterator[LocalPublisher]:
    publisher = LocalPublisher(Catalog(), RunnerSettings(), threads=1, run=recorder)
    try:
        yield publisher
    finally:
        recorder.gate.set()
        publisher.close()


def results(pool: LocalPublisher, count: int) -> list[str]:
    return [pool.results.get(timeout=10).attempt_id for _ in range(count)]


def test_waiting_dispatches_start_highest_priority_first_then_in_arrival_order(pool, recorder):
    pool.publish([dispatch("gate", 0)])
    assert recorder.gate_entered.wait(10)  # the only thread is busy: the rest wait
    pool.publish([dispatch("low", 0), dispatch("high-1", 9), dispatch("normal", 5)])
    pool.publish([dispatch("high-2", 9), dispatch("low-2", 1)])
    assert pool.in_flight == 6

    recorder.gate.set()

    assert results(pool, 6) == ["gate", "high-1", "high-2", "normal", "low-2", "low"]
    assert recorder.started == ["gate", "high-1", "high-2", "normal", "low-2", "low"]


def test_a_cancelled_dispatch_never_starts_and_a_repeated_one_runs_once(pool, recorder):
    pool.publish([dispatch("gate", 5)])
    assert recorder.gate_entered.wait(10)
    pool.publish([dispatch("doomed", 9), dispatch("kept", 1)])
    pool.publish([dispatch("kept", 1), CancelTask("doomed")])  # again after a crash: once
    assert pool.in_flight == 2

    recorder.gate.set()
    assert results(pool, 2) == ["gate", "kept"]
    pool.close()  # waits for every job the pool was given
    assert recorder.started == ["gate", "kept"]
    assert pool.in_flight == 0


def test_dropping_the_queue_returns_what_waited_and_it_never_starts(pool, recorder):
    pool.publish([dispatch("gate", 5)])
    assert recorder.gate_entered.wait(10)
    pool.publish([dispatch("a", 0), dispatch("b", 9)])

    assert sorted(pool.drop_queued()) == ["a", "b"]
    assert pool.in_flight == 1
    recorder.gate.set()
    pool.close()
    assert recorder.started == ["gate"]
