"""Event waits, compensation and pause bookkeeping; one event may trigger several workflows.

* ``event_waits``: which runs wait for which event types and subjects, so an arriving event
  is routed to them (the core checks each wait's filter).
* ``task_executions.waits_for`` / ``task_units.waits_for``: the event a wait expects.
* ``task_executions.compensates``: the execution a compensation execution undoes.
* ``runs``: a trigger event id is unique per workflow, not globally (one event may start
  runs of several definitions, each once).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task_executions") as batch:
        batch.add_column(sa.Column("waits_for", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("compensates", sa.Integer(), nullable=True))
    with op.batch_alter_table("task_units") as batch:
        batch.add_column(sa.Column("waits_for", sa.JSON(), nullable=True))
    op.create_table(
        "event_waits",
        sa.Column("wait_id", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=True),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_event_waits_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("wait_id", name=op.f("pk_event_waits")),
    )
    op.create_index(op.f("ix_event_waits_run_id"), "event_waits", ["run_id"])
    op.create_index(op.f("ix_event_waits_event_type"), "event_waits", ["event_type"])
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint("uq_runs_trigger_event_id", type_="unique")
        batch.create_unique_constraint(
            "uq_runs_trigger_event_id_workflow", ["trigger_event_id", "workflow"]
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint("uq_runs_trigger_event_id_workflow", type_="unique")
        batch.create_unique_constraint("uq_runs_trigger_event_id", ["trigger_event_id"])
    op.drop_index(op.f("ix_event_waits_event_type"), table_name="event_waits")
    op.drop_index(op.f("ix_event_waits_run_id"), table_name="event_waits")
    op.drop_table("event_waits")
    with op.batch_alter_table("task_units") as batch:
        batch.drop_column("waits_for")
    with op.batch_alter_table("task_executions") as batch:
        batch.drop_column("compensates")
        batch.drop_column("waits_for")
