"""A worker's app declares and consumes every priority band of its queues (RabbitMQ)."""

from __future__ import annotations

from treadle.common.settings import Settings
from treadle.worker.app import create_celery_app, work_queue, worker_queues

RABBIT = "amqp://guest:guest@127.0.0.1:5672//"


def test_every_band_is_declared_with_the_work_queues_arguments():
    settings = Settings(broker_url=RABBIT, default_queue="main", delivery_limit=3)
    app = create_celery_app(settings, queues=["gpu"])
    try:
        declared = {q.name: q.queue_arguments for q in app.conf.task_queues}
    finally:
        app.close()
    expected = work_queue("main", settings).queue_arguments
    assert expected is not None
    assert expected["x-delivery-limit"] == 3
    assert list(declared) == ["main.high", "gpu.high", "main", "gpu", "main.low", "gpu.low"]
    assert all(arguments == expected for arguments in declared.values())


def test_the_queues_a_worker_consumes_default_to_the_default_queues_bands():
    settings = Settings(broker_url=RABBIT, default_queue="main")
    assert worker_queues(settings) == ["main.high", "main", "main.low"]
    assert worker_queues(settings, ["gpu"]) == ["gpu.high", "gpu", "gpu.low"]
    on_redis = Settings(broker_url="redis://127.0.0.1:6379/0", default_queue="main")
    assert worker_queues(on_redis, ["gpu", "main"]) == ["gpu", "main"]
