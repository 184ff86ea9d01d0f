"""The emergency stops and the runs they paused, declared on the one schema.

Kept apart from ``models.py`` to keep each module small; the store package imports it
through ``emergency_repo.py``. What the rows mean: ``emergency_repo.py``, migration 0020
and docs/governance.md#emergency-stop.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text, text

from treadle.scheduler.store.coltypes import UTCDateTime
from treadle.scheduler.store.models import ENUM_LEN, metadata

#: Every stop ever set: ``scope`` ``global`` (``workspace`` '') or ``workspace``; it holds
#: while ``lifted_at`` is null, at most one per scope (a partial unique index). Lifted rows
#: stay: they are the stops' history, and the runs a lifted stop paused are resumed from
#: them (``emergency_stop_runs``).
emergency_stops = Table(
    "emergency_stops",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(ENUM_LEN), nullable=False),
    Column("workspace", String, nullable=False),
    Column("reason", Text, nullable=False),
    Column("terminate", Boolean, nullable=False),
    Column("source", String(ENUM_LEN), nullable=False),
    Column("set_by", String, nullable=False),
    Column("since", UTCDateTime, nullable=False),
    Column("lifted_at", UTCDateTime, nullable=True),
    Column("lifted_by", String, nullable=True),
    Column("lift_reason", Text, nullable=True),
    Index(
        "uq_emergency_stops_holding",
        "scope",
        "workspace",
        unique=True,
        postgresql_where=text("lifted_at IS NULL"),
        sqlite_where=text("lifted_at IS NULL"),
    ),
)

#: The runs a stop paused (and only those: a run an operator paused is not here), so that
#: lifting it resumes exactly them. Per run: a purged run takes its row along
#: (``retention_repo.PER_RUN_TABLES``).
emergency_stop_runs = Table(
    "emergency_stop_runs",
    metadata,
    Column("run_id", String, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    # The ``emergency_stops`` row that paused it (stops are never deleted; no key needed).
    Column("stop_id", Integer, nullable=False, index=True),
    Column("paused_at", UTCDateTime, nullable=False),
)
