"""Flow control's tables, declared on :data:`~treadle.scheduler.store.models.metadata`.

Kept apart from ``models.py`` to keep each module small; they join the one schema because
the store package imports this module (through ``flow_repo.py``) whenever ``models`` is
imported. What the rows mean: ``flow_repo.py``, ``docs/flow-control.md`` and migration 0017.
Dispatches held back wait as outbox rows with ``flow_key`` set (``models.outbox``).
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, UniqueConstraint

from treadle.scheduler.store.coltypes import UTCDateTime
from treadle.scheduler.store.models import ENUM_LEN, metadata

#: One row per key anyone ever claimed: locked (``FOR UPDATE``) while a slot or grant of
#: the key is decided, so two schedulers never hand out the same last slot.
flow_keys = Table(
    "flow_keys",
    metadata,
    Column("workspace", String, primary_key=True),
    Column("key", String, primary_key=True),
)

#: A concurrency slot: ``holder`` (an attempt id, or a run id for a workflow's key) holds
#: one of ``key``'s slots for as long as that attempt is queued or running, or that run has
#: not ended. Counting only living holders is what keeps a slot from leaking when a worker
#: or a scheduler dies: the row of a dead holder no longer counts, and is deleted when the
#: key is next looked at.
flow_slots = Table(
    "flow_slots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace", String, nullable=False),
    Column("key", String, nullable=False),
    Column("holder", String, nullable=False),
    Column("scope", String(ENUM_LEN), nullable=False),
    Column("run_id", String, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    UniqueConstraint("workspace", "key", "holder"),
    Index("ix_flow_slots_run_id", "run_id"),
)

#: A rate-limit grant: an attempt of ``key`` left the scheduler at ``granted_at``. A key
#: admits ``limit`` grants per period (a sliding window); older rows are deleted as the key
#: is looked at.
flow_grants = Table(
    "flow_grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workspace", String, nullable=False),
    Column("key", String, nullable=False),
    Column("granted_at", UTCDateTime, nullable=False),
    Column("run_id", String, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("attempt_id", String, nullable=False),
    Index("ix_flow_grants_key", "workspace", "key", "granted_at"),
    Index("ix_flow_grants_run_id", "run_id"),
)
