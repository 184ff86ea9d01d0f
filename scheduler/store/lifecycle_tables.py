"""Lifecycle events and their webhook deliveries, declared on the one schema.

Kept apart from ``models.py`` to keep each module small; the store package imports it
through ``lifecycle_repo.py``. What the rows mean: ``lifecycle_repo.py`` and migration
0019. Both tables are per run (``run_id``; null for a definition's events), so a purged
run takes its events and deliveries with it (``retention_repo.PER_RUN_TABLES``).
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text, UniqueConstraint

from treadle.scheduler.store.coltypes import JSONValue, UTCDateTime
from treadle.scheduler.store.models import ENUM_LEN, metadata

#: The events' own outbox: one CloudEvent per row, written in the transaction of the change
#: it tells of, published to the broker (``published_at``) by a scheduler, in ``id`` order.
lifecycle_events = Table(
    "lifecycle_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String, nullable=False, unique=True),
    Column("run_id", String, nullable=True, index=True),
    Column("type", String, nullable=False),
    Column("cloudevent", JSONValue, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime, nullable=True),
    Index("ix_lifecycle_events_published_at_id", "published_at", "id"),
)

#: One event on its way to one webhook sink: ``pending`` until ``due_at`` (its next try,
#: or the end of a lease while a scheduler posts it), then ``delivered`` or, after the
#: last attempt, ``failed`` with the last error.
lifecycle_deliveries = Table(
    "lifecycle_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String, nullable=False),
    Column("run_id", String, nullable=True, index=True),
    Column("sink", String, nullable=False),
    Column("status", String(ENUM_LEN), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    UniqueConstraint("event_id", "sink"),
    Index("ix_lifecycle_deliveries_status_due_at", "status", "due_at"),
)
