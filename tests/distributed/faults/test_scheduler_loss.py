"""A scheduler SIGKILLed in the middle of runs: a new one finishes them, nothing done twice.

The module's worker keeps running throughout; each test starts a scheduler, starts 20
runs of a 10-step chain and a with_items of 50, kills the scheduler at some point of
their progress, starts another, and checks the bookkeeping of every attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from treadle.testing.processes import wait_until

from .conftest import Deployment, assert_each_attempt_ran_once
from .faults_pack import CHAIN_STEPS

pytestmark = [pytest.mark.services, pytest.mark.slow]

CHAINS = 20
ITEMS = 50
#: Seconds each task sleeps: long enough to keep work in flight while the scheduler dies.
PAUSE = 0.02
TOTAL_ATTEMPTS = CHAINS * len(CHAIN_STEPS) + ITEMS


@pytest.fixture(scope="module")
def deployment(module_deployment_factory: Callable[..., Deployment]) -> Deployment:
    made = module_deployment_factory()
    made.started(made.worker(concurrency=4))
    return made


@pytest.fixture
def services(deployment: Deployment) -> Iterator[Deployment]:
    """The module's worker; the schedulers a test starts are stopped when it ends."""
    with deployment.test_scope():
        yield deployment


def relayed(services: Deployment, runs: list[str]) -> bool:
    """The first dispatches went out (the relay has marked outbox rows sent)."""
    return any(row.sent for row in services.outbox(runs))


def succeeded(count: int) -> Callable[[Deployment, list[str]], bool]:
    def enough(services: Deployment, runs: list[str]) -> bool:
        return services.count_attempts(runs, "succeeded") >= count

    return enough


MOMENTS = {
    "while relaying the first dispatches": relayed,
    "after the first results": succeeded(10),
    "midway": succeeded(TOTAL_ATTEMPTS // 2),
}


@pytest.mark.parametrize("moment", sorted(MOMENTS))
def test_runs_complete_after_the_scheduler_is_killed_and_nothing_is_done_twice(
    services: Deployment, moment: str
) -> None:
    first = services.scheduler("first")
    services.started(first)
    with services.client() as client:
        chains = [client.start("faults.chain", {"pause": PAUSE}) for _ in range(CHAINS)]
        fan_out = client.start("faults.fan_out", {"count": ITEMS, "pause": PAUSE})
    runs = [*chains, fan_out]

    wait_until(
        lambda: MOMENTS[moment](services, runs),
        30,
        f"the moment to kill the scheduler ({moment})",
        interval=0.005,
    )
    first.kill()
    done = services.count_attempts(runs, "succeeded")
    unfinished = [r for r, s in services.statuses(runs).items() if not s.is_terminal]
    assert unfinished, f"every run ended before the scheduler was killed ({done} attempts done)"

    services.started(services.scheduler("second"))
    services.wait_for_runs(runs, timeout=90)

    for run_id in chains:
        document = services.document(run_id)
        assert document["status"] == "succeeded", document
        assert document["output"] == {"last": CHAIN_STEPS[-1]}
        ran = [(t["name"], t["status"], t["attempts"]) for t in document["tasks"]]
        assert ran == [(step, "succeeded", 1) for step in CHAIN_STEPS]
    document = services.document(fan_out, items=True)
    assert document["status"] == "succeeded", document
    assert document["output"] == {"tags": [f"item {i}" for i in range(ITEMS)]}
    [each] = document["tasks"]
    items = [(item["index"], item["status"], item["attempts"]) for item in each["items"]]
    assert items == [(i, "succeeded", 1) for i in range(ITEMS)]

    assert assert_each_attempt_ran_once(services, runs) == TOTAL_ATTEMPTS
