"""The rules' tables, declared on :data:`~treadle.scheduler.store.models.metadata`.

Kept apart from ``models.py`` like the schedules' tables; they join the one schema because
the store package imports this module (through ``uow.py`` and ``rule_repo.py``) whenever
``models`` is imported. What the rows mean: ``rule_repo.py`` and migration 0016.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, String, Table, Text, UniqueConstraint

from treadle.scheduler.store.coltypes import JSONValue, UTCDateTime
from treadle.scheduler.store.models import ENUM_LEN, metadata

#: The rules of the packs' ``rules/`` folders (docs/rules.md): one per (workspace, ref),
#: replaced when a reloaded pack changes it (``digest``). A timer rule names the schedule
#: beat fires for it (``schedule_id``, a ``schedules`` row with ``source`` ``rule``);
#: ``note`` says why a one-shot will not fire (its time was past when it was loaded).
rules = Table(
    "rules",
    metadata,
    Column("id", String, primary_key=True),
    Column("workspace", String, nullable=False),
    Column("ref", String, nullable=False),
    Column("name", String, nullable=False),
    Column("pack", String, nullable=False),
    Column("description", Text, nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("trigger_type", String, nullable=False),
    Column("trigger_parameters", JSONValue, nullable=False),
    Column("action_ref", String, nullable=False),
    Column("action_parameters", JSONValue, nullable=False),
    Column("criteria", JSONValue, nullable=False),
    Column("source_file", String, nullable=True),
    Column("digest", String, nullable=False),
    Column("schedule_id", String, nullable=True),
    Column("note", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("workspace", "ref"),
    Index("ix_rules_schedule_id", "schedule_id"),
)

#: Every match of a rule, recorded once per (rule, trigger key: ``fire:<instant>`` or
#: ``event:<id>``) with its outcome (``started`` and the run, ``criteria_false``,
#: ``failed_to_start`` and why). ``payload`` is a timer's payload (no secrets in it); an
#: event's is the recorded event (``event_id``), so only its digest is kept here. Rows
#: naming a run are purged with it (``retention_repo.PER_RUN_TABLES``).
rule_matches = Table(
    "rule_matches",
    metadata,
    Column("id", String, primary_key=True),
    Column("rule_id", String, nullable=False),
    Column("workspace", String, nullable=False),
    Column("trigger_key", String, nullable=False),
    Column("matched_at", UTCDateTime, nullable=False),
    Column("trigger_type", String, nullable=False),
    Column("event_id", String, nullable=True),
    Column("payload", JSONValue, nullable=True),
    Column("payload_digest", String, nullable=False),
    Column("outcome", String(ENUM_LEN), nullable=False),
    Column("run_id", String, nullable=True),
    Column("reason", Text, nullable=True),
    UniqueConstraint("rule_id", "trigger_key"),
    Index("ix_rule_matches_rule_id_matched_at", "rule_id", "matched_at"),
    Index("ix_rule_matches_run_id", "run_id"),
)
