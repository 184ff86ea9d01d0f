"""Schedules: ``schedules`` (what ``treadle beat`` fires) and ``schedule_fires`` (each fire).

* ``schedules``: one per (workspace, name): the workflow it starts and its parameters,
  when it fires (``cron`` in ``timezone``, or ``interval_seconds``; ``start_at``,
  ``end_at``, ``jitter_seconds``), its policies (``overlap``, ``catchup_window_seconds``,
  ``missed``, ``pause_on_failure``), whether it is ``enabled`` (and why not), where it
  comes from (``source``: ``api`` or ``workflow`` with the ``declared_version``), the
  ``cursor`` (the last nominal fire accounted for) and a ``revision`` beat watches.
* ``schedule_fires``: every fire that came due, keyed by (schedule, nominal instant), with
  its outcome (``started`` and the run, ``buffered``, ``skipped_*`` or
  ``failed_to_start``) and the reason; ``run_id`` is history (no foreign key).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("workflow", sa.String(), nullable=False),
        sa.Column("cron", sa.String(), nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("jitter_seconds", sa.Integer(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("overlap", sa.String(length=32), nullable=False),
        sa.Column("catchup_window_seconds", sa.Integer(), nullable=False),
        sa.Column("missed", sa.String(length=32), nullable=False),
        sa.Column("pause_on_failure", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("declared_version", sa.Integer(), nullable=True),
        sa.Column("cursor", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("workspace", "name", name=op.f("uq_schedules_workspace_name")),
    )
    op.create_table(
        "schedule_fires",
        sa.Column("schedule_id", sa.String(), nullable=False),
        sa.Column("nominal_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("run_status", sa.String(length=32), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_fires_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("schedule_id", "nominal_at", name=op.f("pk_schedule_fires")),
    )
    op.create_index(
        "ix_schedule_fires_schedule_id_status", "schedule_fires", ["schedule_id", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_schedule_fires_schedule_id_status", table_name="schedule_fires")
    op.drop_table("schedule_fires")
    op.drop_table("schedules")
