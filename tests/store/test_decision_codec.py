"""The codec of what the core hears and says: every event and every command type has an
entry and round-trips through JSON; unknown kinds and fields are refused by name."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from treadle.common.budget import Budget
from treadle.common.limits import Limits
from treadle.common.messages import TaskDispatch
from treadle.common.spec import RunnerType
from treadle.common.statuses import InquiryPurpose, InquiryStatus, RunStatus, TaskStatus
from treadle.scheduler.core import commands as cmd
from treadle.scheduler.core import events as ev
from treadle.scheduler.core.state import RunContext, TimerKind
from treadle.scheduler.store import decision_codec
from treadle.scheduler.store.errors import CodecError

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def through_json(value: Any) -> Any:
    """What a JSON column gives back."""
    return json.loads(json.dumps(value))


EVENTS: list[ev.Event] = [
    ev.RunRequested(
        context=RunContext(parameters={"n": 1}, secrets=("x",), limits=Limits(max_depth=3))
    ),
    ev.TaskSucceeded(attempt_id="r/1/0/1", result={"a": [1, 2]}, result_bytes=12),
    ev.TaskSucceeded(attempt_id="r/1/0/2", result=None, result_bytes=None),
    ev.TaskFailed(attempt_id="r/1/0/1", error={"type": "E", "message": "m"}),
    ev.TaskTimedOut(attempt_id="r/1/0/1", error={"type": "Timeout", "message": "slow"}),
    ev.TimerFired(timer_id="r/1/retry"),
    ev.InquiryAnswered(inquiry_id="iq_1", response={"ok": True}, responder="ada"),
    ev.EventReceived(event_id="e1", type="push", subject="repo", data={"sha": "abc"}),
    ev.PauseRequested(),
    ev.ResumeRequested(),
    ev.CancelRequested(reason="operator"),
    ev.RetryRequested(),
    ev.RetryRequested(reason="fixed", by="cli:ada", task="charge"),
    ev.CompensateRequested(),
    ev.ChildRunPaused(child_run_id="r.1.0.1"),
    ev.AttemptLost(attempt_id="r/1/0/1", error={"type": "WorkerLost", "message": "gone"}),
    ev.StepFailRequested(task="approve", reason="called off"),
    ev.StepSkipRequested(task="approve", reason="approved by phone"),
    ev.BudgetChanged(
        budget=Budget(cost_usd=50.0, wall_time=timedelta(hours=2)), reason="more", by="cli:ada"
    ),
    ev.RunRequested(
        context=RunContext(budget=Budget(attempts=3), budget_ceiling=Budget(cost_usd=9.5))
    ),
]


def test_every_event_kind_is_covered() -> None:
    assert {e.kind for e in EVENTS} == set(ev.EVENT_TYPES)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.kind)
def test_event_round_trips(event: ev.Event) -> None:
    encoded = through_json(decision_codec.encode_event(event))
    assert encoded["kind"] == event.kind
    assert decision_codec.decode_event(encoded) == event


def test_a_retry_logged_before_retries_could_name_a_task_is_a_whole_retry() -> None:
    old = {"kind": "retry_requested", "reason": "the card is fixed", "by": "cli:ada"}
    assert decision_codec.decode_event(old) == ev.RetryRequested(
        reason="the card is fixed", by="cli:ada", task=None
    )


COMMANDS: list[cmd.Command] = [
    cmd.DispatchTask(
        TaskDispatch(
            attempt_id="r/1/0/1",
            run_id="r",
            task="t",
            execution=1,
            attempt=1,
            action_ref="core.echo",
            input={"message": "hi"},
            timeout_seconds=2.5,
            runner=RunnerType.PYTHON,
            queue="gpu",
            idempotency_key="0b9d5f0e-8c1a-4b8e-9d35-6f1c2b9e0a11",
        ),
    ),
    cmd.CancelTask(attempt_id="r/1/0/1"),
    cmd.StartChildRun("r.1.0.1", "examples.child", {"x": 1}, "r/1/0/1", 2),
    cmd.CancelChildRun("r.1.0.1"),
    cmd.ScheduleTimer("r/1/retry", T0, TimerKind.RETRY),
    cmd.CancelTimer("r/1/retry"),
    cmd.OpenInquiry("iq_1", "r/1/0/1", "approve", "Deploy?", {"type": "object"}, ["ops"], T0),
    cmd.OpenInquiry(
        "iq_2", "r/budget/1", "", "80%: continue?", None, None, None, InquiryPurpose.BUDGET
    ),
    cmd.CloseInquiry("iq_1", InquiryStatus.TIMED_OUT),
    cmd.EmitLifecycleEvent("t", 1, TaskStatus.RUNNING, T0),
    cmd.CompleteRun(RunStatus.SUCCEEDED, {"out": 1}, None),
    cmd.ReportEndToParent("p/1/0/1", RunStatus.FAILED, None, {"type": "E", "message": "m"}),
    cmd.PauseChildRun("r.1.0.1"),
    cmd.ResumeChildRun("r.1.0.1"),
    cmd.ReportPausedToParent("p"),
    cmd.AwaitEvent("r/2/0/1", "deploy.*", "svc-a", T0),
    cmd.StopAwaitingEvent("r/2/0/1"),
    cmd.RunStatusChanged(RunStatus.PAUSED, T0),
]


def _subclasses(cls: type) -> set[type]:
    """Every class derived from ``cls`` as its module defines it (``dataclass(slots=True)``
    replaces a class, and the replaced one may linger among the subclasses)."""
    found = {
        sub
        for sub in cls.__subclasses__()
        if getattr(sys.modules[sub.__module__], sub.__name__, None) is sub
    }
    return found.union(*(_subclasses(sub) for sub in found))


def test_every_command_type_has_a_codec_entry_and_a_sample_here() -> None:
    every = _subclasses(cmd.Command)
    assert set(decision_codec.COMMAND_TYPES.values()) == every
    assert {type(c) for c in COMMANDS} == every
    assert {c.kind for c in COMMANDS} == set(decision_codec.COMMAND_TYPES)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.kind)
def test_command_round_trips(command: cmd.Command) -> None:
    assert (
        decision_codec.decode_command(through_json(decision_codec.encode_command(command)))
        == command
    )


def test_unknown_kinds_are_refused_with_the_kind_named() -> None:
    with pytest.raises(CodecError, match="'task_exploded'"):
        decision_codec.decode_event({"kind": "task_exploded"})
    with pytest.raises(CodecError, match="'launch_rocket'"):
        decision_codec.decode_command({"kind": "launch_rocket"})
    with pytest.raises(CodecError, match="unknown fields"):
        decision_codec.decode_event({"kind": "timer_fired", "timer_id": "t", "colour": "red"})
