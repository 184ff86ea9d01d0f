"""Bare Celery, for comparison: the same broker and worker settings as Treadle's workers.

``bench/distributed.py`` starts a worker of this app (``celery -A bare_celery worker``, with
``BARE_CELERY_BROKER`` set) and drives a group, a chain and many chains of ``bare.noop``
through it. Results travel over the ``rpc://`` backend, which is how a plain Celery user
learns that a group or chain has finished.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from kombu import Queue

from treadle.common.transport import celery_settings, task_queue

QUEUE = "bare.tasks"


def make_app(broker_url: str) -> Celery:
    app = Celery("bare", set_as_current=False)
    settings = celery_settings(broker_url, default_queue=QUEUE, visibility_timeout=3600)
    settings.update(
        result_backend="rpc://",
        task_ignore_result=False,
        result_persistent=False,
    )
    app.conf.update(settings)
    declared = task_queue(QUEUE, broker_url, delivery_limit=5)
    app.conf.task_queues = [
        Queue(QUEUE, routing_key=QUEUE, queue_arguments=dict(declared.arguments))
    ]

    app.task(name="bare.noop")(noop)
    return app


def noop(*_args: Any, **_kwargs: Any) -> None:
    """The no-op task (one callable, registered on every app made here)."""


# For ``celery -A bare_celery worker``: the benchmark sets BARE_CELERY_BROKER for the worker.
app = make_app(os.environ.get("BARE_CELERY_BROKER", "amqp://guest:guest@127.0.0.1:5672//"))
