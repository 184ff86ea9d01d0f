"""``TREADLE_RESULTS_QUEUE_TYPE``: a real ``treadle worker`` reports on a classic results
queue when told to, and refuses to start, naming the queue and the setting, when the broker
holds that queue with the other type (RabbitMQ refuses a redeclaration with other arguments).
"""

from __future__ import annotations

import uuid

import pytest
from kombu import Connection

from treadle.common.settings import Settings
from treadle.common.statuses import AttemptStatus
from treadle.common.transport import QueueType
from treadle.worker.app import create_celery_app, results_queue

pytestmark = [pytest.mark.services, pytest.mark.slow]


def own_settings(rabbitmq_url: str, queue_type: QueueType) -> Settings:
    """A work queue and a results queue of this test's own, on the module's vhost."""
    name = f"rqt-{uuid.uuid4().hex[:6]}"
    return Settings(
        broker_url=rabbitmq_url,
        default_queue=name,
        results_queue=f"{name}.results",
        results_queue_type=queue_type,
    )


def test_a_worker_set_to_classic_reports_on_a_classic_results_queue(
    rabbitmq_url, worker_processes, make_dispatch, send_dispatch, open_reports, list_queues
):
    settings = own_settings(rabbitmq_url, QueueType.CLASSIC)
    worker = worker_processes(
        rabbitmq_url,
        "--queues", settings.default_queue, "--concurrency", "1",
        results_queue=settings.results_queue, results_queue_type="classic",
    )  # fmt: skip
    worker.wait_ready()
    dispatch = make_dispatch("core.noop")
    with open_reports(settings) as reports:  # declares the queue as the scheduler does
        send_dispatch(create_celery_app(settings), dispatch, settings.default_queue)
        result = reports.wait_for_result(dispatch.attempt_id)

    assert result.outcome is AttemptStatus.SUCCEEDED
    rows = {row[0]: row for row in list_queues(rabbitmq_url)}
    assert rows[settings.results_queue][1] == "classic"
    assert rows[settings.default_queue][1] == "quorum"  # work queues keep their type


def test_a_worker_whose_results_queue_type_disagrees_with_the_broker_refuses_to_start(
    rabbitmq_url, worker_processes
):
    settings = own_settings(rabbitmq_url, QueueType.QUORUM)
    with Connection(rabbitmq_url) as connection:  # the other processes' quorum queue
        results_queue(settings).bind(connection.default_channel).declare()

    worker = worker_processes(
        rabbitmq_url,
        "--queues", settings.default_queue,
        results_queue=settings.results_queue, results_queue_type="classic",
    )  # fmt: skip
    code = worker.process.wait(timeout=30)

    assert code != 0
    output = worker.output()
    assert f"cannot declare queue '{settings.results_queue}'" in output
    assert "TREADLE_RESULTS_QUEUE_TYPE" in output
