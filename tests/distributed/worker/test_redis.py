"""The same round trip with Redis as the broker (plain queues, a visibility timeout)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from treadle.common.settings import Settings
from treadle.common.statuses import AttemptStatus
from treadle.testing import throwaway_redis_database
from treadle.worker.app import create_worker_app

pytestmark = pytest.mark.services


@pytest.fixture
def redis_url() -> Iterator[str]:
    with throwaway_redis_database() as url:
        yield url


def test_a_dispatch_round_trips_through_redis(
    redis_url, test_packs: Path, worker_thread, open_reports, make_dispatch, send_dispatch, wait
):
    import redis

    settings = Settings(
        broker_url=redis_url, pack_paths=[str(test_packs)], redis_visibility_timeout=600
    )
    app = create_worker_app(settings)
    assert app.conf.broker_transport_options == {
        "visibility_timeout": 600,
        "priority_steps": list(range(10)),  # every priority its own list (flow-control.md)
    }
    ok = make_dispatch("core.echo", {"message": "over redis"})
    failing = make_dispatch("wtest.boom")

    with worker_thread(app, pool="threads") as worker, open_reports(settings) as reports:
        send_dispatch(app, ok, settings.default_queue)
        send_dispatch(app, failing, settings.default_queue)
        started, finished = reports.wait_for(ok.attempt_id, 2)
        failed = reports.wait_for_result(failing.attempt_id)

        client = redis.Redis.from_url(redis_url)
        try:
            wait(
                lambda: client.llen(settings.default_queue) == 0 and client.hlen("unacked") == 0,
                10,
                "the dispatches to be acknowledged",
            )
        finally:
            client.close()

    assert started.started is not None
    assert started.started.worker == worker.hostname
    assert finished.result is not None
    assert finished.result.outcome is AttemptStatus.SUCCEEDED
    assert finished.result.result == {"message": "over redis"}
    assert failed.outcome is AttemptStatus.FAILED
    assert failed.error is not None
    assert failed.error.type == "QuotaExceeded"
