"""How many messages a worker's consumer asks the broker for (TREADLE_WORKER_PREFETCH_*).

The counts themselves, as the broker sees them, are checked with a real worker in
tests/distributed/worker/test_worker_process.py; here, the arithmetic on each broker.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from treadle.common.settings import Settings
from treadle.worker.app import create_celery_app

RABBIT = "amqp://guest:guest@127.0.0.1:5672//"
REDIS = "redis://127.0.0.1:6379/0"


def consumer(settings: Settings, processes: int) -> Any:
    """The consumer of a worker of ``processes`` threads, built as ``treadle worker``
    builds it (Celery's WorkController), not started."""
    app = create_celery_app(settings)
    worker = app.WorkController(
        concurrency=processes,
        pool_cls="threads",
        hostname="prefetch@test",
        without_mingle=True,
        without_gossip=True,
        without_heartbeat=True,
    )
    return worker.consumer


@pytest.mark.parametrize(
    ("chosen", "processes", "expected"),
    [
        ({}, 2, 3),  # one per process and one spare
        ({"worker_prefetch_spare": 0}, 2, 2),
        ({"worker_prefetch_spare": 3}, 4, 7),
        ({"worker_prefetch_multiplier": 4}, 2, 9),
    ],
)
def test_a_worker_on_rabbitmq_holds_its_processes_share_and_the_spare(
    chosen: dict[str, int], processes: int, expected: int
) -> None:
    made = consumer(Settings(broker_url=RABBIT, **chosen), processes)
    assert made.initial_prefetch_count == expected
    assert made.max_prefetch_count == expected


def test_a_worker_on_redis_holds_one_message_per_process_whatever_the_settings() -> None:
    """On Redis a message reserved and not started counts as lost after a while."""
    settings = Settings(broker_url=REDIS, worker_prefetch_spare=5, worker_prefetch_multiplier=4)
    made = consumer(settings, 2)
    assert made.initial_prefetch_count == 2
    assert made.max_prefetch_count == 2


def test_a_resized_pool_keeps_the_spare() -> None:
    made = consumer(Settings(broker_url=RABBIT), 2)
    made.pool = SimpleNamespace(num_processes=4)  # as after growing by two
    grown: list[int] = []
    made.qos = SimpleNamespace(increment_eventually=grown.append)
    made._update_prefetch_count(2)  # what Celery calls when the pool grows by two
    assert made.initial_prefetch_count == 5
    assert grown == [2]
