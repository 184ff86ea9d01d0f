"""The schedules' tables, declared on :data:`~treadle.scheduler.store.models.metadata`.

Kept apart from ``models.py`` to keep each module small; they join the one schema (what
the migrations and the schema-drift test compare) because the store package imports this
module (through ``uow.py`` and ``schedule_repo.py``) whenever ``models`` is imported. What
the rows mean: ``schedule_repo.py`` and migration 0014.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from treadle.scheduler.store.coltypes import JSONValue, UTCDateTime
from treadle.scheduler.store.models import ENUM_LEN, metadata

#: Schedules ``treadle beat`` fires (docs/schedules.md): one per (workspace, name), made
#: through the CLI or the API (``source`` ``api``) or declared by a workflow's triggers
#: (``workflow``, replaced when a newer version of it changes them). ``cursor`` is the
#: nominal instant of the last fire accounted for; ``revision`` grows with every change so
#: beat notices edits. See migration 0014.
schedules = Table(
    "schedules",
    metadata,
    Column("id", String, primary_key=True),
    Column("workspace", String, nullable=False),
    Column("name", String, nullable=False),
    Column("workflow", String, nullable=False),
    Column("cron", String, nullable=True),
    Column("interval_seconds", Integer, nullable=True),
    Column("timezone", String, nullable=False),
    Column("start_at", UTCDateTime, nullable=True),
    Column("end_at", UTCDateTime, nullable=True),
    Column("jitter_seconds", Integer, nullable=False),
    Column("parameters", JSONValue, nullable=False),
    Column("overlap", String(ENUM_LEN), nullable=False),
    Column("catchup_window_seconds", Integer, nullable=False),
    Column("missed", String(ENUM_LEN), nullable=False),
    Column("pause_on_failure", Boolean, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("paused_reason", Text, nullable=True),
    Column("source", String(ENUM_LEN), nullable=False),
    Column("declared_version", Integer, nullable=True),
    Column("cursor", UTCDateTime, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("workspace", "name"),
)

#: Every fire of a schedule that came due, recorded once: the key is (schedule, nominal
#: instant), so two beats cannot both record (nor start) one fire. ``run_id`` names the run
#: a fire started; it is history, not a reference (no foreign key): purging the run keeps
#: the fire's record. Fires go with their schedule.
schedule_fires = Table(
    "schedule_fires",
    metadata,
    Column(
        "schedule_id",
        String,
        ForeignKey("schedules.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("nominal_at", UTCDateTime, primary_key=True),
    Column("due_at", UTCDateTime, nullable=False),
    Column("kind", String(ENUM_LEN), nullable=False),
    Column("status", String(ENUM_LEN), nullable=False),
    Column("reason", Text, nullable=True),
    Column("run_id", String, nullable=True),
    Column("run_status", String(ENUM_LEN), nullable=True),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Index("ix_schedule_fires_schedule_id_status", "schedule_id", "status"),
)
