"""A rolling upgrade works: messages in the format of the previous release decode into the
same attempt endings, and a worker still runs a dispatch that names no runner or queue."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from treadle.common.messages import TaskDispatch, TaskResult, WorkerReport
from treadle.common.statuses import AttemptStatus
from treadle.scheduler.core.endings import AttemptEnding
from treadle.scheduler.core.events import TaskFailed, TaskSucceeded, TaskTimedOut

# Recorded from a worker of the previous release (results queue bodies, byte for byte).
STARTED = (
    b'{"kind":"started","started":{"version":1,"attempt_id":"r-1/1/0/1",'
    b'"worker":"celery@w1","at":"2026-11-30T12:00:00.125000Z"},"result":null}'
)
SUCCEEDED = (
    b'{"kind":"result","started":null,"result":{"version":1,"attempt_id":"r-1/1/0/1",'
    b'"outcome":"succeeded","result":{"message":"hi"},"error":null,"worker":"celery@w1",'
    b'"started_at":"2026-11-30T12:00:00.125000Z","finished_at":"2026-11-30T12:00:00.250000Z"}}'
)
TIMED_OUT = (
    b'{"kind":"result","started":null,"result":{"version":1,"attempt_id":"r-1/2/3/2",'
    b'"outcome":"timed_out","result":null,"error":{"type":"Timeout","message":"soft limit",'
    b'"details":null},"worker":"celery@w1","started_at":null,"finished_at":null}}'
)
FAILED = (
    b'{"kind":"result","started":null,"result":{"version":1,"attempt_id":"r-1/2/3/1",'
    b'"outcome":"failed","result":null,"error":{"type":"QuotaExceeded","message":"no",'
    b'"details":{"left":0}},"worker":"celery@w2","started_at":null,"finished_at":null}}'
)
# A dispatch as the previous scheduler published it: no runner, no queue.
OLD_DISPATCH = (
    b'{"version":1,"attempt_id":"r-1/1/0/1","run_id":"r-1","task":"greet","execution":1,'
    b'"item_index":null,"attempt":1,"action_ref":"core.echo","input":{"message":"hi"},'
    b'"timeout_seconds":null}'
)


def _ending(body: bytes) -> AttemptEnding:
    report = WorkerReport.model_validate_json(body)
    assert report.kind == "result"
    assert report.result is not None
    return AttemptEnding.reported(report.result)


def test_a_started_notice_of_the_previous_release_decodes() -> None:
    report = WorkerReport.model_validate_json(STARTED)
    assert report.started is not None
    assert (report.started.attempt_id, report.started.worker) == ("r-1/1/0/1", "celery@w1")
    assert report.started.worker_pid is None  # which incarnation: not told by older workers
    assert report.started.at == datetime(2026, 11, 30, 12, 0, 0, 125000, tzinfo=UTC)


def test_results_of_the_previous_release_become_the_same_endings_and_events() -> None:
    succeeded = _ending(SUCCEEDED)
    assert succeeded.status is AttemptStatus.SUCCEEDED
    assert succeeded.worker == "celery@w1"
    assert succeeded.event() == TaskSucceeded(attempt_id="r-1/1/0/1", result={"message": "hi"})
    timed_out = _ending(TIMED_OUT)
    assert timed_out.event() == TaskTimedOut(
        attempt_id="r-1/2/3/2", error={"type": "Timeout", "message": "soft limit"}
    )
    failed = _ending(FAILED)
    assert failed.error == {"type": "QuotaExceeded", "message": "no", "details": {"left": 0}}
    assert failed.event() == TaskFailed(
        attempt_id="r-1/2/3/1",
        error={"type": "QuotaExceeded", "message": "no", "details": {"left": 0}},
    )


def test_a_dispatch_without_runner_or_queue_still_validates() -> None:
    dispatch = TaskDispatch.model_validate_json(OLD_DISPATCH)
    assert (dispatch.runner, dispatch.queue) == (None, None)
    assert dispatch.action_ref == "core.echo"


def test_a_worker_cannot_report_an_attempt_canceled() -> None:
    with pytest.raises(ValidationError, match="cannot report an attempt as 'canceled'"):
        TaskResult(attempt_id="r-1/1/0/1", outcome=AttemptStatus.CANCELED)


def test_a_dispatch_without_secrets_is_sent_as_before() -> None:
    dispatch = TaskDispatch.model_validate_json(OLD_DISPATCH)
    assert dispatch.secrets is None
    assert "secrets" not in dispatch.model_dump(mode="json")


def test_a_result_without_output_is_sent_byte_for_byte_as_before() -> None:
    report = WorkerReport.model_validate_json(SUCCEEDED)
    assert report.result is not None
    assert report.result.output is None
    assert report.model_dump_json().encode() == SUCCEEDED  # what an older scheduler reads


def test_a_result_with_output_carries_it_to_the_ending() -> None:
    body = SUCCEEDED.replace(
        b'"finished_at":"2026-11-30T12:00:00.250000Z"}',
        b'"finished_at":"2026-11-30T12:00:00.250000Z","output":{"stdout":"hi\\n",'
        b'"stderr":"","stdout_truncated":false,"stderr_truncated":false}}',
    )
    ending = _ending(body)
    assert ending.output is not None
    assert (ending.output.stdout, ending.output.stdout_truncated) == ("hi\n", False)
    assert ending.event() == TaskSucceeded(attempt_id="r-1/1/0/1", result={"message": "hi"})
