"""The priority design as data: bands on RabbitMQ, kombu's reversed priorities on Redis."""

from __future__ import annotations

import pytest

from treadle.common.flow import DEFAULT_PRIORITY
from treadle.common.transport import (
    REDIS_PRIORITY_STEPS,
    PriorityBand,
    PriorityRoute,
    band_of,
    band_queues,
    celery_settings,
    consumed_queues,
    kombu_priority,
    priority_route,
)

RABBIT = "amqp://guest:guest@127.0.0.1:5672//"
REDIS = "redis://127.0.0.1:6379/0"


def test_each_priority_falls_in_one_band_high_normal_low():
    bands = {p: band_of(p) for p in range(10)}
    assert bands == {
        0: PriorityBand.LOW, 1: PriorityBand.LOW, 2: PriorityBand.LOW, 3: PriorityBand.LOW,
        4: PriorityBand.NORMAL, 5: PriorityBand.NORMAL, 6: PriorityBand.NORMAL,
        7: PriorityBand.HIGH, 8: PriorityBand.HIGH, 9: PriorityBand.HIGH,
    }  # fmt: skip
    # the default stays on the queue itself: existing queues and workers keep working
    assert band_of(DEFAULT_PRIORITY).queue("gpu") == "gpu"


def test_band_queues_are_named_after_their_work_queue_high_first():
    assert band_queues("treadle.tasks") == (
        "treadle.tasks.high",
        "treadle.tasks",
        "treadle.tasks.low",
    )


@pytest.mark.parametrize("priority", [-1, 10, 99])
def test_a_priority_outside_0_to_9_is_refused(priority):
    with pytest.raises(ValueError, match="from 0 to 9"):
        band_of(priority)
    with pytest.raises(ValueError, match="from 0 to 9"):
        kombu_priority(priority)


def test_kombu_counts_the_other_way():
    assert [kombu_priority(p) for p in range(9, -1, -1)] == list(range(10))


def test_a_route_is_a_band_queue_on_rabbitmq_and_a_message_priority_on_redis():
    assert priority_route("q", 9, RABBIT) == PriorityRoute("q.high", None)
    assert priority_route("q", 5, RABBIT) == PriorityRoute("q", None)
    assert priority_route("q", 0, RABBIT) == PriorityRoute("q.low", None)
    assert priority_route("q", 9, REDIS) == PriorityRoute("q", 0)
    assert priority_route("q", 0, REDIS) == PriorityRoute("q", 9)


def test_kombus_redis_lists_order_every_level_as_treadle_does():
    """What kombu's Redis channel does with the steps both sides configure: one list per
    level, and BRPOP (which reads its keys in order) reaches priority 9's list first."""
    from kombu.transport.redis import Channel

    steps = celery_settings(REDIS, default_queue="q", visibility_timeout=60)[
        "broker_transport_options"
    ]["priority_steps"]
    assert tuple(steps) == REDIS_PRIORITY_STEPS

    class Steps:  # the two attributes kombu's key naming reads
        priority_steps = steps
        sep = Channel.sep
        priority = Channel.priority

    def key(priority: int) -> str:
        return str(Channel._q_for_pri(Steps(), "q", kombu_priority(priority)))

    keys = [key(p) for p in range(9, -1, -1)]
    assert len(set(keys)) == 10
    brpop_order = [Channel._q_for_pri(Steps(), "q", step) for step in steps]
    assert brpop_order == keys  # 9 first, then 8, ... 0 last


def test_rabbitmq_needs_no_priority_steps():
    options = celery_settings(RABBIT, default_queue="q", visibility_timeout=60)
    assert "priority_steps" not in options["broker_transport_options"]


def test_a_worker_consumes_every_band_high_bands_first_on_rabbitmq_only():
    assert consumed_queues(["a", "b", "a"], RABBIT) == [
        "a.high",
        "b.high",
        "a",
        "b",
        "a.low",
        "b.low",
    ]
    assert consumed_queues(["a", "b", "a"], REDIS) == ["a", "b"]
