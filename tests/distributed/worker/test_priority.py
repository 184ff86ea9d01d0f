"""Priority on the real brokers: high-priority dispatches overtake a waiting backlog.

A real ``treadle worker`` (prefork, concurrency 1) serves a queue of its own; the
scheduler's :class:`CeleryPublisher` publishes a backlog of low-priority (0) short
dispatches, and once the worker has started on the backlog, a few high-priority (9) ones.
The results queue tells the order the worker finished them in. Without priorities the high
ones would finish last, after the whole backlog; with them they finish within a few tasks
of their publication (RabbitMQ: the worker consumes ``q.high`` next to ``q.low``; Redis:
kombu's priority lists, Treadle's 9 as kombu's 0).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from treadle.common.settings import Settings
from treadle.common.transport import band_queues
from treadle.scheduler.core.commands import DispatchTask
from treadle.scheduler.service.celery_publisher import CeleryPublisher
from treadle.testing import throwaway_redis_database

pytestmark = [pytest.mark.services, pytest.mark.slow]

BACKLOG = 100
HIGH = 5
#: The worker may hold a few low messages when the high ones arrive (its prefetch, per
#: band) and run them first; the high ones must still finish well before the backlog does.
MAX_LOWS_BEFORE_LAST_HIGH = 25


@pytest.fixture
def redis_url() -> Iterator[str]:
    with throwaway_redis_database() as url:
        yield url


def finishing_order(
    settings: Settings, make_dispatch: Any, open_reports: Any
) -> tuple[list[str], list[str], int]:
    """Publish the backlog, wait for the worker to start on it, publish the high ones; the
    attempts in the order the worker finished them, the high ones' ids, and how many low
    ones it had finished when the high ones were published."""
    publisher = CeleryPublisher.from_settings(settings)
    # 10 ms each: the backlog outlasts publishing it, whatever the machine's speed
    lows = [make_dispatch("core.sleep", {"seconds": 0.01}) for _ in range(BACKLOG)]
    highs = [make_dispatch("core.noop") for _ in range(HIGH)]
    try:
        with open_reports(settings) as reports:
            publisher.publish([DispatchTask(d, priority=0) for d in lows])

            reports.wait_for_result(lows[0].attempt_id, timeout=30)  # the worker is on it
            published = datetime.now(UTC)
            publisher.publish([DispatchTask(d, priority=9) for d in highs])
            for dispatch in [*lows, *highs]:
                reports.wait_for_result(dispatch.attempt_id, timeout=60)
            ended = sorted(
                (r.result for r in reports.received if r.result is not None),
                key=lambda result: result.finished_at or published,
            )
    finally:
        publisher.close()
    # by the worker's clock (this machine's): reports arrive a little after the work ends
    done_before = sum(1 for r in ended if r.finished_at and r.finished_at <= published)
    return [r.attempt_id for r in ended], [d.attempt_id for d in highs], done_before


def assert_overtaken(order: list[str], highs: list[str], done_before: int) -> None:
    assert len(order) == BACKLOG + HIGH
    assert done_before < BACKLOG // 2, "the backlog ran out before the high ones came"
    last_high = max(order.index(attempt) for attempt in highs)
    lows_before_last_high = last_high + 1 - HIGH
    assert lows_before_last_high - done_before <= MAX_LOWS_BEFORE_LAST_HIGH, (
        f"{lows_before_last_high - done_before} low-priority tasks finished between the "
        "high ones' publication and the last of them"
    )
    # the rest of the backlog waited for them
    assert BACKLOG - lows_before_last_high >= BACKLOG // 2


def test_high_priority_overtakes_a_backlog_on_rabbitmq(
    rabbitmq_url, worker_processes, make_dispatch, open_reports, list_queues
):
    queue = f"prio-{uuid.uuid4().hex[:6]}"
    settings = Settings(broker_url=rabbitmq_url, default_queue=queue)
    worker = worker_processes(rabbitmq_url, "--queues", queue, "--concurrency", "1")
    worker.wait_ready()

    order, highs, done_before = finishing_order(settings, make_dispatch, open_reports)

    assert_overtaken(order, highs, done_before)
    # the three bands, each a quorum queue with the work queue's delivery limit
    rows = {row[0]: row for row in list_queues(rabbitmq_url)}
    for band in band_queues(queue):
        _, kind, arguments = rows[band]
        assert kind == "quorum"
        assert "x-delivery-limit" in arguments


def test_high_priority_overtakes_a_backlog_on_redis(
    redis_url, worker_processes, make_dispatch, open_reports
):
    queue = f"prio-{uuid.uuid4().hex[:6]}"
    settings = Settings(broker_url=redis_url, default_queue=queue, redis_visibility_timeout=600)
    worker = worker_processes(redis_url, "--queues", queue, "--concurrency", "1")
    worker.wait_ready()

    order, highs, done_before = finishing_order(settings, make_dispatch, open_reports)

    assert_overtaken(order, highs, done_before)


def test_redis_keeps_each_priority_in_its_own_list_and_the_reconciler_sees_them(
    redis_url, make_dispatch
):
    import redis

    queue = f"prio-{uuid.uuid4().hex[:6]}"
    settings = Settings(broker_url=redis_url, default_queue=queue, redis_visibility_timeout=600)
    publisher = CeleryPublisher.from_settings(settings)
    by_priority = {p: make_dispatch("core.noop") for p in (0, 5, 8, 9)}
    client = redis.Redis.from_url(redis_url)
    try:
        publisher.publish([DispatchTask(d, priority=p) for p, d in by_priority.items()])
        lengths = {
            p: client.llen(queue if p == 9 else f"{queue}\x06\x16{9 - p}") for p in by_priority
        }
        # what the reconciler asks after a Redis restart: every priority list is read
        held = publisher.held_attempts([queue])
    finally:
        client.close()
        publisher.close()

    assert lengths == {0: 1, 5: 1, 8: 1, 9: 1}  # 8 and 9 apart (kombu's default joins them)
    assert held == {d.attempt_id for d in by_priority.values()}
