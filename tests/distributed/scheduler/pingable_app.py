"""A bare Celery app whose worker only answers pings: a live worker for the reconciler tests.

Started as ``celery -A pingable_app worker`` with ``PINGABLE_BROKER_URL`` set; it has no
tasks, consumes a queue of its own and never touches Treadle's queues.
"""

from __future__ import annotations

import os

from celery import Celery

app = Celery("pingable", broker=os.environ["PINGABLE_BROKER_URL"], set_as_current=False)
app.conf.update(
    task_default_queue="treadle-test.pingable",
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
