"""Workers that die mid-task: the task runs again elsewhere, or fails for good past the limit.

One scheduler serves the module (delivery limit 2); each test starts the workers it kills.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from treadle.common.statuses import AttemptStatus
from treadle.testing.processes import wait_until

from .conftest import Deployment, node_name

pytestmark = [pytest.mark.services, pytest.mark.slow]

DELIVERY_LIMIT = 2


@pytest.fixture(scope="module")
def deployment(module_deployment_factory: Callable[..., Deployment]) -> Deployment:
    made = module_deployment_factory(delivery_limit=DELIVERY_LIMIT, worker_lost_after=60)
    made.started(made.scheduler())
    return made


@pytest.fixture
def services(deployment: Deployment) -> Iterator[Deployment]:
    """The module's scheduler; the workers a test starts are stopped when it ends."""
    with deployment.test_scope():
        yield deployment


def test_a_task_whose_worker_is_killed_runs_again_on_another_worker_and_succeeds_once(
    services: Deployment,
) -> None:
    first = services.worker("first", concurrency=1)
    services.started(first)
    with services.client() as client:
        run_id = client.start("faults.nap", {"seconds": 2})

    def running_on_first() -> bool:
        attempts = services.attempts(run_id)
        return bool(attempts) and (attempts[0].status, attempts[0].worker) == (
            AttemptStatus.RUNNING,
            node_name(first),
        )

    wait_until(
        running_on_first,
        30,
        "the attempt running on the first worker",
        describe=lambda: repr(services.attempts(run_id)),
    )
    first.kill()  # SIGKILL to the worker and its pool: no report, no acknowledgement
    [attempt] = services.attempts(run_id)
    assert attempt.status is AttemptStatus.RUNNING, "the task ended before its worker was killed"

    second = services.worker("second", concurrency=1)
    services.wait_for_runs([run_id], timeout=60)

    document = services.document(run_id)
    assert document["status"] == "succeeded", document
    assert document["output"] == {"tag": "napped"}
    [task] = document["tasks"]
    assert (task["name"], task["status"], task["attempts"]) == ("nap", "succeeded", 1)
    # One attempt, delivered twice: started on the first worker, finished on the second.
    [attempt] = services.attempts(run_id)
    assert attempt.status is AttemptStatus.SUCCEEDED
    assert attempt.worker == node_name(second)
    assert attempt.deliveries == 2
    events = services.events([run_id])
    outcomes = [(e.kind, e.attempt_id) for e in events if e.attempt_id is not None]
    assert outcomes == [("task_succeeded", attempt.attempt_id)]


def test_a_task_that_kills_its_worker_every_time_fails_after_the_delivery_limit(
    services: Deployment,
) -> None:
    worker = services.worker("victim", concurrency=2)
    services.started(worker)
    with services.client() as client:
        run_id = client.start("faults.killer")
    services.wait_for_runs([run_id], timeout=90)

    document = services.document(run_id)
    # The failure transition handled it, so the run succeeds.
    assert document["status"] == "succeeded", document
    assert document["output"] == {"recovered": "recovered from DeliveryLimitExceeded"}
    crash = next(task for task in document["tasks"] if task["name"] == "crash")
    assert crash["status"] == "failed"
    assert crash["error"]["type"] == "DeliveryLimitExceeded"
    assert re.search(
        rf"(started|delivered) {DELIVERY_LIMIT + 1} times without finishing",
        crash["error"]["message"],
    ), crash["error"]
    # Not retried (it has retries left): another attempt would kill workers again.
    assert crash["attempts"] == 1
    [attempt] = [a for a in services.attempts(run_id) if a.action_ref == "faults.kill_worker"]
    assert attempt.status is AttemptStatus.FAILED
    assert "delivery limit exceeded" in (attempt.reason or "")
    # Celery's prefork pool replaced each killed child; the worker itself lives on.
    assert worker.running, worker.tail()
    # Delivered exactly limit + 1 times, then gone from the queue (dead-lettered, or
    # revoked: the scheduler fails an attempt started more than the limit and revokes it,
    # terminating the last delivery if it still runs), so nothing kills another child.
    wait_until(
        lambda: services.queue_depths().get("treadle.tasks") == 0,
        15,
        "an empty work queue",
        describe=lambda: repr(services.queue_depths()),
    )
    received = worker.lines_with(f"[{attempt.attempt_id}] received")
    assert len(received) == DELIVERY_LIMIT + 1, worker.tail()
    kills = worker.lines_with("exited with 'signal 9 (SIGKILL)'")
    terminated = worker.lines_with(f"Terminating {attempt.attempt_id}")
    assert (len(kills), len(terminated)) in {
        (DELIVERY_LIMIT + 1, 0),  # the last delivery killed its child too
        (DELIVERY_LIMIT, 1),  # the revoke terminated the last delivery first
    }, worker.tail()
