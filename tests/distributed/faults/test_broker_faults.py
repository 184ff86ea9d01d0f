"""The fault suite on both brokers: workers and the scheduler SIGKILLed, then the broker
restarted, under runs in flight; every run succeeds and every item is recorded once.

Each test brings up a broker of its own on free ports (a RabbitMQ node, or a
``redis-server`` with or without persistence), a throwaway PostgreSQL database, one
``treadle scheduler`` and two ``treadle worker`` processes, and starts :data:`RUNS` runs
of a with_items of :data:`ITEMS` items that each sleep :data:`PAUSE` seconds. Then, as an
operator's bad day would have it:

1. once some items are done, one worker and the scheduler are SIGKILLed together; a new
   scheduler starts, and the worker comes back under the same node name or another one
   (on Redis its reserved messages would otherwise wait out the 6-hour visibility
   timeout);
2. once about half the items are done, the broker restarts (RabbitMQ: ``stop_app`` then
   ``start_app``; Redis: a restart, coming back empty when it keeps nothing on disk); in
   one case PostgreSQL restarts with it (a server of the test's own, fast shutdown).

Work must resume within :data:`RESUME_WITHIN` seconds of each fault, every run must end
``succeeded`` with each item's result in its output once, and each item must have exactly
one succeeded attempt and one ``task_succeeded`` event (attempts the scheduler declared
lost may precede it: they were dispatched again, uncharged).

``FAULT_TRIAL_SCALE=full`` in the environment runs the size of the original report (20
runs of 30 items of 0.2 s) for trials repeated by hand (``FAULT_TRIAL_LOG=FILE`` appends
how long work took to resume after each fault); the default keeps the suite fast.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from treadle.common.statuses import AttemptStatus
from treadle.testing import postgres_instance, rabbitmq_node, redis_instance
from treadle.testing.processes import wait_until

from .conftest import Deployment, base_settings, deployment

pytestmark = [pytest.mark.services, pytest.mark.slow]

FULL = os.environ.get("FAULT_TRIAL_SCALE") == "full"
RUNS, ITEMS, PAUSE = (20, 30, 0.2) if FULL else (8, 15, 0.25)
TOTAL = RUNS * ITEMS
#: Seconds within which work must resume after each fault.
RESUME_WITHIN = 60.0
#: Fault timings as the original report had them: a worker silent for 10 s is lost.
TIMINGS = {"reconcile_interval": 2, "worker_lost_after": 10}


@dataclass(frozen=True)
class Services:
    """The private broker (and database) of a case: URLs, and how the second fault
    restarts them."""

    broker_url: str
    restart: Callable[[], None]
    database_url: str | None = None


@dataclass(frozen=True)
class Case:
    broker: str  # rabbitmq | redis-persistent | redis-volatile
    worker_comes_back: str  # same-name | new-name
    #: The second fault restarts PostgreSQL too (a server of the test's own).
    database_restarts: bool = False


CASES = [
    Case("rabbitmq", "same-name"),
    Case("rabbitmq", "new-name", database_restarts=True),
    Case("redis-persistent", "same-name"),
    Case("redis-volatile", "new-name"),
]


def _private_services(case: Case, stack: ExitStack) -> Services:
    if case.broker == "rabbitmq":
        node = stack.enter_context(rabbitmq_node())

        def restart_broker() -> None:
            node.stop_app()
            node.start_app()

        url = node.url
    else:
        redis = stack.enter_context(redis_instance(persistence=case.broker == "redis-persistent"))
        url, restart_broker = redis.url, redis.restart
    if not case.database_restarts:
        return Services(url, restart_broker)
    postgres = stack.enter_context(postgres_instance())

    def restart_both() -> None:
        postgres.restart()
        restart_broker()

    return Services(url, restart_both, postgres.create_database("treadle_faults"))


@pytest.fixture
def services(
    request: pytest.FixtureRequest, faults_packs: Path, tmp_path: Path
) -> Iterator[tuple[Deployment, Services]]:
    case: Case = request.param
    with ExitStack() as stack:
        private = _private_services(case, stack)  # entered first: outlives the processes
        made = stack.enter_context(
            deployment(
                tmp_path,
                broker_url=private.broker_url,
                database_url=private.database_url,
                **base_settings(faults_packs, **TIMINGS),
            )
        )
        yield made, private


def _succeeded(services: Deployment, runs: list[str]) -> int:
    return services.count_attempts(runs, "succeeded")


def _resumed_after(services: Deployment, runs: list[str], done: int, fault_at: float) -> float:
    """Seconds from the fault (``fault_at``, monotonic) until one more item than ``done``
    is recorded succeeded (or all are)."""
    wait_until(
        lambda: _succeeded(services, runs) > done or done >= TOTAL,
        RESUME_WITHIN,
        f"work to resume after the fault ({done} of {TOTAL} items were done)",
        describe=lambda: f"{_succeeded(services, runs)} items done",
        interval=0.1,
    )
    return time.monotonic() - fault_at


@pytest.mark.parametrize(
    "services",
    CASES,
    indirect=True,
    ids=[
        f"{c.broker}-{c.worker_comes_back}{'-postgres' if c.database_restarts else ''}"
        for c in CASES
    ],
)
def test_runs_in_flight_survive_killed_workers_scheduler_and_a_broker_restart(
    services: tuple[Deployment, Services], request: pytest.FixtureRequest
) -> None:
    deployment_, private = services
    case: Case = request.node.callspec.params["services"]
    scheduler = deployment_.scheduler("first")
    victim = deployment_.worker("victim", concurrency=2)
    survivor = deployment_.worker("survivor", concurrency=2)
    deployment_.started(scheduler, victim, survivor)
    with deployment_.client() as client:
        runs = [
            client.start("faults.fan_out", {"count": ITEMS, "pause": PAUSE}) for _ in range(RUNS)
        ]

    # 1. A worker and the scheduler die together, mid-way through the first items.
    wait_until(lambda: _succeeded(deployment_, runs) >= TOTAL // 8, 60, "the first items done")
    fault_at = time.monotonic()
    victim.kill()
    scheduler.kill()
    done = _succeeded(deployment_, runs)
    assert done < TOTAL, "every item was done before the fault"
    back = deployment_.worker(
        "victim",
        concurrency=2,
        same_name_as=victim if case.worker_comes_back == "same-name" else None,
    )
    deployment_.started(deployment_.scheduler("second"), back)
    resumed = [_resumed_after(deployment_, runs, done, fault_at)]

    # 2. The broker restarts with about half the items done.
    wait_until(lambda: _succeeded(deployment_, runs) >= TOTAL // 2, 120, "half the items done")
    done = _succeeded(deployment_, runs)
    fault_at = time.monotonic()
    private.restart()
    resumed.append(_resumed_after(deployment_, runs, done, fault_at))

    try:
        deployment_.wait_for_runs(runs, timeout=180)
    except AssertionError as exc:
        open_ = [
            (a.attempt_id, a.status.value, a.worker, a.worker_pid, a.deliveries, a.reason)
            for run_id, status in deployment_.statuses(runs).items()
            if not status.is_terminal
            for a in deployment_.attempts(run_id)
            if a.status is not AttemptStatus.SUCCEEDED
        ]
        raise AssertionError(f"{exc}; attempts not succeeded in open runs: {open_}") from None
    if os.environ.get("FAULT_TRIAL_LOG"):  # trials by hand note how long resuming took
        with open(os.environ["FAULT_TRIAL_LOG"], "a", encoding="utf-8") as log:
            log.write(f"{case}: resumed after {[round(r, 1) for r in resumed]} s\n")
    assert max(resumed) < RESUME_WITHIN
    for run_id in runs:
        document = deployment_.document(run_id)
        assert document["status"] == "succeeded", document
        assert document["output"] == {"tags": [f"item {i}" for i in range(ITEMS)]}

    # Each item: one succeeded attempt, one recorded outcome; lost attempts only before it.
    attempts = [a for run_id in runs for a in deployment_.attempts(run_id)]
    succeeded = Counter(
        (a.run_id, a.position) for a in attempts if a.status is AttemptStatus.SUCCEEDED
    )
    assert set(succeeded) == {(r, i) for r in runs for i in range(ITEMS)}
    assert set(succeeded.values()) == {1}
    others = {a.status for a in attempts if a.status is not AttemptStatus.SUCCEEDED}
    assert others <= {AttemptStatus.LOST}, others
    outcomes = Counter(
        (e.run_id, e.attempt_id) for e in deployment_.events(runs) if e.kind == "task_succeeded"
    )
    assert len(outcomes) == TOTAL
    assert set(outcomes.values()) == {1}
