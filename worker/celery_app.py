"""The one Celery app built at import time, for Celery's own command line and Flower.

``celery -A treadle.worker.celery_app flower`` and ``celery -A treadle.worker.celery_app
inspect registered`` need a module-level ``app``; it is built here from the environment
(``TREADLE_*``), with the real ``treadle.run.*`` tasks, so Flower shows real task names.
Treadle itself never imports this module: services build their apps with
:func:`treadle.worker.app.create_worker_app` (``treadle worker`` does).
"""

from __future__ import annotations

from treadle.common.settings import Settings
from treadle.worker.app import create_worker_app

app = create_worker_app(Settings())
