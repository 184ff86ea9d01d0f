"""Commands become outbox, attempt, timer and inquiry rows in the transaction of the save."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from treadle.common.messages import TaskDispatch
from treadle.common.statuses import AttemptStatus, InquiryStatus, RunStatus, TaskStatus
from treadle.scheduler.core import commands as cmd
from treadle.scheduler.core import events as ev
from treadle.scheduler.core.endings import AttemptEnding
from treadle.scheduler.core.state import TimerKind
from treadle.scheduler.store import Store
from treadle.scheduler.store.decision_codec import decode_command
from treadle.scheduler.store.models import outbox

ERROR = {"type": "E", "message": "m"}


@pytest.fixture
def run(store: Store, build, save_one):
    """A stored run to attach commands to, and a function saving commands against it."""
    state = build.realistic_state(items=6)
    with store.unit_of_work() as uow:
        uow.insert_run(state)

    def save(*commands: cmd.Command, at=None, **kwargs) -> None:
        now = build.t0 if at is None else at
        with store.unit_of_work() as uow:
            save_one(uow, state, state, [(ev.TimerFired(timer_id="x"), now)], commands, **kwargs)

    return save


def test_dispatches_become_outbox_messages_and_queued_attempts(store: Store, build, run) -> None:
    run(
        build.dispatch("run-1", 2, 0, item_index=0),
        build.dispatch("run-1", 2, 5, item_index=5, timeout=30, queue="gpu"),
        build.dispatch("run-1", 1, 0, attempt=2),
        cmd.DispatchTask(
            TaskDispatch(
                attempt_id="custom-id",
                run_id="run-1",
                task="fan_out",
                execution=2,
                item_index=3,
                attempt=1,
                action_ref="core.noop",
            )
        ),
        default_queue="general",
    )
    with store.unit_of_work() as uow:
        messages = uow.claim_outbox(10)
        attempts = uow.list_attempts("run-1")
    commands = [decode_command(m.payload) for m in messages]
    assert [type(c) for c in commands] == [cmd.DispatchTask] * 4
    assert commands[0] == build.dispatch("run-1", 2, 0, item_index=0)
    assert messages[0].run_id == "run-1"
    by_id = {a.attempt_id: a for a in attempts}
    # The dispatch's own (pinned) queue, else the deployment's default queue.
    assert {a.attempt_id: a.queue for a in attempts} == {
        "run-1/2/0/1": "general",
        "run-1/2/5/1": "gpu",
        "run-1/1/0/2": "general",
        "custom-id": "general",
    }
    gpu = by_id["run-1/2/5/1"]
    assert (gpu.execution_id, gpu.position, gpu.attempt) == (2, 5, 1)
    assert gpu.status is AttemptStatus.QUEUED
    assert gpu.queue == "gpu"
    assert gpu.dispatched_at == build.t0
    assert gpu.deadline == build.t0 + timedelta(seconds=30)
    assert by_id["run-1/2/0/1"].deadline is None
    assert by_id["run-1/1/0/2"].position == 0
    assert by_id["custom-id"].position == 3  # found by item index


def _recorded(uow, ending: AttemptEnding) -> bool:
    """Record one ending; whether it was the attempt's first."""
    return uow.record_results([ending]) == {ending.attempt_id}


def test_results_are_recorded_once(store: Store, build, run) -> None:
    run(build.dispatch("run-1", 2, 1, item_index=1))
    attempt_id = "run-1/2/1/1"
    t0 = build.t0
    with store.unit_of_work() as uow:
        uow.mark_attempt_started(attempt_id, "worker-a", t0 + timedelta(seconds=1))
        assert uow.get_attempt(attempt_id).status is AttemptStatus.RUNNING
        first = _recorded(
            uow,
            AttemptEnding(
                attempt_id,
                AttemptStatus.FAILED,
                worker=None,
                started_at=None,
                finished_at=t0 + timedelta(seconds=2),
                error={"type": "E", "message": "m"},
            ),
        )
        again = _recorded(
            uow,
            AttemptEnding(
                attempt_id,
                AttemptStatus.SUCCEEDED,
                worker="worker-b",
                started_at=t0,
                finished_at=t0 + timedelta(seconds=3),
                error=None,
            ),
        )
        unknown = _recorded(
            uow,
            AttemptEnding(
                "run-1/9/9/9",
                AttemptStatus.SUCCEEDED,
                worker=None,
                started_at=None,
                finished_at=None,
                error=None,
            ),
        )
        attempt = uow.get_attempt(attempt_id)
    assert (first, again, unknown) == (True, False, False)
    assert attempt.status is AttemptStatus.FAILED
    assert attempt.worker == "worker-a"
    assert attempt.started_at == t0 + timedelta(seconds=1)
    assert attempt.finished_at == t0 + timedelta(seconds=2)
    assert attempt.error == {"type": "E", "message": "m"}


def test_attempts_past_their_deadline_are_found_until_they_end(store: Store, build, run) -> None:
    t0 = build.t0
    run(
        build.dispatch("run-1", 2, 0, item_index=0, timeout=10),
        build.dispatch("run-1", 2, 1, item_index=1, timeout=60),
        build.dispatch("run-1", 2, 2, item_index=2),
    )
    with store.unit_of_work() as uow:
        assert uow.stuck_attempts(t0 + timedelta(seconds=5), 10) == []
        stuck = uow.stuck_attempts(t0 + timedelta(seconds=61), 10)
        assert [a.attempt_id for a in stuck] == ["run-1/2/0/1", "run-1/2/1/1"]
        assert [a.attempt_id for a in uow.stuck_attempts(t0 + timedelta(hours=1), 1)] == [
            "run-1/2/0/1"
        ]
        _recorded(
            uow,
            AttemptEnding(
                "run-1/2/0/1",
                AttemptStatus.TIMED_OUT,
                worker=None,
                started_at=None,
                finished_at=t0 + timedelta(seconds=61),
                error={"type": "Timeout", "message": "no answer"},
                reason="worker gone",
            ),
        )
        assert [a.attempt_id for a in uow.stuck_attempts(t0 + timedelta(hours=1), 10)] == [
            "run-1/2/1/1"
        ]
        assert uow.get_attempt("run-1/2/0/1").reason == "worker gone"


def test_cancels_child_runs_and_parent_notices_go_to_the_outbox(store: Store, build, run) -> None:
    run(build.dispatch("run-1", 2, 3, item_index=3))
    run(
        cmd.CancelTask(attempt_id="run-1/2/3/1"),
        cmd.StartChildRun("run-1.4.0.1", "examples.child", {"n": [1, 2]}, "run-1/4/0/1", 2),
        cmd.CancelChildRun("run-1.4.0.1"),
        cmd.ReportEndToParent(
            "parent-9/2/0/1", RunStatus.FAILED, None, {"type": "E", "message": "m"}
        ),
        cmd.CompleteRun(RunStatus.SUCCEEDED, {"x": 1}),  # no parent: nothing to send
        cmd.EmitLifecycleEvent("fan_out", 2, TaskStatus.RUNNING, build.t0),
        at=build.t0 + timedelta(seconds=9),
    )
    with store.unit_of_work() as uow:
        messages = uow.claim_outbox(10)
        attempt = uow.get_attempt("run-1/2/3/1")
    commands = [decode_command(m.payload) for m in messages]
    assert commands[1:] == [
        cmd.CancelTask(attempt_id="run-1/2/3/1"),
        cmd.StartChildRun("run-1.4.0.1", "examples.child", {"n": [1, 2]}, "run-1/4/0/1", 2),
        cmd.CancelChildRun("run-1.4.0.1"),
        cmd.ReportEndToParent(
            "parent-9/2/0/1", RunStatus.FAILED, None, {"type": "E", "message": "m"}
        ),
    ]
    assert type(commands[0]) is cmd.DispatchTask
    assert {m.run_id for m in messages} == {"run-1"}
    assert attempt.status is AttemptStatus.CANCELED
    assert attempt.finished_at == build.t0 + timedelta(seconds=9)


def test_timers_are_scheduled_replaced_canceled_and_come_due_in_order(
    store: Store, build, run
) -> None:
    t0 = build.t0
    run(
        cmd.ScheduleTimer("run-1/a/retry", t0 + timedelta(seconds=30), TimerKind.RETRY),
        cmd.ScheduleTimer("run-1/b/timeout", t0 + timedelta(seconds=10), TimerKind.TIMEOUT),
        cmd.ScheduleTimer("run-1/c/delay", t0 + timedelta(seconds=20), TimerKind.DELAY),
        cmd.ScheduleTimer("run-1/d/delay", t0 + timedelta(seconds=5), TimerKind.DELAY),
        cmd.CancelTimer("run-1/d/delay"),
    )
    run(cmd.ScheduleTimer("run-1/a/retry", t0 + timedelta(seconds=15), TimerKind.RETRY))
    with store.unit_of_work() as uow:
        assert uow.next_timer_at() == t0 + timedelta(seconds=10)
        assert uow.due_timers(t0 + timedelta(seconds=9), 10) == []
        due = uow.due_timers(t0 + timedelta(seconds=20), 10)
        assert [(t.id, t.kind) for t in due] == [
            ("run-1/b/timeout", TimerKind.TIMEOUT),
            ("run-1/a/retry", TimerKind.RETRY),
            ("run-1/c/delay", TimerKind.DELAY),
        ]
        assert due[0].run_id == "run-1"
        assert due[0].fire_at == t0 + timedelta(seconds=10)
        assert len(uow.due_timers(t0 + timedelta(seconds=20), 2)) == 2
        uow.delete_timers([t.id for t in due[:2]])
        assert uow.next_timer_at() == t0 + timedelta(seconds=20)
        uow.delete_timers(["run-1/c/delay"])
        assert uow.next_timer_at() is None


def test_inquiries_are_opened_answered_once_and_closed(store: Store, build, run) -> None:
    from treadle.common.errors import ConflictError, NotFound

    t0 = build.t0
    run(
        cmd.OpenInquiry(
            "iq_1",
            "run-1/3/0/1",
            "approve",
            {"text": "Deploy?"},
            {"type": "object", "properties": {"ok": {"type": "boolean"}}},
            ["ops", "ada"],
            t0 + timedelta(hours=1),
        ),
        cmd.OpenInquiry("iq_2", "run-1/3/0/2", "approve", "Really?", None, None, None),
    )
    with store.unit_of_work() as uow:
        pending = uow.list_inquiries(status=InquiryStatus.PENDING)
        assert [i.id for i in pending] == ["iq_1", "iq_2"]
        first = uow.get_inquiry("iq_1")
        assert first.prompt == {"text": "Deploy?"}
        assert first.assigned_to == ["ops", "ada"]
        assert first.deadline == t0 + timedelta(hours=1)
        assert first.created_at == t0
        uow.answer_inquiry("iq_1", {"ok": True}, "ada", t0 + timedelta(minutes=5))
        with pytest.raises(ConflictError, match="answered"):
            uow.answer_inquiry("iq_1", {"ok": False}, "bob", t0 + timedelta(minutes=6))
        with pytest.raises(NotFound, match="iq_9"):
            uow.answer_inquiry("iq_9", {}, None, t0)
        with pytest.raises(NotFound, match="iq_9"):
            uow.get_inquiry("iq_9")
    run(cmd.CloseInquiry("iq_2", InquiryStatus.TIMED_OUT))
    with store.unit_of_work() as uow:
        answered = uow.get_inquiry("iq_1")
        assert (answered.status, answered.response, answered.responder) == (
            InquiryStatus.ANSWERED,
            {"ok": True},
            "ada",
        )
        assert answered.answered_at == t0 + timedelta(minutes=5)
        assert uow.get_inquiry("iq_2").status is InquiryStatus.TIMED_OUT
        assert uow.list_inquiries(status=InquiryStatus.PENDING) == []
        assert len(uow.list_inquiries(run_id="run-1")) == 2
        assert uow.list_inquiries(run_id="other") == []


def test_a_failed_save_leaves_no_rows_behind(store: Store, build, save_one) -> None:
    state = build.realistic_state(items=2)
    with store.unit_of_work() as uow:
        uow.insert_run(state)

    def save_then_crash() -> None:
        with store.unit_of_work() as uow:
            save_one(
                uow,
                state,
                replace(state, status=RunStatus.PAUSED),
                [(ev.PauseRequested(), build.t0)],
                [build.dispatch("run-1", 2, 0, item_index=0)],
            )
            raise RuntimeError("crash after save, before commit")

    with pytest.raises(RuntimeError, match="crash"):
        save_then_crash()
    with store.unit_of_work() as uow:
        assert uow.claim_outbox(10) == []
        assert uow.list_attempts("run-1") == []
        assert uow.list_events("run-1") == []
        assert uow.load_run("run-1").status is RunStatus.RUNNING


def test_sent_messages_are_not_claimed_again(store: Store, build, run) -> None:
    run(*(build.dispatch("run-1", 2, i, item_index=i) for i in range(5)))
    with store.unit_of_work() as uow:
        first = uow.claim_outbox(3)
        uow.mark_outbox_sent([m.id for m in first], build.t0)
    with store.unit_of_work() as uow:
        rest = uow.claim_outbox(10)
        assert uow.pending_outbox_count() == 2
    # not marked sent (say the relay died before the broker confirmed): claimed again
    with store.unit_of_work() as uow:
        again = uow.claim_outbox(10)
    assert [decode_command(m.payload).dispatch.item_index for m in first] == [0, 1, 2]
    assert [decode_command(m.payload).dispatch.item_index for m in rest] == [3, 4]
    assert again == rest
    with store.engine.connect() as connection:
        tries = connection.execute(select(outbox.c.publish_attempts).order_by(outbox.c.id))
        # counted when marked sent: a claim whose publish fails is rolled back with it
        assert [row[0] for row in tries] == [1, 1, 1, 0, 0]


def test_concurrent_claims_never_share_a_row_on_postgresql(
    pg_store: Store, build, save_one
) -> None:
    state = build.realistic_state(items=1)
    with pg_store.unit_of_work() as uow:
        uow.insert_run(state)
        save_one(
            uow,
            state,
            state,
            [],
            [build.dispatch("run-1", 2, i, attempt=i + 1) for i in range(200)],
        )
    # Two open transactions: the second skips what the first holds.
    with pg_store.unit_of_work() as first, pg_store.unit_of_work() as second:
        held = first.claim_outbox(5)
        other = second.claim_outbox(5)
        assert {m.id for m in held}.isdisjoint(m.id for m in other)
        assert len(other) == 5
        timers_first = first.due_timers(build.t0, 10)
        assert timers_first == []
    # Two threads draining the outbox together publish every message exactly once.
    claimed: list[list[int]] = [[], []]
    start = threading.Barrier(2)

    def drain(slot: int) -> None:
        start.wait()
        while True:
            with pg_store.unit_of_work() as uow:
                batch = uow.claim_outbox(7)
                if not batch:
                    return
                claimed[slot].extend(m.id for m in batch)
                uow.mark_outbox_sent([m.id for m in batch], build.t0)

    threads = [threading.Thread(target=drain, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    all_ids = claimed[0] + claimed[1]
    assert len(all_ids) == len(set(all_ids)) == 200
    with pg_store.engine.connect() as connection:
        unsent = connection.execute(
            select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        ).scalar_one()
    assert unsent == 0


def test_concurrent_timer_claims_never_share_a_row_on_postgresql(
    pg_store: Store, build, save_one
) -> None:
    state = build.realistic_state(items=1)
    t0 = build.t0
    with pg_store.unit_of_work() as uow:
        uow.insert_run(state)
        save_one(
            uow,
            state,
            state,
            [],
            [
                cmd.ScheduleTimer(f"run-1/{i}/retry", t0 + timedelta(seconds=i), TimerKind.RETRY)
                for i in range(10)
            ],
        )
    with pg_store.unit_of_work() as first, pg_store.unit_of_work() as second:
        a = first.due_timers(t0 + timedelta(minutes=1), 4)
        b = second.due_timers(t0 + timedelta(minutes=1), 10)
    assert [t.id for t in a] == [f"run-1/{i}/retry" for i in range(4)]
    assert [t.id for t in b] == [f"run-1/{i}/retry" for i in range(4, 10)]


def test_each_start_of_an_attempt_is_counted(store: Store, build, run) -> None:
    run(build.dispatch("run-1", 2, 1, item_index=1))
    attempt_id = "run-1/2/1/1"
    t0 = build.t0
    with store.unit_of_work() as uow:
        first = uow.mark_attempt_started(attempt_id, "worker-a", t0)
        # worker-a died; the broker redelivered the message to worker-b
        second = uow.mark_attempt_started(attempt_id, "worker-b", t0 + timedelta(seconds=5))
        entry = uow.get_attempt(attempt_id)
        unknown = uow.mark_attempt_started("run-1/9/9/9", "worker-a", t0)
    assert (first, second, unknown) == (1, 2, None)
    assert entry.deliveries == 2
    assert entry.worker == "worker-b"
    with store.unit_of_work() as uow:
        _recorded(
            uow,
            AttemptEnding(
                attempt_id,
                AttemptStatus.SUCCEEDED,
                worker=None,
                started_at=None,
                finished_at=t0 + timedelta(seconds=6),
                error=None,
            ),
        )
        late = uow.mark_attempt_started(attempt_id, "worker-c", t0 + timedelta(seconds=7))
    assert late is None  # an ended attempt is not started again


def test_several_attempts_in_flight_are_canceled_together(store: Store, build, run) -> None:
    """A canceled with_items task cancels every item's attempt in one batch."""
    run(*(build.dispatch("run-1", 2, position, item_index=position) for position in range(3)))
    run(
        *(cmd.CancelTask(attempt_id=f"run-1/2/{position}/1") for position in range(3)),
        at=build.t0 + timedelta(seconds=5),
    )
    with store.unit_of_work() as uow:
        attempts = uow.list_attempts("run-1")
    assert [(a.position, a.status) for a in attempts] == [
        (position, AttemptStatus.CANCELED) for position in range(3)
    ]
