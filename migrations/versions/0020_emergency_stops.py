"""Emergency stops (``emergency_stops``: every stop set, holding until lifted) and the runs
each paused (``emergency_stop_runs``, resumed when it is lifted). See ``emergency_repo.py``
and docs/governance.md#emergency-stop.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-12
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "emergency_stops",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("terminate", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("set_by", sa.String(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(), nullable=True),
        sa.Column("lift_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_stops")),
    )
    op.create_index(
        "uq_emergency_stops_holding",
        "emergency_stops",
        ["scope", "workspace"],
        unique=True,
        postgresql_where=sa.text("lifted_at IS NULL"),
        sqlite_where=sa.text("lifted_at IS NULL"),
    )
    op.create_table(
        "emergency_stop_runs",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("stop_id", sa.Integer(), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_emergency_stop_runs_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_emergency_stop_runs")),
    )
    op.create_index(
        op.f("ix_emergency_stop_runs_stop_id"), "emergency_stop_runs", ["stop_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("emergency_stop_runs")
    op.drop_table("emergency_stops")
