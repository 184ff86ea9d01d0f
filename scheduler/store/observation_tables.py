"""What the scheduler last saw of the broker and the workers, declared on the one schema.

Kept apart from ``models.py`` to keep each module small; the store package imports it
through ``observation_repo.py``. What the rows mean: ``observation_repo.py`` and migration
0018. Not per run: one row per queue and per worker, overwritten as they are observed.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table

from treadle.scheduler.store.coltypes import JSONValue, UTCDateTime
from treadle.scheduler.store.models import metadata

#: A work queue's length and consumers as a scheduler last read them from the broker
#: (``consumers`` is null on Redis, which does not know its consumers).
queue_observations = Table(
    "queue_observations",
    metadata,
    Column("queue", String, primary_key=True),
    Column("messages", Integer, nullable=False),
    Column("consumers", Integer, nullable=True),
    Column("observed_at", UTCDateTime, nullable=False),
)

#: A worker's last sign of life a scheduler saw (a report, a ping answer), with the queues
#: it said it consumes when it said so.
worker_observations = Table(
    "worker_observations",
    metadata,
    Column("hostname", String, primary_key=True),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("queues", JSONValue, nullable=True),
)
