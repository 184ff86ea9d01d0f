"""Concurrency slots under kill -9: a dead worker or scheduler never keeps a slot.

Two runs share ``customer-<name>``'s only slot (``faults.keyed_nap``): the first naps on
its first delivery, the second waits for the slot, held back by the scheduler. The tests
kill the worker or the scheduler holding the first, start a new one, and check that both
runs finish one after the other (never both at once) and that nothing is left holding or
waiting for the key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from treadle.common.statuses import AttemptStatus
from treadle.testing.processes import wait_until

from .conftest import Deployment

pytestmark = [pytest.mark.services, pytest.mark.slow]

WAITING = "waits for concurrency key 'customer-{}' (limit 1 tasks): 1 held"


@pytest.fixture(scope="module")
def deployment(module_deployment_factory: Callable[..., Deployment]) -> Deployment:
    return module_deployment_factory(worker_lost_after=60)


@pytest.fixture
def services(deployment: Deployment) -> Iterator[Deployment]:
    with deployment.test_scope():
        yield deployment


def start_pair(services: Deployment, customer: str, folder: Path) -> tuple[str, str]:
    """The first run holds the slot (running), the second waits for it (held back)."""
    with services.client() as client:
        first = client.start(
            "faults.keyed_nap", {"customer": customer, "marker": str(folder / "first")}
        )
        wait_until(
            lambda: [a.status for a in services.attempts(first)] == [AttemptStatus.RUNNING],
            30,
            "the first run's attempt running",
            describe=lambda: repr(services.attempts(first)),
        )
        second = client.start(
            "faults.keyed_nap",
            {"customer": customer, "marker": str(folder / "second"), "seconds": 0},
        )
    wait_until(
        lambda: bool(services.document(second).get("flow_waits")),
        30,
        "the second run's dispatch held back",
    )
    [wait] = services.document(second)["flow_waits"]
    assert (wait["task"], wait["reason"]) == ("nap", WAITING.format(customer))
    return first, second


def assert_one_at_a_time_and_nothing_left(services: Deployment, first: str, second: str) -> None:
    services.wait_for_runs([first, second], timeout=90)
    for run_id in (first, second):
        assert services.document(run_id)["status"] == "succeeded"
    [held_first] = [a for a in services.attempts(first) if a.status is AttemptStatus.SUCCEEDED]
    [held_second] = services.attempts(second)
    assert held_first.finished_at is not None
    assert held_second.started_at is not None
    assert held_second.started_at >= held_first.finished_at  # never both at once
    with services.store.engine.connect() as connection:
        waiting = connection.execute(
            text("SELECT count(*) FROM outbox WHERE flow_key IS NOT NULL")
        ).scalar_one()
        live = connection.execute(
            text(
                "SELECT count(*) FROM flow_slots s JOIN attempts a ON a.attempt_id = s.holder "
                "WHERE a.status IN ('queued', 'running')"
            )
        ).scalar_one()
    assert (waiting, live) == (0, 0)


def test_a_worker_killed_while_holding_the_only_slot_does_not_keep_it(
    services: Deployment, tmp_path: Path
) -> None:
    services.started(services.scheduler())
    doomed = services.worker("doomed", concurrency=1)
    services.started(doomed)
    first, second = start_pair(services, "worker-kill", tmp_path)

    doomed.kill()  # SIGKILL: no result, no acknowledgement; the slot's holder is in limbo
    services.started(services.worker("successor", concurrency=1))
    assert_one_at_a_time_and_nothing_left(services, first, second)


def test_a_scheduler_killed_while_slots_are_held_and_work_waits_loses_nothing(
    services: Deployment, tmp_path: Path
) -> None:
    doomed = services.scheduler("doomed")
    services.started(doomed, services.worker(concurrency=2))
    # The first run naps 3 s: long enough to kill the scheduler while it holds the slot.
    with services.client() as client:
        first = client.start(
            "faults.keyed_nap",
            {"customer": "scheduler-kill", "marker": str(tmp_path / "first"), "seconds": 3},
        )
        wait_until(
            lambda: [a.status for a in services.attempts(first)] == [AttemptStatus.RUNNING],
            30,
            "the first run's attempt running",
        )
        second = client.start(
            "faults.keyed_nap",
            {"customer": "scheduler-kill", "marker": str(tmp_path / "second"), "seconds": 0},
        )
    wait_until(lambda: bool(services.document(second).get("flow_waits")), 30, "held back")

    doomed.kill()
    services.started(services.scheduler("successor"))
    assert_one_at_a_time_and_nothing_left(services, first, second)
