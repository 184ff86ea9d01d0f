"""Reports the scheduler must ignore, published on the results queue while the services run.

A result delivered twice, a result that contradicts the one applied, and a late result of
an attempt that was superseded after a timeout and a retry change nothing: not the run,
not its attempts, not its event log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from treadle.common.messages import AttemptStarted, ErrorInfo, TaskResult, WorkerReport
from treadle.common.statuses import AttemptStatus
from treadle.scheduler.store import AttemptEntry
from treadle.testing.processes import wait_until

from .conftest import Deployment

pytestmark = [pytest.mark.services, pytest.mark.slow]


def snapshot(services: Deployment, run_id: str) -> dict[str, Any]:
    """All a report could change: the run document, attempt rows, events and outbox."""
    return {
        "document": services.document(run_id),
        "attempts": services.attempts(run_id),
        "events": services.events([run_id]),
        "outbox": services.outbox([run_id]),
    }


def result(attempt: AttemptEntry, outcome: AttemptStatus, **fields: Any) -> WorkerReport:
    return WorkerReport.of(
        TaskResult(
            attempt_id=attempt.attempt_id,
            outcome=outcome,
            worker=fields.pop("worker", attempt.worker),
            started_at=attempt.started_at,
            finished_at=fields.pop("finished_at", attempt.finished_at),
            **fields,
        )
    )


def started(attempt: AttemptEntry) -> WorkerReport:
    return WorkerReport.of(
        AttemptStarted(attempt_id=attempt.attempt_id, worker="impostor@test", at=datetime.now(UTC))
    )


def test_a_repeated_or_superseded_result_changes_nothing(
    shared_deployment: Deployment, tmp_path: Path
) -> None:
    services = shared_deployment
    with services.client() as client:
        # The first attempt sleeps past the task's 1 s timeout; the retry returns at once.
        run_id = client.start("faults.timeout_retry", {"marker": str(tmp_path / "marker")})
    services.wait_for_runs([run_id], timeout=60)

    before = snapshot(services, run_id)
    document = before["document"]
    assert document["status"] == "succeeded", document
    assert document["output"] == {"napped": False}
    *superseded, current = before["attempts"]
    assert current.status is AttemptStatus.SUCCEEDED
    assert superseded, "the task was not retried"
    assert {a.status for a in superseded} <= {AttemptStatus.TIMED_OUT, AttemptStatus.CANCELED}
    assert document["tasks"][0]["attempts"] == len(before["attempts"])

    log_before = len(services.processes[0].output().splitlines())
    services.publish_reports(
        [
            # The same result again, exactly as applied.
            result(current, AttemptStatus.SUCCEEDED, result={"napped": False}),
            # Another result for the attempt that already succeeded.
            result(current, AttemptStatus.SUCCEEDED, result={"napped": True, "forged": True}),
            result(
                current,
                AttemptStatus.FAILED,
                error=ErrorInfo(type="Forged", message="a second, contradicting result"),
            ),
            # Late notices and results of the attempts the retry superseded.
            *(started(attempt) for attempt in superseded),
            *(
                result(
                    attempt,
                    AttemptStatus.SUCCEEDED,
                    result={"napped": True, "late": True},
                    worker="late@test",
                    finished_at=datetime.now(UTC),
                )
                for attempt in superseded
            ),
            # And a started notice for the attempt that finished.
            started(current),
        ]
    )
    # The results queue is taken in order: once a later run's result was applied, and the
    # queue holds nothing (not even unacknowledged), the forged reports were consumed.
    with services.client() as client:
        later = client.start("examples.hello_world")
    services.wait_for_runs([later], timeout=30)
    wait_until(
        lambda: services.queue_depths().get("treadle.results") == 0,
        15,
        "an empty results queue",
        describe=lambda: repr(services.queue_depths()),
    )

    assert snapshot(services, run_id) == before
    scheduler_log = services.processes[0].output().splitlines()[log_before:]
    assert [line for line in scheduler_log if " ERROR " in line or "Traceback" in line] == []
