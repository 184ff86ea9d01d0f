"""Stock Celery, for comparison: what a team that picks Celery instead of Treadle would run.

The app of Celery's "First steps with Celery" tutorial, with a Redis result backend as
its "Keeping Results" section adds, and nothing else configured: Celery's defaults (tasks
acknowledged early, prefetch multiplier 4, the classic default queue ``celery``, results
in Redis). Its worker is the tutorial's too::

    celery -A stock_celery worker --pool prefork --concurrency 2

``bench/distributed.py`` runs that worker in this folder with ``STOCK_CELERY_BROKER`` (a
throwaway RabbitMQ vhost) and ``STOCK_CELERY_BACKEND`` (a throwaway Redis database) set,
and drives a group, a chain and many chains of ``noop`` through it from this same app.
Without them, the tutorial's URLs are used.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

app = Celery(
    "tasks",
    broker=os.environ.get("STOCK_CELERY_BROKER", "pyamqp://guest@localhost//"),
    backend=os.environ.get("STOCK_CELERY_BACKEND", "redis://localhost"),
)


@app.task
def noop(*_args: Any) -> None:
    """The no-op task (in a chain, each gets its predecessor's result: None)."""
